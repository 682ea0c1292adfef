import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Customer, EntitlementReads } from '../../app/ports';
import { canonical, Q } from '../../domain/quantity';
import { documents } from './documents';
import { counterOf, usagePk } from './ledger';

/**
 * What an entitlement check needs, in one DynamoDB request: the customer (its plan) and the
 * period's counters of the meters asked about, with one BatchGetItem over both tables (consistent
 * reads). Keys the service could not serve in time (UnprocessedKeys) are asked for again.
 */
export class DynamoEntitlementReads implements EntitlementReads {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly tables: { customers: string; usage: string },
    /** Counter shards (COUNTER_SHARDS): every shard of each meter is one more key of the same request. */
    private readonly shards = 1,
  ) {
    this.db = documents(client);
  }

  async read(customerId: string, period: string, meters: string[]): Promise<{ customer: Customer | undefined; counters: Record<string, string> }> {
    const pk = usagePk(customerId, period);
    let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead: boolean }> | undefined = {
      [this.tables.customers]: { Keys: [{ id: customerId }], ConsistentRead: true },
      ...(meters.length > 0
        ? {
            [this.tables.usage]: {
              Keys: meters.flatMap((m) => Array.from({ length: this.shards }, (_, n) => ({ pk, sk: `m#${m}${n === 0 ? '' : `#${n}`}` }))),
              ConsistentRead: true,
            },
          }
        : {}),
    };
    let customer: Customer | undefined;
    const counters: Record<string, string> = {};
    while (request && Object.keys(request).length > 0) {
      const out = await this.db.send(new BatchGetCommand({ RequestItems: request }));
      for (const item of out.Responses?.[this.tables.customers] ?? []) customer = item as Customer;
      for (const item of out.Responses?.[this.tables.usage] ?? []) {
        const meter = counterOf(String(item.sk));
        counters[meter] = canonical(new Q(counters[meter] ?? '0').plus(String(item.value ?? '0')));
      }
      request = out.UnprocessedKeys as typeof request;
    }
    return { customer, counters };
  }
}
