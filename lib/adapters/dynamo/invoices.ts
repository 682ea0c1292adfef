import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { cancellationReasons, isConditionalCheckFailure } from '../aws-errors';
import { mapLimit } from '../../domain/concurrency';
import { allItems, batchGetAll, documents } from './documents';
import type {
  CreateInvoicesOutcome,
  FanOutPosition,
  InvoiceRepository,
  InvoiceRun,
  InvoiceRunRepository,
  MemberTake,
  RunMemberStatus,
} from '../../app/ports/invoicing';
import type { IdPage } from '../../app/ports/usage';
import type { CreditSettlement, InvoiceRecord, InvoiceStatus } from '../../domain/invoice-record';

/**
 * Billing table (pk, sk):
 *   inv#<customerId> / <period>            a period's own invoice (status, frozen lines, Stripe ids, baseline)
 *   inv#<customerId> / <period>#<currency> corrections billed in another currency than the period's own invoice
 *   run#<period>     / #run                an invoice run, with its fan-out position while it fans out
 *   run#<period>     / cus#<customerId>    one customer's membership in the run (counted once), and
 *                                          the fan-out chain and step that took it last
 */
const invKey = (customerId: string, key: string) => ({ pk: `inv#${customerId}`, sk: key });
const runKey = (period: string) => ({ pk: `run#${period}`, sk: '#run' });
const memberKey = (period: string, customerId: string) => ({ pk: `run#${period}`, sk: `cus#${customerId}` });

function strip<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

export class DynamoInvoices implements InvoiceRepository {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async get(customerId: string, key: string): Promise<InvoiceRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: invKey(customerId, key), ConsistentRead: true }));
    return out.Item ? strip<InvoiceRecord>(out.Item) : undefined;
  }

  async list(customerId: string): Promise<InvoiceRecord[]> {
    const records: InvoiceRecord[] = [];
    const items = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `inv#${customerId}` },
          ScanIndexForward: false,
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) records.push(strip<InvoiceRecord>(item));
    return records;
  }

  async create(
    records: InvoiceRecord[],
    baselines: { customerId: string; period: string; quantities: Record<string, string>; version: number }[],
    credits: { customerId: string; key: string; appliedTo: string }[],
  ): Promise<CreateInvoicesOutcome> {
    const now = records[0]!.createdAt;
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [
      // The period's own invoice first: its condition failing means another attempt made it.
      ...records.map((r) => ({
        Put: {
          TableName: this.table,
          Item: { pk: `inv#${r.customerId}`, sk: r.key, ...r },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      })),
      // Optimistic: a baseline moves only if nobody moved it since it was read.
      ...baselines.map((b) => ({
        Update: {
          TableName: this.table,
          Key: invKey(b.customerId, b.period),
          UpdateExpression: 'SET invoicedQuantities = :q, invoicedVersion = :next, updatedAt = :now',
          ConditionExpression: 'invoicedVersion = :v',
          ExpressionAttributeValues: { ':q': b.quantities, ':v': b.version, ':next': b.version + 1, ':now': now },
        },
      })),
      // A carried credit is used once.
      ...credits.map((c) => ({
        Update: {
          TableName: this.table,
          Key: invKey(c.customerId, c.key),
          UpdateExpression: 'SET creditAppliedTo = :to, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(creditAppliedTo) AND attribute_not_exists(creditSettlement)',
          ExpressionAttributeValues: { ':to': c.appliedTo, ':now': now },
        },
      })),
    ];
    try {
      await this.db.send(new TransactWriteCommand({ TransactItems: items }));
      return 'created';
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (reasons === undefined) throw err;
      if (reasons[0] === 'ConditionalCheckFailed') return 'exists';
      if (reasons.includes('ConditionalCheckFailed')) return 'moved';
      throw err;
    }
  }

  async settleCredit(customerId: string, key: string, settlement: CreditSettlement): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: invKey(customerId, key),
          UpdateExpression: 'SET creditSettlement = :s, updatedAt = :now',
          ConditionExpression: '#status = :carried AND attribute_not_exists(creditAppliedTo) AND attribute_not_exists(creditSettlement)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':s': settlement, ':now': settlement.at, ':carried': 'credit_carried' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }

  async update(customerId: string, key: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>): Promise<InvoiceRecord | undefined> {
    const entries = Object.entries(changes).filter(([, v]) => v !== undefined);
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':expected': expected };
    const sets = entries.map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: invKey(customerId, key),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#status = :expected',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return strip<InvoiceRecord>(out.Attributes!);
    } catch (err) {
      if (isConditionalCheckFailure(err)) return undefined;
      throw err;
    }
  }
}

