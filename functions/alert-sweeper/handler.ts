import { sweepPendingAlerts } from '../../lib/app/alerts';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { countersArea } from '../../lib/platform/wiring/counters';
import { alertsArea } from '../../lib/platform/wiring/alerts';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, countersArea, alertsArea);

/** Every minute: alerts claimed but not published (SNS failed, or the aggregator died) are sent now. */
export const handler = scheduledHandler(async () => {
  const out = await sweepPendingAlerts(deps());
  if (out.retried > 0) logger.warn('re-sent pending alerts', out);
  metrics.addMetric('AlertsSent', MetricUnit.Count, out.sent);
  return out;
});
