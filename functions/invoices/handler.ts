import { listInvoices, previewInvoice } from '../../lib/app/invoicing/views';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** GET /api/v1/customers/{id}/invoices (read): invoice records with lines and Stripe ids. */
export const list = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => ({
  status: 200,
  body: await listInvoices(container(), await req.principal(), req.param('id')),
}));

/** GET /api/v1/customers/{id}/invoices/upcoming?period= (read): what the period would invoice now. */
export const upcoming = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => ({
  status: 200,
  body: await previewInvoice(container(), await req.principal(), req.param('id'), req.query('period')),
}));
