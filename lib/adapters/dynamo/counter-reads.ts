import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { CounterReads } from '../../app/ports/usage';
import type { Customer } from '../../domain/customer';
import { canonical, Q, type Quantity } from '../../domain/quantity';
import { batchGetAll, documents } from './documents';
import { counterOf, counterSk, usagePk } from './usage-keys';

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_KEYS = 100;

type Key = Record<string, unknown>;

/**
 * A customer and its counters of some meters in some periods with BatchGetItem over both tables
 * (consistent reads): one request for an entitlement check, one for an invoice's counters (three
 * periods of ten meters), instead of a read of the customer and a Query per period. Keys the
 * service could not serve in time (UnprocessedKeys) are asked for again, after a backoff.
 */
export class DynamoCounterReads implements CounterReads {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly tables: { customers: string; usage: string },
    /** Counter shards (COUNTER_SHARDS): every shard of each meter is one more key. */
    private readonly shards = 1,
  ) {
    this.db = documents(client);
  }

  async read(customerId: string, askedPeriods: string[], askedMeters: string[]) {
    // A key asked twice would fail the whole request (DynamoDB refuses duplicate keys).
    const periods = [...new Set(askedPeriods)];
    const meters = [...new Set(askedMeters)];
    const keys: { table: string; key: Key }[] = [{ table: this.tables.customers, key: { id: customerId } }];
    for (const period of periods) {
      for (const meter of meters) {
        for (let n = 0; n < this.shards; n++)
          keys.push({ table: this.tables.usage, key: { pk: usagePk(customerId, period), sk: `${counterSk(meter)}${n === 0 ? '' : `#${n}`}` } });
      }
    }
    let customer: Customer | undefined;
    const sums = new Map<string, Map<string, Quantity>>(periods.map((p) => [p, new Map()]));
    for (let i = 0; i < keys.length; i += BATCH_KEYS) {
      const byTable: Record<string, Key[]> = {};
      for (const { table, key } of keys.slice(i, i + BATCH_KEYS)) (byTable[table] ??= []).push(key);
      await batchGetAll(byTable, async (pending) => {
        const request = Object.fromEntries(Object.entries(pending).map(([table, Keys]) => [table, { Keys, ConsistentRead: true }]));
        const out = await this.db.send(new BatchGetCommand({ RequestItems: request }));
        for (const item of out.Responses?.[this.tables.customers] ?? []) customer = item as Customer;
        for (const item of out.Responses?.[this.tables.usage] ?? []) {
          const period = String(item.pk).slice(customerId.length + 1);
          const byMeter = sums.get(period)!;
          const meter = counterOf(String(item.sk));
          byMeter.set(meter, (byMeter.get(meter) ?? new Q(0)).plus(String(item.value ?? '0')));
        }
        return out;
      });
    }
    // Meters in a stable order (the order of `meters`), as a Query by sort key would give them.
    const counters = Object.fromEntries(
      periods.map((p) => {
        const byMeter = sums.get(p)!;
        return [p, Object.fromEntries(meters.filter((m) => byMeter.has(m)).map((m) => [m, canonical(byMeter.get(m)!)]))];
      }),
    );
    return { customer, counters };
  }
}
