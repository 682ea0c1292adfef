import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { allItems } from './paging';
import type {
  CreateInvoicesOutcome,
  InvoiceRecord,
  InvoiceRepository,
  InvoiceRun,
  InvoiceRunRepository,
  InvoiceStatus,
  RunMemberStatus,
} from '../../app/ports';

/**
 * Billing table (pk, sk):
 *   inv#<customerId> / <period>            a period's own invoice (status, frozen lines, Stripe ids, baseline)
 *   inv#<customerId> / <period>#<currency> corrections billed in another currency than the period's own invoice
 *   run#<period>     / #run                an invoice run
 *   run#<period>     / cus#<customerId>    one customer's membership in the run (counted once)
 */
const opts = { removeUndefinedValues: true, convertClassInstanceToMap: true };
const invKey = (customerId: string, key: string) => marshall({ pk: `inv#${customerId}`, sk: key });
const runKey = (period: string) => marshall({ pk: `run#${period}`, sk: '#run' });
const memberKey = (period: string, customerId: string) => marshall({ pk: `run#${period}`, sk: `cus#${customerId}` });

function strip<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}
const conditionFailed = (err: unknown) => err instanceof ConditionalCheckFailedException;

export class DynamoInvoices implements InvoiceRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(customerId: string, key: string): Promise<InvoiceRecord | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: invKey(customerId, key), ConsistentRead: true }));
    return out.Item ? strip<InvoiceRecord>(unmarshall(out.Item)) : undefined;
  }

  async list(customerId: string): Promise<InvoiceRecord[]> {
    const records: InvoiceRecord[] = [];
    const items = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: marshall({ ':pk': `inv#${customerId}` }),
          ScanIndexForward: false,
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of items) records.push(strip<InvoiceRecord>(unmarshall(item)));
    return records;
  }

  async create(
    records: InvoiceRecord[],
    baselines: { customerId: string; period: string; quantities: Record<string, string>; version: number }[],
    credits: { customerId: string; key: string; appliedTo: string }[],
  ): Promise<CreateInvoicesOutcome> {
    const now = records[0]!.createdAt;
    const items: TransactWriteItem[] = [
      // The period's own invoice first: its condition failing means another attempt made it.
      ...records.map((r) => ({
        Put: {
          TableName: this.table,
          Item: marshall({ pk: `inv#${r.customerId}`, sk: r.key, ...r }, opts),
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
          ExpressionAttributeValues: marshall({ ':q': b.quantities, ':v': b.version, ':next': b.version + 1, ':now': now }),
        },
      })),
      // A carried credit is used once.
      ...credits.map((c) => ({
        Update: {
          TableName: this.table,
          Key: invKey(c.customerId, c.key),
          UpdateExpression: 'SET creditAppliedTo = :to, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(creditAppliedTo)',
          ExpressionAttributeValues: marshall({ ':to': c.appliedTo, ':now': now }),
        },
      })),
    ];
    try {
      await this.db.send(new TransactWriteItemsCommand({ TransactItems: items }));
      return 'created';
    } catch (err) {
      if (!(err instanceof TransactionCanceledException)) throw err;
      const reasons = err.CancellationReasons ?? [];
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return 'exists';
      if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) return 'moved';
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
        new UpdateItemCommand({
          TableName: this.table,
          Key: invKey(customerId, key),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#status = :expected',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: marshall(values, opts),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return strip<InvoiceRecord>(unmarshall(out.Attributes!));
    } catch (err) {
      if (conditionFailed(err)) return undefined;
      throw err;
    }
  }
}

export class DynamoInvoiceRuns implements InvoiceRunRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  /**
   * The run with its counters, counted from the members' statuses: exact by construction (no
   * counter to keep in step), at the price of reading the members (about 100 bytes each).
   */
  async get(period: string): Promise<InvoiceRun | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: runKey(period), ConsistentRead: true }));
    if (!out.Item) return undefined;
    const run = strip<Pick<InvoiceRun, 'period' | 'startedAt' | 'fannedOut'>>(unmarshall(out.Item));
    const counts = { total: 0, done: 0, skipped: 0, failed: 0 };
    const members = allItems((start) =>
      this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :cus)',
          ExpressionAttributeValues: marshall({ ':pk': `run#${period}`, ':cus': 'cus#' }),
          ProjectionExpression: '#status',
          ExpressionAttributeNames: { '#status': 'status' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ),
    );
    for await (const item of members) {
      counts.total++;
      const status = item.status?.S as RunMemberStatus;
      if (status !== 'pending') counts[status]++;
    }
    return { period: run.period, startedAt: run.startedAt, fannedOut: run.fannedOut === true, ...counts };
  }

  async exists(period: string): Promise<boolean> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: runKey(period), ProjectionExpression: 'pk' }));
    return out.Item !== undefined;
  }

  async setFannedOut(period: string, fannedOut: boolean): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: runKey(period),
        UpdateExpression: 'SET fannedOut = :f',
        ExpressionAttributeValues: marshall({ ':f': fannedOut }),
      }),
    );
  }

  async ensure(period: string, now: string): Promise<void> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: marshall({ ...unmarshall(runKey(period)), period, startedAt: now }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }

  async addMember(period: string, customerId: string): Promise<RunMemberStatus | 'added'> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: marshall({ ...unmarshall(memberKey(period, customerId)), status: 'pending' }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return 'added';
    } catch (err) {
      if (!conditionFailed(err)) throw err;
      const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: memberKey(period, customerId), ConsistentRead: true }));
      return unmarshall(out.Item!).status as RunMemberStatus;
    }
  }

  async reopen(period: string, customerId: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: memberKey(period, customerId),
          UpdateExpression: 'SET #status = :pending',
          ConditionExpression: '#status = :failed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: marshall({ ':pending': 'pending', ':failed': 'failed' }),
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
  }

  async finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>, error?: string): Promise<void> {
    try {
      // Final statuses stay final; "failed" may still become done or skipped when a re-run succeeds.
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: memberKey(period, customerId),
          UpdateExpression: error === undefined ? 'SET #status = :s REMOVE lastError' : 'SET #status = :s, lastError = :e',
          ConditionExpression: 'attribute_exists(pk) AND #status IN (:pending, :failed)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: marshall({
            ':s': status,
            ':pending': 'pending',
            ':failed': 'failed',
            ...(error === undefined ? {} : { ':e': error.slice(0, 500) }),
          }),
        }),
      );
    } catch (err) {
      // Not a member (a job outside any run) or already final: nothing to count.
      if (!conditionFailed(err)) throw err;
    }
  }
}
