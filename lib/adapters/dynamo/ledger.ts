import { BatchExecuteStatementCommand, BatchGetItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AggregationPlan, CounterRef } from '../../domain/aggregation';
import type { MeteredEvent } from '../../domain/events';
import { Q, canonical, type Quantity } from '../../domain/quantity';
import type { Clock } from '../../app/ports/clock';
import type { UsageLedger } from '../../app/ports/usage';
import { cancellationReasons, isConditionalCheckFailure, isThrottling } from '../aws-errors';
import { mapLimit, retry } from '../../domain/concurrency';
import { DUPLICATES_SK, shardSuffix, counterOf, usagePk, counterSk, dailySk, settledPk, claimPk, legacyClaimPk, uniqueSk } from './usage-keys';
import { capacity as processCapacity, type CapacityMeter } from './capacity';
import { allItems, batchGetAll, documents, exact } from './documents';

type TransactItem = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]['TransactItems']>[number];

/**
 * The exactly-once ledger on DynamoDB (docs/exactly-once.md).
 *
 * Dedupe table (pk):
 *   ev|<json [source,id]>   claim marker: claimedBy = batch id, expiresAt (TTL) beyond the window,
 *                           c/p/g = customer, period and archive group of the event
 *   ev|sha256:<hex>         the same, for an identity whose readable key would exceed 2,048 bytes
 *   ap|<batchId>|<n>        "applied" marker of the n-th additive transaction of a batch
 *   ap|<batchId>|settled    the whole batch is applied (its events can be voided)
 * Usage table (pk = <customerId>|<period>, sk):
 *   m#<meter>               counter: value (N, exact decimal), order (LATEST), customerId, period
 *   m#_duplicates           duplicates dropped for the customer and period
 *   d#<meter>#<YYYY-MM-DD>  the meter's counter for one UTC day (SUM, COUNT, MAX, LATEST): value,
 *                           ord (LATEST); no customerId/period, so the byPeriod index never sees it
 *   u#<meter>#<value>       one marker per distinct value of a UNIQUE_COUNT meter (sha256:<hex> when long)
 */
export interface LedgerTables {
  usage: string;
  dedupe: string;
}
export interface LedgerOptions {
  clock: Clock;
  markerTtlSeconds: number;
  /** Shards per additive counter (1: none). */
  shards?: number;
  /** Requests in flight per message for MAX, LATEST and UNIQUE_COUNT writes. */
  concurrency?: number;
  /** Claim requests in flight per message. */
  claimRequests?: number;
  capacity?: CapacityMeter;
  /**
   * Until then, claims are also read in their form from before the identity included the customer
   * (legacyClaimPk): a stage that ran that form sets it to its upgrade plus the late-event window.
   */
  legacyClaimsUntil?: Date;
}

/** BatchExecuteStatement takes at most 25 statements, BatchGetItem 100 keys. */
const CLAIMS_PER_REQUEST = 25;
const MAX_BATCH_GET_KEYS = 100;
/** Claim requests (of up to 25 claims) one message keeps in flight at once, unless set. */
export const DEFAULT_CLAIM_REQUESTS = 4;
/** A statement failing with one of these is sent again; any other error fails the message. */
const RETRYABLE_STATEMENT_ERRORS = new Set([
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
  'InternalServerError',
  'TransactionConflict',
]);
class ClaimsThrottled extends Error {
  constructor(n: number) {
    super(`${n} claims throttled`);
  }
}

/**
 * A claim: the marker put if its key is not there (pk, claimedBy, expiresAt, c, p, g); its values
 * are bound as parameters, never written into the text.
 */
export const claimStatement = (dedupeTable: string) => `INSERT INTO "${dedupeTable}" VALUE {'pk': ?, 'claimedBy': ?, 'expiresAt': ?, 'c': ?, 'p': ?, 'g': ?}`;

