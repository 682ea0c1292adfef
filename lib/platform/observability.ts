import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** One logger and one metrics emitter per function instance (structured JSON logs, EMF metrics to CloudWatch). */
export const logger = new Logger({ serviceName: 'usage-metering' });
export const metrics = new Metrics({
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
