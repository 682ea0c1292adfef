import { ConditionalCheckFailedException, type DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { allItems } from './paging';
import type { ApiKeyRecord } from '../../domain/apikey';
import type { ApiKeyRepository, Customer, CustomerRepository, IdempotencyRecord, IdempotencyStore } from '../../app/ports';

const opts = { removeUndefinedValues: true };

/** Customers keyed by id; listing is a paginated scan (the admin listing, the invoice run's fan-out). */
export class DynamoCustomers implements CustomerRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(id: string): Promise<Customer | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: marshall({ id }), ConsistentRead: true }));
    return out.Item ? (unmarshall(out.Item) as Customer) : undefined;
  }
  async put(customer: Customer): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: marshall(customer, opts) }));
  }
  async list(limit: number, cursor?: string): Promise<{ items: Customer[]; cursor?: string }> {
    const out = await this.db.send(
      new ScanCommand({
        TableName: this.table,
        Limit: limit,
        ExclusiveStartKey: cursor ? marshall({ id: Buffer.from(cursor, 'base64url').toString('utf8') }) : undefined,
      }),
    );
    const next = out.LastEvaluatedKey ? Buffer.from(String(unmarshall(out.LastEvaluatedKey).id)).toString('base64url') : undefined;
    return { items: (out.Items ?? []).map((i) => unmarshall(i) as Customer), cursor: next };
  }
}

export class DynamoApiKeys implements ApiKeyRepository {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: marshall({ keyId }), ConsistentRead: true }));
    return out.Item ? (unmarshall(out.Item) as ApiKeyRecord) : undefined;
  }
  async create(record: ApiKeyRecord): Promise<void> {
    await this.db.send(new PutItemCommand({ TableName: this.table, Item: marshall(record, opts), ConditionExpression: 'attribute_not_exists(keyId)' }));
  }
  async revoke(keyId: string, at: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: marshall({ keyId }),
          UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
          ConditionExpression: 'attribute_exists(keyId)',
          ExpressionAttributeValues: marshall({ ':at': at }),
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }
  async list(): Promise<ApiKeyRecord[]> {
    const items: ApiKeyRecord[] = [];
    for await (const item of allItems((start) => this.db.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start })))) {
      items.push(unmarshall(item) as ApiKeyRecord);
    }
    return items;
  }
}

/** Ingest Idempotency-Key records live in the dedupe table for 24 hours. */
export class DynamoIdempotency implements IdempotencyStore {
  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => Date,
    private readonly ttlSeconds = 24 * 3600,
  ) {}

  private pk(scope: string, key: string) {
    return `idem|${scope}|${key}`;
  }
  async begin(scope: string, key: string, requestHash: string): Promise<IdempotencyRecord | undefined> {
    const pk = this.pk(scope, key);
    try {
      await this.db.send(
        new PutItemCommand({
          TableName: this.table,
          Item: marshall({ pk, requestHash, expiresAt: Math.floor(this.now().getTime() / 1000) + this.ttlSeconds }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return undefined;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: marshall({ pk }), ConsistentRead: true }));
      const item = unmarshall(out.Item!) as { requestHash: string; response?: string };
      return { scope, key, requestHash: item.requestHash, response: item.response ? JSON.parse(item.response) : undefined };
    }
  }
  async complete(scope: string, key: string, response: { status: number; body: unknown }): Promise<void> {
    await this.db.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: marshall({ pk: this.pk(scope, key) }),
        UpdateExpression: 'SET #r = :r',
        ExpressionAttributeNames: { '#r': 'response' },
        ExpressionAttributeValues: marshall({ ':r': JSON.stringify(response) }),
      }),
    );
  }
}
