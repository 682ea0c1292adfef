import { creditSettleInput, listCredits, settleCredit } from '../../lib/app/credits';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { customersArea } from '../../lib/platform/wiring/customers';
import { invoiceRecordsArea } from '../../lib/platform/wiring/invoicing';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, customersArea, invoiceRecordsArea);

/** GET /api/v1/customers/{id}/credits (read): carried credits, and what is owed per currency. */
export const list = httpHandler('GET /api/v1/customers/{id}/credits')(async (req) => ({
  status: 200,
  body: await listCredits(deps(), await req.principal(), req.param('id')),
}));

/** POST /api/v1/customers/{id}/credits/{key}/settle (admin): a refund made in Stripe, or a write-off, recorded. */
export const settle = httpHandler('POST /api/v1/customers/{id}/credits/{key}/settle')(async (req) => {
  const principal = await req.principal();
  return { status: 200, body: await settleCredit(deps(), principal, req.param('id'), req.param('key'), req.json(creditSettleInput)) };
});
