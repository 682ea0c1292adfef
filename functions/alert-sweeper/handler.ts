import { sweepPendingAlerts } from '../../lib/app/alerts';
import { container } from '../../lib/platform/container';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/** Every minute: alerts claimed but not published (SNS failed, or the aggregator died) are sent now. */
export const handler = scheduledHandler(async () => {
  const out = await sweepPendingAlerts(container());
  if (out.retried > 0) logger.warn('re-sent pending alerts', out);
  metrics.addMetric('AlertsSent', MetricUnit.Count, out.sent);
  return out;
});
