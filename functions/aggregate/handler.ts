import * as z from 'zod/mini';
import '../../lib/domain/zod-english';
import { countBatch } from '../../lib/app/aggregate';
import { evaluateTouched } from '../../lib/app/alerts';
import type { UsageBatch } from '../../lib/app/ports';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { usageArea } from '../../lib/platform/wiring/usage';
import { countersArea } from '../../lib/platform/wiring/counters';
import { archiveArea } from '../../lib/platform/wiring/archive';
import { alertsArea } from '../../lib/platform/wiring/alerts';
import { sqsHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, usageArea, countersArea, archiveArea, alertsArea);

/** zod/mini: the full zod would be ~150 KB more of this hot-path bundle. */
const batchSchema = z.object({
  v: z.literal(1),
  batchId: z.string().check(z.minLength(1), z.maxLength(200)),
  receivedAt: z.string(),
  events: z.array(
    z.object({
      source: z.string(),
      id: z.string(),
      type: z.string(),
      customerId: z.string(),
      time: z.string(),
      period: z.string(),
      readings: z.record(z.string(), z.string()),
    }),
  ),
});

/**
 * SQS usage queue -> exactly-once counters, then alerts. Each message is counted on its own; a failed message is
 * reported in batchItemFailures so SQS redelivers only it, and after maxReceiveCount it goes to the DLQ.
 */
export const handler = sqsHandler({ parallel: true }, async (record) => {
  const c = deps();
  const batch = batchSchema.parse(JSON.parse(record.body)) as UsageBatch;
  const out = await countBatch({ ledger: c.ledger, catalog: c.catalog, archive: c.archive }, batch);
  metrics.addMetric('EventsCounted', MetricUnit.Count, out.counted);
  metrics.addMetric('DuplicatesDropped', MetricUnit.Count, out.duplicates);
  // The same counts by meter, for the dashboard: a dimension per meter slug (a handful), never per customer.
  for (const m of out.byMeter) {
    for (const [name, value] of [
      ['EventsCounted', m.counted],
      ['DuplicatesDropped', m.duplicates],
    ] as const) {
      if (value > 0) metrics.singleMetric().addDimension('meter', m.meter).addMetric(name, MetricUnit.Count, value);
    }
  }
  metrics.addMetric('ProcessingLag', MetricUnit.Milliseconds, Math.max(0, c.clock.now().getTime() - Date.parse(batch.receivedAt)));
  await Promise.all([...new Set(out.touched.map((t) => t.period))].map((p) => c.epoch.note(p)));
  // Alerts are part of the message: if evaluating fails, SQS redelivers the message, the
  // counting finds itself done, and the evaluation runs again (level-triggered, claimed once).
  const alerts = await evaluateTouched(c, out.touched);
  metrics.addMetric('AlertsSent', MetricUnit.Count, alerts.sent);
  for (const u of alerts.unpriced) {
    logger.error('alerts skipped: the period cannot be priced as the catalog stands', u);
    metrics.addMetric('AlertsUnpriced', MetricUnit.Count, 1);
  }
  // Events of a meter this aggregator does not know yet (a deploy under way): the rest is counted;
  // SQS delivers the message again after its visibility timeout and a later delivery counts them.
  if (out.deferred > 0) {
    metrics.addMetric('EventsDeferred', MetricUnit.Count, out.deferred);
    throw new Error(`${out.deferred} events of batch ${batch.batchId} wait for a meter this aggregator does not know yet`);
  }
});
