import { listAlerts } from '../../lib/app/alerts';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** GET /api/v1/customers/{id}/alerts?period=YYYY-MM (read): the alerts claimed and sent. */
export const handler = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => ({
  status: 200,
  body: await listAlerts(container(), await req.principal(), req.param('id'), req.query('period')),
}));
