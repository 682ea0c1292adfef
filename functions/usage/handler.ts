import { readUsage } from '../../lib/app/usage';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** GET /api/v1/customers/{id}/usage?period=YYYY-MM: the usage page. */
export const handler = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => {
  const c = container();
  return { status: 200, body: await readUsage(c, await req.principal(), req.param('id'), req.query('period')) };
});
