import { DynamoApiKeys } from '../../adapters/dynamo/entities';
import { DynamoRateLimiter } from '../../adapters/dynamo/rate-limits';
import { dynamoClient } from '../clients/dynamo';
import { logger, MetricUnit, metrics } from '../observability';
import { area } from './base';

/** API keys: every authenticated request reads one, and counts itself against the key's limits. */
export const authArea = area((r) => ({
  apiKeys: new DynamoApiKeys(dynamoClient(), r.config.API_KEYS_TABLE),
  limiter: new DynamoRateLimiter(dynamoClient(), r.config.RATE_LIMITS_TABLE, (err) => {
    logger.warn('rate limit not counted: the request passes', { error: err as Error });
    metrics.addMetric('RateLimitUncounted', MetricUnit.Count, 1);
  }),
  defaultLimits: { requestsPerSecond: r.config.KEY_REQUESTS_PER_SECOND, eventsPerMinute: r.config.KEY_EVENTS_PER_MINUTE },
}));
