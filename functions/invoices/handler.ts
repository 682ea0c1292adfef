import { listInvoices, previewInvoice } from '../../lib/app/invoicing/views';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { countersArea } from '../../lib/platform/wiring/counters';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, invoicingArea, countersArea);

/** GET /api/v1/customers/{id}/invoices (read): invoice records with lines and Stripe ids. */
export const list = httpHandler('GET /api/v1/customers/{id}/invoices')(async (req) => ({
  status: 200,
  body: await listInvoices(deps(), await req.principal(), req.param('id')),
}));

/** GET /api/v1/customers/{id}/invoices/upcoming?period= (read): what the period would invoice now. */
export const upcoming = httpHandler('GET /api/v1/customers/{id}/invoices/upcoming')(async (req) => ({
  status: 200,
  body: await previewInvoice(deps(), await req.principal(), req.param('id'), req.query('period')),
}));
