import { DynamoApiKeys, DynamoCustomers, DynamoIdempotency } from '../adapters/dynamo/entities';
import { DynamoUsageLedger } from '../adapters/dynamo/ledger';
import { SqsUsageQueue } from '../adapters/sqs/usage-queue';
import { systemClock, type Clock } from '../app/ports';
import { loadCatalog } from './catalog';
import { dynamoClient, sqsClient } from './clients';
import { config } from './config';

/** The composition root: adapters wired to config, built lazily once per function instance. */
function build(clock: Clock = systemClock) {
  const c = config();
  const db = dynamoClient();
  return {
    config: c,
    clock,
    catalog: loadCatalog(),
    ledger: new DynamoUsageLedger(db, { usage: c.USAGE_TABLE, dedupe: c.DEDUPE_TABLE }, { clock, markerTtlSeconds: c.markerTtlSeconds }),
    customers: new DynamoCustomers(db, c.CUSTOMERS_TABLE),
    apiKeys: new DynamoApiKeys(db, c.API_KEYS_TABLE),
    idempotency: new DynamoIdempotency(db, c.DEDUPE_TABLE, () => clock.now()),
    usageQueue: new SqsUsageQueue(sqsClient(), c.USAGE_QUEUE_URL),
  };
}
export type Container = ReturnType<typeof build>;

let instance: Container | undefined;
export function container(): Container {
  return (instance ??= build());
}
