import { listEvents, listEventsQuery, voidEvent, voidInput } from '../../lib/app/audit';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { archiveArea } from '../../lib/platform/wiring/archive';
import { auditArea } from '../../lib/platform/wiring/audit';
import { usageArea } from '../../lib/platform/wiring/usage';
import { httpHandler } from '../../lib/platform/http';
import { MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, archiveArea, auditArea, usageArea);

/** GET /api/v1/customers/{id}/events?period=&meter=&limit=&cursor= (read; a bound key reads only its customer). */
export const list = httpHandler('GET /api/v1/customers/{id}/events')(async (req) => ({
  status: 200,
  body: await listEvents(deps(), req.param('id'), req.queryAs(listEventsQuery, ['period', 'meter', 'limit', 'cursor'])),
}));

/** POST /api/v1/events/void {source, id, reason} (admin): the event stops counting, exactly once. */
export const voidOne = httpHandler('POST /api/v1/events/void')(async (req) => {
  const out = await voidEvent(deps(), await req.principal(), req.json(voidInput));
  if (!out.alreadyVoided) metrics.addMetric('EventsVoided', MetricUnit.Count, 1);
  return { status: 200, body: out };
});
