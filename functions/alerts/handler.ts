import { listAlerts } from '../../lib/app/alerts';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { countersArea } from '../../lib/platform/wiring/counters';
import { alertsArea } from '../../lib/platform/wiring/alerts';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, countersArea, alertsArea);

/** GET /api/v1/customers/{id}/alerts?period=YYYY-MM (read): the alerts claimed and sent. */
export const handler = httpHandler('GET /api/v1/customers/{id}/alerts')(async (req) => ({
  status: 200,
  body: await listAlerts(deps(), await req.principal(), req.param('id'), req.query('period')),
}));
