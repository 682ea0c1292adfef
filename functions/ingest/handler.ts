import { ingestEvents } from '../../lib/app/ingest';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { authArea } from '../../lib/platform/wiring/auth';
import { ingestArea } from '../../lib/platform/wiring/ingest';
import { httpHandler } from '../../lib/platform/http';
import { MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, ingestArea, authArea);

/** POST /api/v1/events: CloudEvents in structured, batched or binary (ce-* headers) mode; validate all, queue all, 202. */
export const handler = httpHandler({ scope: 'ingest' }, async (req) => {
  const c = deps();
  try {
    const result = await ingestEvents(
      { ...c, queue: c.usageQueue, maxEventAgeMs: c.config.maxEventAgeMs },
      {
        principal: await req.principal(),
        contentType: req.header('content-type'),
        body: req.body,
        idempotencyKey: req.header('idempotency-key'),
        ceHeaders: req.headersStartingWith('ce-'),
      },
    );
    if (!result.replayed) metrics.addMetric('EventsAccepted', MetricUnit.Count, result.body.accepted);
    return { status: result.status, body: result.body, headers: result.replayed ? { 'idempotent-replayed': 'true' } : undefined };
  } catch (err) {
    metrics.addMetric('RequestsRejected', MetricUnit.Count, 1);
    throw err;
  }
});
