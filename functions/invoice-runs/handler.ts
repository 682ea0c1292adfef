import { getInvoiceRun, invoiceRunInput, startInvoiceRunByHand } from '../../lib/app/invoicing/runs';
import { wire } from '../../lib/platform/wiring/base';
import { customersArea } from '../../lib/platform/wiring/customers';
import { usageArea } from '../../lib/platform/wiring/usage';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(customersArea, usageArea, invoicingArea);

/** POST /api/v1/invoice-runs {"period":"YYYY-MM"} (admin): start or resume a run by hand. */
export const start = httpHandler('POST /api/v1/invoice-runs')(async (req) => {
  const principal = await req.principal();
  return { status: 202, body: await startInvoiceRunByHand(deps(), principal, req.json(invoiceRunInput)) };
});

/** GET /api/v1/invoice-runs/{period} (admin): customers total/done/failed/skipped. */
export const progress = httpHandler('GET /api/v1/invoice-runs/{period}')(async (req) => ({
  status: 200,
  body: await getInvoiceRun(deps(), await req.principal(), req.param('period')),
}));
