import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AlertRecord, AlertRepository } from '../../app/ports/alerts';
import { isConditionalCheckFailure } from '../aws-errors';
import { documents } from './documents';

/**
 * Alerts table: pk = <customerId>|<period>, sk = alert key (e.g. "included#api_calls#80").
 * `pendingSince` exists only while an alert is unsent; the sparse `pending` index (pk = pendingShard)
 * is the outbox the sweeper reads. A superseded claim is never sent, so it never enters the outbox.
 */
const key = (r: Pick<AlertRecord, 'customerId' | 'period' | 'key'>) => ({ pk: `${r.customerId}|${r.period}`, sk: r.key });
const strip = (item: Record<string, unknown>): AlertRecord => {
  const { pk: _pk, sk: _sk, pendingShard: _s, pendingSince: _p, ...rest } = item;
  return rest as unknown as AlertRecord;
};

export class DynamoAlerts implements AlertRepository {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async list(customerId: string, period: string): Promise<AlertRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `${customerId}|${period}` },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map(strip);
  }

  async claim(record: AlertRecord): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: `${record.customerId}|${record.period}`,
            sk: record.key,
            ...record,
            ...(record.status === 'pending' ? { pendingShard: 'pending', pendingSince: record.claimedAt } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }

  async markSent(record: AlertRecord, messageId: string, at: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key(record),
        UpdateExpression: 'SET #status = :sent, sentAt = :at, messageId = :id ADD attempts :one REMOVE pendingShard, pendingSince',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':sent': 'sent', ':at': at, ':id': messageId, ':one': 1 },
      }),
    );
  }

  async markFailed(record: AlertRecord, error: string): Promise<void> {
    await this.db
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: key(record),
          UpdateExpression: 'SET lastError = :e ADD attempts :one',
          ConditionExpression: '#status = :pending',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':e': error.slice(0, 500), ':one': 1, ':pending': 'pending' },
        }),
      )
      .catch((err: unknown) => {
        if (!isConditionalCheckFailure(err)) throw err;
      });
  }

  async pending(before: string, limit: number): Promise<AlertRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'pending',
        KeyConditionExpression: 'pendingShard = :p AND pendingSince < :before',
        ExpressionAttributeValues: { ':p': 'pending', ':before': before },
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(strip);
  }
}
