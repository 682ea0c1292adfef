import { DynamoEntitlementReads } from '../../adapters/dynamo/entitlements';
import { dynamoClient } from '../clients/dynamo';
import { area } from './base';

/** Entitlements: a customer and its counters in one read. */
export const entitlementsArea = area((r) => ({
  entitlementReads: new DynamoEntitlementReads(dynamoClient(), { customers: r.config.CUSTOMERS_TABLE, usage: r.config.USAGE_TABLE }, r.config.COUNTER_SHARDS),
}));
