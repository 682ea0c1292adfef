import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** One logger and one metrics emitter per function instance (structured JSON logs, EMF metrics to CloudWatch). */
export const logger = new Logger({ serviceName: 'usage-metering' });
type MetricTap = (name: string, value: number) => void;
const taps = new Set<MetricTap>();

/**
 * Metrics whose values can also be watched in-process: the local stack counts events and alerts
 * for `npm start`'s status line without reading any log. Deployed functions have no taps.
 */
class TappedMetrics extends Metrics {
  override addMetric(...args: Parameters<Metrics['addMetric']>): this {
    for (const tap of taps) tap(args[0], args[2]);
    return super.addMetric(...args);
  }
}

/** Calls `tap` with every metric added from now on; returns the function that stops it. */
export function tapMetrics(tap: MetricTap): () => void {
  taps.add(tap);
  return () => void taps.delete(tap);
}

export const metrics = new TappedMetrics({
  namespace: 'UsageMetering',
  serviceName: 'usage-metering',
  // An invocation without metrics (most reads) is normal: say so at debug level, not as a warning.
  logger: {
    debug: (...args: unknown[]) => logger.debug(String(args[0])),
    info: (...args: unknown[]) => logger.info(String(args[0])),
    warn: (...args: unknown[]) => logger.debug(String(args[0])),
    error: (...args: unknown[]) => logger.error(String(args[0])),
  },
});
export { MetricUnit };
