import { DynamoCounterReads } from '../../adapters/dynamo/counter-reads';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** A customer and its counters in one read: entitlements, and the gather of an invoice or its preview. */
export const countersArea = area((r) => ({
  counterReads: new DynamoCounterReads(dynamoClient(), { customers: r.config.CUSTOMERS_TABLE, usage: r.config.USAGE_TABLE }, r.config.COUNTER_SHARDS),
}));
