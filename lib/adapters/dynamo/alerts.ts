import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { AlertRecord, AlertRepository } from '../../app/ports';

/**
 * Alerts table: pk = <customerId>|<period>, sk = alert key (e.g. "included#api_calls#80").
 * `pendingSince` exists only while an alert is unsent; the sparse `pending` index (pk = pendingShard)
 * is the outbox the sweeper reads.
 */
const opts = { removeUndefinedValues: true };
const key = (r: Pick<AlertRecord, 'customerId' | 'period' | 'key'>) => marshall({ pk: `${r.customerId}|${r.period}`, sk: r.key });
const strip = (item: Record<string, AttributeValue>): AlertRecord => {
  const { pk: _pk, sk: _sk, pendingShard: _s, pendingSince: _p, ...rest } = unmarshall(item);
  return rest as AlertRecord;
};

export class DynamoAlerts implements AlertRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async list(customerId: string, period: string): Promise<AlertRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: marshall({ ':pk': `${customerId}|${period}` }),
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map(strip);
  }

  async claim(record: AlertRecord): Promise<boolean> {
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: marshall(
            { pk: `${record.customerId}|${record.period}`, sk: record.key, ...record, pendingShard: 'pending', pendingSince: record.claimedAt },
            opts,
          ),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async markSent(record: AlertRecord, messageId: string, at: string): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: key(record),
        UpdateExpression: 'SET #status = :sent, sentAt = :at, messageId = :id ADD attempts :one REMOVE pendingShard, pendingSince',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: marshall({ ':sent': 'sent', ':at': at, ':id': messageId, ':one': 1 }),
      }),
    );
  }

  async markFailed(record: AlertRecord, error: string): Promise<void> {
    await this.db
      .send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key(record),
          UpdateExpression: 'SET lastError = :e ADD attempts :one',
          ConditionExpression: '#status = :pending',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: marshall({ ':e': error.slice(0, 500), ':one': 1, ':pending': 'pending' }),
        }),
      )
      .catch((err: unknown) => {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      });
  }

  async pending(before: string, limit: number): Promise<AlertRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'pending',
        KeyConditionExpression: 'pendingShard = :p AND pendingSince < :before',
        ExpressionAttributeValues: marshall({ ':p': 'pending', ':before': before }),
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(strip);
  }
}
