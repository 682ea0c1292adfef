import { readEntitlements } from '../../lib/app/entitlements';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { countersArea } from '../../lib/platform/wiring/counters';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, countersArea);

/** GET /api/v1/customers/{id}/entitlements (read): every meter's usage, limit and access now. */
export const list = httpHandler('GET /api/v1/customers/{id}/entitlements')(async (req) => ({
  status: 200,
  body: await readEntitlements(deps(), req.param('id')),
}));

/** GET /api/v1/customers/{id}/entitlements/{meter} (read): one meter; 404 meter_not_found. */
export const one = httpHandler('GET /api/v1/customers/{id}/entitlements/{meter}')(async (req) => {
  const out = await readEntitlements(deps(), req.param('id'), req.param('meter'));
  return { status: 200, body: { customerId: out.customerId, period: out.period, planId: out.planId, ...out.entitlements[0]! } };
});
