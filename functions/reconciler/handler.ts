import { reconcile } from '../../lib/app/audit';
import { Period } from '../../lib/domain/period';
import { container } from '../../lib/platform/container';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/**
 * Daily: recompute the counters of the current and the previous period from the archive and
 * compare (no fix: `npm run cli -- reconcile --fix` repairs, by hand). Any drift is a metric and an
 * alarm, with every drifting counter in the log.
 */
export const handler = scheduledHandler(async () => {
  const c = container();
  const current = Period.containing(c.clock.now());
  const results = [];
  for (const period of [current.previous(), current]) {
    const out = await reconcile(c, { period: period.key });
    if (out.drifts.length > 0) logger.error('counters drift from the archive', { period: period.key, drifts: out.drifts });
    metrics.addMetric('CounterDrift', MetricUnit.Count, out.drifts.length);
    results.push({ period: period.key, customers: out.customers, events: out.events, drifts: out.drifts.length });
  }
  return results;
});
