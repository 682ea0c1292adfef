import { processUsageMessage } from '../../lib/app/aggregate';
import { parseUsageBatch } from '../../lib/app/messages';
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

/**
 * SQS usage queue -> exactly-once counters, then alerts. Each message is counted on its own; a failed message is
 * reported in batchItemFailures so SQS redelivers only it, and after maxReceiveCount it goes to the DLQ.
 */
export const handler = sqsHandler({ parallel: true }, async (record) => {
  const c = deps();
  const batch = parseUsageBatch(record.body);
  const out = await processUsageMessage(c, batch);
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
  metrics.addMetric('AlertsSent', MetricUnit.Count, out.alerts.sent);
  for (const u of out.alerts.unpriced) {
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
