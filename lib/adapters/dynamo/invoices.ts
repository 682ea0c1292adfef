import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type {
  InvoiceRecord,
  InvoiceRepository,
  InvoiceRun,
  InvoiceRunRepository,
  InvoiceStatus,
  RunMemberStatus,
} from '../../app/ports';

/**
 * Billing table (pk, sk):
 *   inv#<customerId> / <period>        an invoice record (status, frozen lines, Stripe ids)
 *   run#<period>     / #run            an invoice run and its counters
 *   run#<period>     / cus#<customerId> one customer's membership in the run (counted once)
 */
const opts = { removeUndefinedValues: true, convertClassInstanceToMap: true };
const invKey = (customerId: string, period: string) => marshall({ pk: `inv#${customerId}`, sk: period });
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

  async get(customerId: string, period: string): Promise<InvoiceRecord | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: invKey(customerId, period), ConsistentRead: true }));
    return out.Item ? strip<InvoiceRecord>(unmarshall(out.Item)) : undefined;
  }

  async list(customerId: string): Promise<InvoiceRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: marshall({ ':pk': `inv#${customerId}` }),
        ScanIndexForward: false,
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((i) => strip<InvoiceRecord>(unmarshall(i)));
  }

  async create(
    record: InvoiceRecord,
    baselines: { record: InvoiceRecord | undefined; customerId: string; period: string; quantities: Record<string, string> }[],
  ): Promise<boolean> {
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.table,
          Item: marshall({ pk: `inv#${record.customerId}`, sk: record.period, ...record }, opts),
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ];
    for (const b of baselines) {
      if (b.record) {
        // Optimistic: only if nobody moved this baseline since we read it.
        items.push({
          Update: {
            TableName: this.table,
            Key: invKey(b.customerId, b.period),
            UpdateExpression: 'SET invoicedQuantities = :q, invoicedVersion = :next, updatedAt = :now',
            ConditionExpression: 'invoicedVersion = :v',
            ExpressionAttributeValues: marshall({ ':q': b.quantities, ':v': b.record.invoicedVersion, ':next': b.record.invoicedVersion + 1, ':now': record.createdAt }),
          },
        });
      } else {
        // Late usage for a closed period that had no invoice: record what is now billed for it.
        const placeholder: InvoiceRecord = {
          customerId: b.customerId, period: b.period, status: 'no_charge', planId: record.planId, currency: record.currency, lines: [], total: '0', totalMinor: 0,
          quantities: {}, invoicedQuantities: b.quantities, invoicedVersion: 1, corrections: [], attempts: 0, createdAt: record.createdAt, updatedAt: record.createdAt,
        };
        items.push({
          Put: { TableName: this.table, Item: marshall({ pk: `inv#${b.customerId}`, sk: b.period, ...placeholder }, opts), ConditionExpression: 'attribute_not_exists(pk)' },
        });
      }
    }
    try {
      await this.db.send(new TransactWriteItemsCommand({ TransactItems: items }));
      return true;
    } catch (err) {
      if (err instanceof TransactionCanceledException && err.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
      throw err;
    }
  }

  async update(customerId: string, period: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>): Promise<boolean> {
    const entries = Object.entries(changes).filter(([, v]) => v !== undefined);
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':expected': expected };
    const sets = entries.map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#f${i} = :v${i}`;
    });
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: invKey(customerId, period),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#status = :expected',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: marshall(values, opts),
        }),
      );
      return true;
    } catch (err) {
      if (conditionFailed(err)) return false;
      throw err;
    }
  }
}

export class DynamoInvoiceRuns implements InvoiceRunRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(period: string): Promise<InvoiceRun | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: runKey(period), ConsistentRead: true }));
    return out.Item ? strip<InvoiceRun>(unmarshall(out.Item)) : undefined;
  }

  async ensure(period: string, now: string): Promise<InvoiceRun> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: runKey(period),
          UpdateExpression: 'SET period = :p, #status = :running, #total = :zero, done = :zero, skipped = :zero, failed = :zero, startedAt = :now, updatedAt = :now',
          ConditionExpression: 'attribute_not_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status', '#total': 'total' },
          ExpressionAttributeValues: marshall({ ':p': period, ':running': 'running', ':zero': 0, ':now': now }),
        }),
      );
    } catch (err) {
      if (!conditionFailed(err)) throw err;
    }
    return (await this.get(period))!;
  }

  async addMember(period: string, customerId: string): Promise<RunMemberStatus> {
    try {
      await this.db.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: this.table, Item: marshall({ ...unmarshall(memberKey(period, customerId)), status: 'pending' }), ConditionExpression: 'attribute_not_exists(pk)' } },
            {
              Update: {
                TableName: this.table,
                Key: runKey(period),
                UpdateExpression: 'ADD #total :one SET #status = :running',
                ExpressionAttributeNames: { '#total': 'total', '#status': 'status' },
                ExpressionAttributeValues: marshall({ ':one': 1, ':running': 'running' }),
              },
            },
          ],
        }),
      );
      return 'pending';
    } catch (err) {
      if (!(err instanceof TransactionCanceledException && err.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed')) throw err;
      const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: memberKey(period, customerId), ConsistentRead: true }));
      return unmarshall(out.Item!).status as RunMemberStatus;
    }
  }

  async finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>): Promise<void> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: memberKey(period, customerId), ConsistentRead: true }));
    const previous = out.Item ? (unmarshall(out.Item).status as RunMemberStatus) : undefined;
    // Jobs outside a run (a customer invoiced by hand) have no membership to move.
    if (previous === undefined || previous === status || previous === 'done' || previous === 'skipped') return;
    const add = previous === 'failed' ? `${status} :one, failed :minus` : `${status} :one`;
    try {
      await this.db.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: memberKey(period, customerId),
                UpdateExpression: 'SET #status = :s',
                ConditionExpression: '#status = :prev',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: marshall({ ':s': status, ':prev': previous }),
              },
            },
            {
              Update: {
                TableName: this.table,
                Key: runKey(period),
                UpdateExpression: `ADD ${add} SET updatedAt = :now`,
                ExpressionAttributeValues: marshall({ ':one': 1, ...(previous === 'failed' ? { ':minus': -1 } : {}), ':now': new Date().toISOString() }),
              },
            },
          ],
        }),
      );
    } catch (err) {
      // Another attempt moved it first: counted once already.
      if (err instanceof TransactionCanceledException && err.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') return;
      throw err;
    }
  }
}
