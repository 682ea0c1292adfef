import type { Metrics } from '@aws-lambda-powertools/metrics';

type MetricTap = (name: string, value: number) => void;
const taps = new Set<MetricTap>();
let tapped: Metrics | undefined;

/**
 * Calls `tap` with every metric the functions add from now on; returns the function that stops it.
 * The local stack runs the functions in this process, so `npm start`'s status line (and the
 * metering bench) count events and alerts from their metrics without reading any log. The product
 * knows nothing of this: the functions' one emitter (lib/platform/observability) has its
 * `addMetric` wrapped here, once per process, and only where a tap is asked for.
 */
export function tapMetrics(tap: MetricTap): () => void {
  // Required only now: the functions' logger reads its level from the environment the stack sets.
  const { metrics } = require('../../lib/platform/observability') as typeof import('../../lib/platform/observability');
  if (tapped !== metrics) {
    const add = metrics.addMetric.bind(metrics);
    metrics.addMetric = (...args) => {
      for (const t of taps) t(args[0], args[2]);
      return add(...args);
    };
    tapped = metrics;
  }
  taps.add(tap);
  return () => void taps.delete(tap);
}
