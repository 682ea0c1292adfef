import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** One logger and one metrics emitter per function instance (EMF to CloudWatch, SPEC 11). */
export const logger = new Logger({ serviceName: 'usage-metering' });
export const metrics = new Metrics({ namespace: 'UsageMetering', serviceName: 'usage-metering' });
export { MetricUnit };
