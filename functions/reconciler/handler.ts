import { reconcile } from '../../lib/app/audit';
import { Period } from '../../lib/domain/period';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { archiveArea } from '../../lib/platform/wiring/archive';
import { auditArea } from '../../lib/platform/wiring/audit';
import { usageArea } from '../../lib/platform/wiring/usage';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, archiveArea, auditArea, usageArea);

/**
 * Daily: recompute the counters of the current and the previous period from the archive and
 * compare (no fix: `npm run cli -- reconcile --fix` repairs, by hand). Any drift is a metric and an
 * alarm, with every drifting counter in the log.
 */
export const handler = scheduledHandler(async () => {
  const c = deps();
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
