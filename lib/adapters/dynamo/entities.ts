import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ApiKeyRecord, KeyLimits } from '../../domain/apikey';
import type { ApiKeyRepository, IdempotencyRecord, IdempotencyStore } from '../../app/ports/access';
import type { CustomerRepository } from '../../app/ports/customers';
import type { Customer } from '../../domain/customer';
import { isConditionalCheckFailure } from '../aws-errors';
import { allItems, documents } from './documents';

/** Customers keyed by id; listing is a paginated scan (the admin listing, the invoice run's fan-out). */
export class DynamoCustomers implements CustomerRepository {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async get(id: string): Promise<Customer | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }));
    return out.Item as Customer | undefined;
  }
  async put(customer: Customer): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: customer }));
  }
  async list(limit: number, after?: string): Promise<{ items: Customer[]; lastId?: string }> {
    const out = await this.db.send(
      new ScanCommand({ TableName: this.table, Limit: limit, ExclusiveStartKey: after === undefined ? undefined : { id: after } }),
    );
    return { items: (out.Items ?? []) as Customer[], lastId: out.LastEvaluatedKey ? String(out.LastEvaluatedKey.id) : undefined };
  }
}

export class DynamoApiKeys implements ApiKeyRepository {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { keyId }, ConsistentRead: true }));
    return out.Item as ApiKeyRecord | undefined;
  }
  async create(record: ApiKeyRecord): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: record, ConditionExpression: 'attribute_not_exists(keyId)' }));
  }
  async revoke(keyId: string, at: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { keyId },
          UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
          ConditionExpression: 'attribute_exists(keyId)',
          ExpressionAttributeValues: { ':at': at },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }
  async setLimits(keyId: string, limits: Partial<KeyLimits>): Promise<boolean> {
    const empty = Object.keys(limits).length === 0;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { keyId },
          UpdateExpression: empty ? 'REMOVE limits' : 'SET limits = :l',
          ConditionExpression: 'attribute_exists(keyId)',
          ExpressionAttributeValues: empty ? undefined : { ':l': limits },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) return false;
      throw err;
    }
  }
  async list(): Promise<ApiKeyRecord[]> {
    const items: ApiKeyRecord[] = [];
    for await (const item of allItems<ApiKeyRecord>((start) => this.db.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start })))) {
      items.push(item);
    }
    return items;
  }
}

interface StoredAnswer {
  status: 202;
  body: { accepted: number };
}

/** Ingest Idempotency-Key records live in the dedupe table for 24 hours. */
export class DynamoIdempotency implements IdempotencyStore {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => Date,
    private readonly ttlSeconds = 24 * 3600,
  ) {
    this.db = documents(client);
  }

  private pk(scope: string, key: string) {
    return `idem|${scope}|${key}`;
  }
  async begin(scope: string, key: string, requestHash: string): Promise<IdempotencyRecord | undefined> {
    const pk = this.pk(scope, key);
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk, requestHash, expiresAt: Math.floor(this.now().getTime() / 1000) + this.ttlSeconds },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return undefined;
    } catch (err) {
      if (!isConditionalCheckFailure(err)) throw err;
      const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true }));
      const item = out.Item as { requestHash: string; response?: string };
      if (item.response === undefined) return { scope, key, requestHash: item.requestHash };
      const stored = JSON.parse(item.response) as StoredAnswer;
      return { scope, key, requestHash: item.requestHash, response: { accepted: stored.body.accepted } };
    }
  }
  /** Stored as the HTTP answer it was (the form every version reads and writes: records live 24 hours across deploys). */
  async complete(scope: string, key: string, response: { accepted: number }): Promise<void> {
    const stored: StoredAnswer = { status: 202, body: response };
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: this.pk(scope, key) },
        UpdateExpression: 'SET #r = :r',
        ExpressionAttributeNames: { '#r': 'response' },
        ExpressionAttributeValues: { ':r': JSON.stringify(stored) },
      }),
    );
  }
}
