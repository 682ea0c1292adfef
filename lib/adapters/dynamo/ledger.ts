import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { createHash } from 'node:crypto';
import type { AggregationPlan, CounterRef } from '../../domain/aggregation';
import type { MeteredEvent } from '../../domain/events';
import { Q, canonical } from '../../domain/quantity';
import type { ClaimOutcome, Clock, UsageLedger } from '../../app/ports';
import { mapLimit, retry } from '../../platform/concurrency';
import { capacity as processCapacity, type CapacityMeter } from './capacity';
import { allItems } from './paging';

/**
 * The exactly-once ledger on DynamoDB (docs/exactly-once.md).
 *
 * Dedupe table (pk):
 *   ev|<json [source,id]>   claim marker: claimedBy = batch id, expiresAt (TTL) beyond the window
 *   ev|sha256:<hex>         the same, for an identity whose readable key would exceed 2,048 bytes
 *   ap|<batchId>|<n>        "applied" marker of the n-th additive transaction of a batch
 * Usage table (pk = <customerId>|<period>, sk):
 *   m#<meter>               counter: value (N, exact decimal), order (LATEST), customerId, period
 *   m#_duplicates           duplicates dropped for the customer and period
 *   u#<meter>#<value>       one marker per distinct value of a UNIQUE_COUNT meter (sha256:<hex> when long)
 */
export interface LedgerTables {
  usage: string;
  dedupe: string;
}
export interface LedgerOptions {
  clock: Clock;
  markerTtlSeconds: number;
  concurrency?: number;
  capacity?: CapacityMeter;
}

export const DUPLICATES_SK = 'm#_duplicates';
/** TransactWriteItems takes 100 items; one is the applied marker. */
const COUNTERS_PER_TRANSACTION = 99;

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: string): AttributeValue => ({ N: n });
export const usagePk = (customerId: string, period: string) => `${customerId}|${period}`;
/** DynamoDB refuses partition keys over 2,048 bytes and sort keys over 1,024 (UTF-8). */
const MAX_PARTITION_KEY_BYTES = 2048;
const MAX_UNIQUE_VALUE_BYTES = 200;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The claim marker of an event. Every key DynamoDB can store keeps its readable form, so markers
 * written before long keys were hashed still match; a longer one (ids and sources are up to 256
 * characters, and JSON escapes a control character into 6 bytes) is named by the SHA-256 of that
 * form. `ev|sha256:` can never be a readable key, which always starts with `ev|[`.
 */
export function claimPk(e: Pick<MeteredEvent, 'source' | 'id'>): string {
  const readable = `ev|${JSON.stringify([e.source, e.id])}`;
  return Buffer.byteLength(readable, 'utf8') <= MAX_PARTITION_KEY_BYTES ? readable : `ev|sha256:${sha256(readable)}`;
}

/**
 * One marker per distinct UNIQUE_COUNT value. Long values are stored by their hash; a short value
 * that itself starts with `sha256:` is hashed too, so a client cannot make its value share the
 * marker of someone's long value.
 */
export function uniqueSk(meter: string, value: string): string {
  const readable = Buffer.byteLength(value, 'utf8') <= MAX_UNIQUE_VALUE_BYTES && !value.startsWith('sha256:');
  return `u#${meter}#${readable ? value : `sha256:${sha256(value)}`}`;
}

function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}
/** The first item of our transactions is the marker; its condition failing means "already done". */
function markerAlreadyThere(err: unknown): boolean {
  if (!(err instanceof TransactionCanceledException) && (err as { name?: string })?.name !== 'TransactionCanceledException') return false;
  const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
  return reasons[0]?.Code === 'ConditionalCheckFailed';
}
/** Conflicts and throttles inside a transaction are worth another go before SQS redelivers. */
function retryableTransaction(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  if (name === 'TransactionConflictException' || name === 'ProvisionedThroughputExceededException' || name === 'ThrottlingException') return true;
  if (name !== 'TransactionCanceledException') return false;
  const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
  return (
    !markerAlreadyThere(err) &&
    reasons.some((r) => r.Code === 'TransactionConflict' || r.Code === 'ThrottlingError' || r.Code === 'ProvisionedThroughputExceeded')
  );
}

export class DynamoUsageLedger implements UsageLedger {
  private readonly meter: CapacityMeter;
  constructor(
    private readonly db: DynamoDBClient,
    private readonly tables: LedgerTables,
    private readonly opts: LedgerOptions,
  ) {
    this.meter = opts.capacity ?? processCapacity;
  }

  private expiresAt(): AttributeValue {
    return N(String(Math.floor(this.opts.clock.now().getTime() / 1000) + this.opts.markerTtlSeconds));
  }