export class DynamoInvoiceRuns implements InvoiceRunRepository {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  /**
   * The run with its counters, counted from the members' statuses: exact by construction (no
   * counter to keep in step), at the price of reading the members (about 100 bytes each).
   */
  async get(period: string): Promise<InvoiceRun | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: runKey(period), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const run = strip<Pick<InvoiceRun, 'period' | 'startedAt' | 'fannedOut'>>(out.Item);
    const counts = { total: 0, done: 0, skipped: 0, failed: 0, waiting: 0, corrections: 0 };
    const members = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :cus)',
          ExpressionAttributeValues: { ':pk': `run#${period}`, ':cus': 'cus#' },
          ProjectionExpression: '#status, corrections',
          ExpressionAttributeNames: { '#status': 'status' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of members) {
      counts.total++;
      const status = item.status as RunMemberStatus;
      if (status !== 'pending') counts[status]++;
      counts.corrections += typeof item.corrections === 'number' ? item.corrections : 0;
    }
    return { period: run.period, startedAt: run.startedAt, fannedOut: run.fannedOut === true, ...counts };
  }

  async exists(period: string): Promise<boolean> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: runKey(period), ProjectionExpression: 'pk' }));
    return out.Item !== undefined;
  }

  async beginFanOut(period: string, now: string, position: FanOutPosition): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: runKey(period),
        UpdateExpression: 'SET #period = if_not_exists(#period, :period), startedAt = if_not_exists(startedAt, :now), fanOut = :position, fannedOut = :false',
        ExpressionAttributeNames: { '#period': 'period' },
        ExpressionAttributeValues: { ':period': period, ':now': now, ':position': position, ':false': false },
      }),
    );
  }

  async fanOutPosition(period: string): Promise<FanOutPosition | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: runKey(period), ProjectionExpression: 'fanOut', ConsistentRead: true }));
    return out.Item?.fanOut as FanOutPosition | undefined;
  }

  async pinFanOutPage(period: string, token: string, page: IdPage): Promise<IdPage | undefined> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runKey(period),
          UpdateExpression: 'SET fanOut.pinned = :page',
          ConditionExpression: 'fanOut.#token = :token AND attribute_not_exists(fanOut.pinned)',
          ExpressionAttributeNames: { '#token': 'token' },
          ExpressionAttributeValues: { ':page': page, ':token': token },
        }),
      );
      return page;
    } catch (err) {
      if (!isConditionalCheckFailure(err)) throw err;
      const at = await this.fanOutPosition(period);
      return at?.token === token ? at.pinned : undefined;
    }
  }

  async advanceFanOut(period: string, token: string, next: FanOutPosition): Promise<boolean> {
    return this.ifPositionHeldBy(period, token, 'SET fanOut = :next', { ':next': next });
  }

  async endFanOut(period: string, token: string): Promise<boolean> {
    return this.ifPositionHeldBy(period, token, 'SET fannedOut = :true REMOVE fanOut', { ':true': true });
  }

  private async ifPositionHeldBy(period: string, token: string, update: string, values: Record<string, unknown>): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runKey(period),
          UpdateExpression: update,
          ConditionExpression: 'fanOut.#token = :token',
          ExpressionAttributeNames: { '#token': 'token' },
          ExpressionAttributeValues: { ...values, ':token': token },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }

  /**
   * A read of up to 100 members first: a customer that another step of this chain took (a customer
   * is on several pages: the customers table, three periods of usage) needs no write. The others
   * get one conditional write each, which decides (a read may be stale; the write is not).
   */
  async takeMembers(period: string, customerIds: string[], take: MemberTake): Promise<string[]> {
    const unique = [...new Set(customerIds)];
    const taken = new Set<string>();
    for (let i = 0; i < unique.length; i += 100) {
      const keys: Record<string, unknown>[] = unique.slice(i, i + 100).map((id) => memberKey(period, id));
      await batchGetAll({ [this.table]: keys }, async (pending) => {
        const out = await this.db.send(
          new BatchGetCommand({
            RequestItems: {
              [this.table]: {
                Keys: pending[this.table],
                ProjectionExpression: 'sk, #chain, #step',
                ExpressionAttributeNames: { '#chain': 'fanOutChain', '#step': 'fanOutStep' },
              },
            },
          }),
        );
        for (const item of out.Responses?.[this.table] ?? []) {
          const m = item as { sk: string; fanOutChain?: string; fanOutStep?: string };
          if (m.fanOutChain === take.chain && m.fanOutStep !== take.step) taken.add(m.sk.slice('cus#'.length));
        }
        return out;
      });
    }
    const rest = unique.filter((id) => !taken.has(id));
    const enqueue = await mapLimit(rest, 16, (id) => this.takeMember(period, id, take));
    return rest.filter((_, i) => enqueue[i]);
  }

  /**
   * One conditional write: creates the member (pending) or marks it taken by this chain and step,
   * if it is new, was taken by this very step, or `take.again` lets it be asked again; the old
   * item tells whether a job is due.
   */
  private async takeMember(period: string, customerId: string, take: MemberTake): Promise<boolean> {
    const again = take.again.map((_, i) => `:again${i}`);
    const values: Record<string, unknown> = { ':pending': 'pending', ':chain': take.chain, ':step': take.step };
    take.again.forEach((status, i) => (values[`:again${i}`] = status));
    let condition = 'attribute_not_exists(pk) OR #step = :step';
    if (again.length > 0) {
      condition += ` OR ((attribute_not_exists(#chain) OR #chain <> :chain) AND #status IN (${again.join(', ')})`;
      if (take.againIfTakenBy !== undefined) {
        condition += ' AND begins_with(#chain, :takenBy)';
        values[':takenBy'] = take.againIfTakenBy;
      }
      condition += ')';
    }
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: memberKey(period, customerId),
          UpdateExpression: 'SET #status = if_not_exists(#status, :pending), #chain = :chain, #step = :step',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status', '#chain': 'fanOutChain', '#step': 'fanOutStep' },
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      const old = out.Attributes?.status as RunMemberStatus | undefined;
      // A failed (or waiting) member tried again is pending again: the run is not completed until its job ends.
      if ((old === 'failed' || old === 'waiting') && take.again.includes(old)) await this.reopen(period, customerId);
      return old === undefined || take.again.includes(old);
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }

  private async reopen(period: string, customerId: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: memberKey(period, customerId),
          UpdateExpression: 'SET #status = :pending',
          ConditionExpression: '#status IN (:failed, :waiting)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':pending': 'pending', ':failed': 'failed', ':waiting': 'waiting' },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailure(err)) throw err;
    }
  }

  async finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>, error?: string, corrections?: number): Promise<void> {
    try {
      // Final statuses stay final; "failed" and "waiting" may still become done or skipped when a later job succeeds.
      const set = ['#status = :s', ...(error === undefined ? [] : ['lastError = :e']), ...(corrections === undefined ? [] : ['corrections = :c'])];
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: memberKey(period, customerId),
          UpdateExpression: `SET ${set.join(', ')}${error === undefined ? ' REMOVE lastError' : ''}`,
          ConditionExpression: 'attribute_exists(pk) AND #status IN (:pending, :failed, :waiting)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':s': status,
            ':pending': 'pending',
            ':failed': 'failed',
            ':waiting': 'waiting',
            ...(error === undefined ? {} : { ':e': error.slice(0, 500) }),
            ...(corrections === undefined ? {} : { ':c': corrections }),
          },
        }),
      );
    } catch (err) {
      // Not a member (a job outside any run) or already final: nothing to count.
      if (!isConditionalCheckFailure(err)) throw err;
    }
  }
}
