import { ingestEvents } from '../../lib/app/ingest';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { authArea } from '../../lib/platform/wiring/auth';
import { ingestArea } from '../../lib/platform/wiring/ingest';
import { parseIngestRequest } from '../../lib/platform/cloudevents-http';
import { httpHandler } from '../../lib/platform/http';
import { MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, ingestArea, authArea);

/** POST /api/v1/events: CloudEvents in structured, batched or binary (ce-* headers) mode; validate all, queue all, 202. */
export const handler = httpHandler('POST /api/v1/events')(async (req) => {
  const c = deps();
  try {
    const principal = await req.principal();
    const parsed = parseIngestRequest({
      contentType: req.header('content-type'),
      body: req.body,
      ceHeaders: req.headersStartingWith('ce-'),
      idempotencyKey: req.header('idempotency-key'),
    });
    const result = await ingestEvents({ ...c, queue: c.usageQueue, maxEventAgeMs: c.config.maxEventAgeMs }, { principal, ...parsed });
    if (!result.replayed) metrics.addMetric('EventsAccepted', MetricUnit.Count, result.accepted);
    return { status: 202, body: { accepted: result.accepted }, headers: result.replayed ? { 'idempotent-replayed': 'true' } : undefined };
  } catch (err) {
    metrics.addMetric('RequestsRejected', MetricUnit.Count, 1);
    throw err;
  }
});