/** Requests one message's MAX, LATEST and UNIQUE_COUNT writes keep in flight at once, unless set. */
export const DEFAULT_WRITE_CONCURRENCY = 24;
/** TransactWriteItems takes 100 items; one is the applied marker. */
const COUNTERS_PER_TRANSACTION = 99;

/** The first item of our transactions is the marker; its condition failing means "already done". */
function markerAlreadyThere(err: unknown): boolean {
  return cancellationReasons(err)?.[0] === 'ConditionalCheckFailed';
}
/** Conflicts and throttles inside a transaction are worth another go before SQS redelivers. */
function retryableTransaction(err: unknown): boolean {
  if ((err as { name?: string })?.name === 'TransactionConflictException') return true;
  if (markerAlreadyThere(err)) return false;
  return isThrottling(err) || (cancellationReasons(err) ?? []).includes('TransactionConflict');
}

export class DynamoUsageLedger implements UsageLedger {
  private readonly meter: CapacityMeter;
  private readonly db: DynamoDBDocumentClient;
  private readonly claimStatement: string;
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tables: LedgerTables,
    private readonly opts: LedgerOptions,
  ) {
    this.db = documents(client);
    this.meter = opts.capacity ?? processCapacity;
    this.claimStatement = claimStatement(tables.dedupe);
  }

  private expiresAt(): number {
    return Math.floor(this.opts.clock.now().getTime() / 1000) + this.opts.markerTtlSeconds;
  }

  /**
   * Claims go 25 to a request: PartiQL's INSERT is DynamoDB's put-if-absent (a key that is there
   * already fails that statement alone with DuplicateItem), and BatchExecuteStatement runs up to
   * 25 of them each on its own, billed as 25 writes like 25 PutItems. One request instead of 25
   * is most of what counting costs the function (docs/scaling.md).
   */
  async claim(batchId: string, events: MeteredEvent[], groupOf: (e: MeteredEvent) => number): Promise<string[]> {
    // Within the upgrade's window, an event claimed in the old form by another batch is a duplicate:
    // it is not claimed again (its old marker expires with the window, when a resend is refused as too old).
    const legacy = await this.legacyHolders(events);
    if (legacy.size === 0) return this.claimEach(batchId, events, groupOf);
    const fresh = events.filter((e) => (legacy.get(e) ?? batchId) === batchId);
    const held = await this.claimEach(batchId, fresh, groupOf);
    const byEvent = new Map(fresh.map((e, i) => [e, held[i]!]));
    return events.map((e) => byEvent.get(e) ?? legacy.get(e)!);
  }

  private async claimEach(batchId: string, events: MeteredEvent[], groupOf: (e: MeteredEvent) => number): Promise<string[]> {
    const expiresAt = { N: String(this.expiresAt()) };
    const claims = events.map((e) => {
      const pk = claimPk(e);
      // c, p, g: where the event lives (customer, period, archive group): a void finds it by them.
      return { pk, parameters: [{ S: pk }, { S: batchId }, expiresAt, { S: e.customerId }, { S: e.period }, { N: String(groupOf(e)) }] };
    });
    const requests: (typeof claims)[] = [];
    for (let i = 0; i < claims.length; i += CLAIMS_PER_REQUEST) requests.push(claims.slice(i, i + CLAIMS_PER_REQUEST));
    const outcomes = (await mapLimit(requests, this.opts.claimRequests ?? DEFAULT_CLAIM_REQUESTS, (r) => this.claimMany(batchId, r))).flat();
    // Claims refused without saying whose claim they found: whose it is decides between a
    // redelivery of this batch (its own claims), its deferred part, and duplicates. Read them, all
    // of the message's at once, consistently. A claim gone by now (its TTL passed) cannot be told
    // apart: fail the message (SQS delivers it again) rather than guess.
    const unknown = outcomes.flatMap((o, i) => (o === undefined ? [i] : []));
    if (unknown.length > 0) {
      const holders = await this.holders(unknown.map((i) => claims[i]!.pk));
      for (const i of unknown) {
        const holder = holders.get(claims[i]!.pk);
        if (holder === undefined) throw new Error(`claim of ${claims[i]!.pk} was refused, and no claim was found there`);
        outcomes[i] = holder;
      }
    }
    return outcomes as string[];
  }

  /**
   * Up to 25 claims in one request; statements throttled on their own are sent again. A claim
   * refused without the claim it found comes back undefined.
   */
  private async claimMany(batchId: string, claims: { pk: string; parameters: AttributeValue[] }[]): Promise<(string | undefined)[]> {
    // Filled, not sparse: `flat()` drops the holes of a sparse array.
    const outcomes = new Array<string | undefined>(claims.length).fill(undefined);
    let pending = claims.map((_, i) => i);
    await retry(
      async () => {
        const out = await this.client.send(
          new BatchExecuteStatementCommand({
            // A refused claim may come back with the claim it found (DynamoDB Local never returns it).
            Statements: pending.map((i) => ({
              Statement: this.claimStatement,
              Parameters: claims[i]!.parameters,
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            })),
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.meter.record(out.ConsumedCapacity);
        if ((out.Responses ?? []).length !== pending.length)
          throw new Error(`claims: ${pending.length} statements sent, ${out.Responses?.length ?? 0} answered`);
        const again: number[] = [];
        // One response per statement, in the order of the statements.
        (out.Responses ?? []).forEach((r, k) => {
          const i = pending[k]!;
          const code = r.Error?.Code;
          if (code === undefined) {
            this.meter.price(1);
            outcomes[i] = batchId;
          } else if (code === 'DuplicateItem' || code === 'ConditionalCheckFailed') {
            // A refused write is still billed as the write it attempted.
            this.meter.price(1);
            const holder = r.Error!.Item?.claimedBy?.S;
            if (holder !== undefined) outcomes[i] = holder;
          } else if (RETRYABLE_STATEMENT_ERRORS.has(code)) again.push(i);
          else throw new Error(`claim of ${claims[i]!.pk} failed: ${code}: ${r.Error!.Message ?? ''}`);
        });
        pending = again;
        if (again.length > 0) throw new ClaimsThrottled(again.length);
      },
      { attempts: 8, baseMs: 50, retryable: (err) => err instanceof ClaimsThrottled },
    );
    return outcomes;
  }

  /** The batches holding the old-form claims of these events, while they are read (legacyClaimsUntil). */
  private async legacyHolders(events: MeteredEvent[]): Promise<Map<MeteredEvent, string>> {
    const until = this.opts.legacyClaimsUntil;
    if (until === undefined || this.opts.clock.now().getTime() >= until.getTime() || events.length === 0) return new Map();
    const holders = await this.holders([...new Set(events.map(legacyClaimPk))]);
    return new Map(events.flatMap((e) => (holders.has(legacyClaimPk(e)) ? [[e, holders.get(legacyClaimPk(e))!] as const] : [])));
  }

  /** The batch holding each claim: consistent BatchGetItems of up to 100 keys. */
  private async holders(pks: string[]): Promise<Map<string, string>> {
    const holders = new Map<string, string>();
    const table = this.tables.dedupe;
    for (let start = 0; start < pks.length; start += MAX_BATCH_GET_KEYS) {
      const keys: Record<string, AttributeValue>[] = pks.slice(start, start + MAX_BATCH_GET_KEYS).map((pk) => ({ pk: { S: pk } }));
      await batchGetAll(
        { [table]: keys },
        async (pending) => {
          const out = await this.client.send(
            new BatchGetItemCommand({ RequestItems: { [table]: { Keys: pending[table], ConsistentRead: true, ProjectionExpression: 'pk, claimedBy' } } }),
          );
          for (const item of out.Responses?.[table] ?? []) holders.set(item.pk!.S!, item.claimedBy?.S ?? '');
          return out;
        },
        8,
      );
    }
    return holders;
  }

  async apply(batchId: string, plan: AggregationPlan): Promise<void> {
    const shard = shardSuffix(batchId, this.opts.shards ?? 1);
    await this.applyAdditive(batchId, plan, shard);
    const concurrency = this.opts.concurrency ?? DEFAULT_WRITE_CONCURRENCY;
    // A day's MAX and LATEST take the same idempotent "set if greater/later" as the period's.
    const max = [...plan.max.map((c) => ({ c, sk: counterSk(c.meter) })), ...plan.daily.max.map((c) => ({ c, sk: dailySk(c.meter, c.day) }))];
    const latest = [...plan.latest.map((c) => ({ c, sk: counterSk(c.meter) })), ...plan.daily.latest.map((c) => ({ c, sk: dailySk(c.meter, c.day) }))];
    await mapLimit(max, concurrency, ({ c, sk }) => this.setIfGreater(c, sk, 'value', exact(c.value), { value: exact(c.value) }));
    await mapLimit(latest, concurrency, ({ c, sk }) => this.setIfGreater(c, sk, 'ord', c.order, { value: exact(c.value), ord: c.order }));
    const uniques = plan.unique.flatMap((c) => c.values.map((value) => ({ c, value })));
    await mapLimit(uniques, concurrency, ({ c, value }) => this.addUnique(c, value, shard));
    // Every counter of the batch has moved: its events may now be voided (a void before this
    // point could be undone by the batch's own "set if greater" when SQS redelivers it).
    await this.db.send(new PutCommand({ TableName: this.tables.dedupe, Item: { pk: settledPk(batchId), expiresAt: this.expiresAt() } }));
    this.meter.price(1);
  }

  private counterUpdate(ref: CounterRef, sk: string, delta: string): TransactItem {
    return {
      Update: {
        TableName: this.tables.usage,
        Key: { pk: usagePk(ref.customerId, ref.period), sk },
        UpdateExpression: 'ADD #v :d SET customerId = :c, period = :p',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':d': exact(delta), ':c': ref.customerId, ':p': ref.period },
      },
    };
  }

  /** A day's counter: the delta only (its period counter already lists the customer in the index). */
  private dailyUpdate(ref: CounterRef & { day: string }, delta: string, shard: string): TransactItem {
    return {
      Update: {
        TableName: this.tables.usage,
        Key: { pk: usagePk(ref.customerId, ref.period), sk: `${dailySk(ref.meter, ref.day)}${shard}` },
        UpdateExpression: 'ADD #v :d',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':d': exact(delta) },
      },
    };
  }

  private async applyAdditive(batchId: string, plan: AggregationPlan, shard: string): Promise<void> {
    // Daily counters go last: transaction n of a message always starts with the same period
    // counters, also for a message applied in part before daily counters existed.
    const updates = [
      ...plan.additive.map((c) => this.counterUpdate(c, `${counterSk(c.meter)}${shard}`, c.delta)),
      ...plan.duplicates.map((d) => this.counterUpdate({ ...d, meter: '_duplicates' }, `${DUPLICATES_SK}${shard}`, String(d.count))),
      ...plan.daily.additive.map((c) => this.dailyUpdate(c, c.delta, shard)),
    ];
    const expiresAt = this.expiresAt();
    for (let n = 0; n * COUNTERS_PER_TRANSACTION < updates.length; n++) {
      const chunk = updates.slice(n * COUNTERS_PER_TRANSACTION, (n + 1) * COUNTERS_PER_TRANSACTION);
      const marker: TransactItem = {
        Put: {
          TableName: this.tables.dedupe,
          Item: { pk: `ap|${batchId}|${n}`, expiresAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      };
      await this.transact([marker, ...chunk]);
    }
  }

  /** Runs a marker-first transaction; "marker already there" means a previous delivery applied it. */
  private async transact(items: TransactItem[]): Promise<void> {
    try {
      await retry(
        async () => {
          this.meter.price(0, items.length);
          const out = await this.db.send(new TransactWriteCommand({ TransactItems: items, ReturnConsumedCapacity: 'TOTAL' }));
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
  private async setIfGreater(ref: CounterRef, sk: string, attr: 'value' | 'ord', compareTo: unknown, values: Record<string, unknown>): Promise<void> {
    const names: Record<string, string> = {};
    // Period counters name their customer and period (the byPeriod index); a day's counter does not.
    const period = sk.startsWith('m#');
    const sets: string[] = period ? ['customerId = :c', 'period = :p'] : [];
    const exprValues: Record<string, unknown> = period ? { ':c': ref.customerId, ':p': ref.period } : {};
    for (const [k, v] of Object.entries(values)) {
      names[`#${k}`] = k;
      exprValues[`:${k}`] = v;
      sets.unshift(`#${k} = :${k}`);
    }
    names[`#${attr}`] = attr;
    exprValues[':cmp'] = compareTo;
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.tables.usage,
          Key: { pk: usagePk(ref.customerId, ref.period), sk },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_not_exists(#${attr}) OR #${attr} < :cmp`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: exprValues,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.meter.record(out.ConsumedCapacity);
      this.meter.price(1);
    } catch (err) {
      if (!isConditionalCheckFailure(err)) throw err;
      this.meter.price(1);
    }
  }

  /** UNIQUE_COUNT: the distinct-value marker and the +1 commit together, so each value counts once. */
  private async addUnique(ref: CounterRef, value: string, shard: string): Promise<void> {
    const pk = usagePk(ref.customerId, ref.period);
    await this.transact([
      {
        Put: {
          TableName: this.tables.usage,
          Item: { pk, sk: uniqueSk(ref.meter, value) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      this.counterUpdate(ref, `${counterSk(ref.meter)}${shard}`, '1'),
    ]);
  }

  async periodsWithUsage(customerId: string, periods: string[]): Promise<string[]> {
    const found = await mapLimit(periods, 12, async (period) => {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :m)',
          ExpressionAttributeValues: { ':pk': usagePk(customerId, period), ':m': 'm#' },
          ProjectionExpression: 'sk',
          Limit: 1,
        }),
      );
      return (out.Items?.length ?? 0) > 0;
    });
    return periods.filter((_, i) => found[i]);
  }

  async readDaily(customerId: string, period: string): Promise<Record<string, Record<string, string>>> {
    const series: Record<string, Record<string, string>> = {};
    const items = allItems<{ sk: string; value?: number | string }>((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
          ExpressionAttributeValues: { ':pk': usagePk(customerId, period), ':d': 'd#' },
          ProjectionExpression: 'sk, #v',
          ExpressionAttributeNames: { '#v': 'value' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) {
      // d#<meter>#<day>, or d#<meter>#<day>#<shard>: the shards of a day add up.
      const [, meter, day] = item.sk.split('#') as [string, string, string];
      const days = (series[meter] ??= {});
      days[day] = canonical(new Q(days[day] ?? '0').plus(String(item.value ?? '0')));
    }
    return series;
  }

  async read(customerId: string, period: string): Promise<{ values: Record<string, string>; duplicatesDropped: number }> {
    const values: Record<string, string> = {};
    let duplicatesDropped = 0;
    const items = allItems<{ sk: string; value?: number | string }>((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.tables.usage,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :m)',
          ExpressionAttributeValues: { ':pk': usagePk(customerId, period), ':m': 'm#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    const sums = new Map<string, Quantity>();
    for await (const item of items) {
      const counter = counterOf(item.sk);
      sums.set(counter, (sums.get(counter) ?? new Q(0)).plus(String(item.value ?? '0')));
    }
    for (const [counter, sum] of sums) {
      if (counter === '_duplicates') duplicatesDropped = sum.toNumber();
      else values[counter] = canonical(sum);
    }
    return { values, duplicatesDropped };
  }
}
