import { listEvents, listEventsQuery, voidEvent, voidInput } from '../../lib/app/audit';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';
import { MetricUnit, metrics } from '../../lib/platform/observability';

/** GET /api/v1/customers/{id}/events?period=&meter=&limit=&cursor= (read; a bound key reads only its customer). */
export const list = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => ({
  status: 200,
  body: await listEvents(container(), req.param('id'), req.queryAs(listEventsQuery, ['period', 'meter', 'limit', 'cursor'])),
}));

/** POST /api/v1/events/void {source, id, reason} (admin): the event stops counting, exactly once. */
export const voidOne = httpHandler({ scope: 'admin' }, async (req) => {
  const out = await voidEvent(container(), await req.principal(), req.json(voidInput));
  if (!out.alreadyVoided) metrics.addMetric('EventsVoided', MetricUnit.Count, 1);
  return { status: 200, body: out };
});
