import { getInvoiceRun, invoiceRunInput, startInvoiceRunByHand } from '../../lib/app/invoicing/runs';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** POST /api/v1/invoice-runs {"period":"YYYY-MM"} (admin): start or resume a run by hand. */
export const start = httpHandler({ scope: 'admin' }, async (req) => {
  const principal = await req.principal();
  return { status: 202, body: await startInvoiceRunByHand(container(), principal, req.json(invoiceRunInput)) };
});

/** GET /api/v1/invoice-runs/{period} (admin): customers total/done/failed/skipped. */
export const progress = httpHandler({ scope: 'admin' }, async (req) => ({
  status: 200,
  body: await getInvoiceRun(container(), await req.principal(), req.param('period')),
}));