  async claim(batchId: string, events: MeteredEvent[]): Promise<ClaimOutcome[]> {
    const expiresAt = this.expiresAt();
    return mapLimit(events, this.opts.concurrency ?? 24, async (e) => {
      try {
        const out = await this.db.send(
          new PutItemCommand({
            TableName: this.tables.dedupe,
            Item: { pk: S(claimPk(e)), claimedBy: S(batchId), expiresAt },
            ConditionExpression: 'attribute_not_exists(pk) OR claimedBy = :batch',
            ExpressionAttributeValues: { ':batch': S(batchId) },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.meter.record(out.ConsumedCapacity);
        this.meter.price(1);
        return 'owned';
      } catch (err) {
        if (isConditionFailure(err)) {
          // A failed condition is still billed as the write it attempted.
          this.meter.price(1);
          return 'duplicate';
        }
        throw err;
      }
    });
  }

  async apply(batchId: string, plan: AggregationPlan): Promise<void> {
    await this.applyAdditive(batchId, plan);
    const concurrency = this.opts.concurrency ?? 24;
    await mapLimit(plan.max, concurrency, (c) => this.setIfGreater(c, 'value', c.value, { value: N(c.value) }));
    await mapLimit(plan.latest, concurrency, (c) => this.setIfGreater(c, 'ord', c.order, { value: N(c.value), ord: S(c.order) }));
    const uniques = plan.unique.flatMap((c) => c.values.map((value) => ({ c, value })));
    await mapLimit(uniques, concurrency, ({ c, value }) => this.addUnique(c, value));
  }

  private counterUpdate(ref: CounterRef, sk: string, delta: string): TransactWriteItem {
    return {
      Update: {
        TableName: this.tables.usage,
        Key: { pk: S(usagePk(ref.customerId, ref.period)), sk: S(sk) },
        UpdateExpression: 'ADD #v :d SET customerId = :c, period = :p',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':d': N(delta), ':c': S(ref.customerId), ':p': S(ref.period) },
      },
    };
  }

  private async applyAdditive(batchId: string, plan: AggregationPlan): Promise<void> {
    const updates = [
      ...plan.additive.map((c) => this.counterUpdate(c, `m#${c.meter}`, c.delta)),
      ...plan.duplicates.map((d) => this.counterUpdate({ ...d, meter: '_duplicates' }, DUPLICATES_SK, String(d.count))),
    ];
    const expiresAt = this.expiresAt();
    for (let n = 0; n * COUNTERS_PER_TRANSACTION < updates.length; n++) {
      const chunk = updates.slice(n * COUNTERS_PER_TRANSACTION, (n + 1) * COUNTERS_PER_TRANSACTION);
      const marker: TransactWriteItem = {
        Put: {
          TableName: this.tables.dedupe,
          Item: { pk: S(`ap|${batchId}|${n}`), expiresAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      };
      await this.transact([marker, ...chunk]);
    }
  }

  /** Runs a marker-first transaction; "marker already there" means a previous delivery applied it. */
  private async transact(items: TransactWriteItem[]): Promise<void> {
    try {
      await retry(
        async () => {
          this.meter.price(0, items.length);
          const out = await this.db.send(new TransactWriteItemsCommand({ TransactItems: items, ReturnConsumedCapacity: 'TOTAL' }));
          this.meter.record(out.ConsumedCapacity);
        },
        { attempts: 6, baseMs: 50, retryable: retryableTransaction },
      );
    } catch (err) {
      if (markerAlreadyThere(err)) return;
      throw err;
    }
  }

  /** MAX and LATEST: "set if greater" is idempotent, so redelivery cannot change the outcome. */
  private async setIfGreater(ref: CounterRef, attr: 'value' | 'ord', compareTo: string, values: Record<string, AttributeValue>): Promise<void> {
    const names: Record<string, string> = {};
    const sets: string[] = [];
    const exprValues: Record<string, AttributeValue> = { ':c': S(ref.customerId), ':p': S(ref.period) };
    for (const [k, v] of Object.entries(values)) {
      names[`#${k}`] = k;
      exprValues[`:${k}`] = v;
      sets.push(`#${k} = :${k}`);
    }
    names[`#${attr}`] = attr;
    exprValues[':cmp'] = attr === 'value' ? N(compareTo) : S(compareTo);
    try {
      const out = await this.db.send(
        new UpdateItemCommand({
          TableName: this.tables.usage,
          Key: { pk: S(usagePk(ref.customerId, ref.period)), sk: S(`m#${ref.meter}`) },
          UpdateExpression: `SET ${sets.join(', ')}, customerId = :c, period = :p`,
          ConditionExpression: `attribute_not_exists(#${attr}) OR #${attr} < :cmp`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: exprValues,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.meter.record(out.ConsumedCapacity);
      this.meter.price(1);
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      this.meter.price(1);
    }
  }

  /** UNIQUE_COUNT: the distinct-value marker and the +1 commit together, so each value counts once. */
  private async addUnique(ref: CounterRef, value: string): Promise<void> {
    const pk = S(usagePk(ref.customerId, ref.period));
    await this.transact([
      {
        Put: {
          TableName: this.tables.usage,
          Item: { pk, sk: S(uniqueSk(ref.meter, value)) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      this.counterUpdate(ref, `m#${ref.meter}`, '1'),
    ]);
  }

  async customersWithUsage(period: string): Promise<string[]> {
    const ids = new Set<string>();
    const items = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          IndexName: 'byPeriod',
          KeyConditionExpression: 'period = :p',
          ExpressionAttributeValues: { ':p': S(period) },
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) ids.add(item.customerId!.S!);
    return [...ids].sort();
  }

  async read(customerId: string, period: string): Promise<{ values: Record<string, string>; duplicatesDropped: number }> {
    const values: Record<string, string> = {};
    let duplicatesDropped = 0;
    const items = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :m)',
          ExpressionAttributeValues: { ':pk': S(usagePk(customerId, period)), ':m': S('m#') },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) {
      const sk = item.sk!.S!;
      const v = canonical(new Q(item.value?.N ?? '0'));
      if (sk === DUPLICATES_SK) duplicatesDropped = Number(v);
      else values[sk.slice(2)] = v;
    }
    return { values, duplicatesDropped };
  }
}
