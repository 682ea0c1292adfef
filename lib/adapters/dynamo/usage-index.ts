import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdPage, UsageIndex } from '../../app/ports/usage';
import { documents } from './documents';

/**
 * The customers with usage in a period, from the usage table's byPeriod index (keys only: one
 * entry per counter, sorted by customer), a page at a time: the invoice run's fan-out and
 * reconciliation. The cursor is the index's LastEvaluatedKey, opaque to the caller.
 */
export class DynamoUsageIndex implements UsageIndex {
  private readonly db: DynamoDBDocumentClient;
  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async customersWithUsage(period: string, page: { cursor?: string; limit: number }): Promise<IdPage> {
    const ids = new Set<string>();
    let start = page.cursor === undefined ? undefined : (JSON.parse(Buffer.from(page.cursor, 'base64url').toString('utf8')) as Record<string, unknown>);
    // A customer has one entry per meter it used: read on until the page holds `limit` customers.
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'byPeriod',
          KeyConditionExpression: 'period = :p',
          ExpressionAttributeValues: { ':p': period },
          ExclusiveStartKey: start,
          Limit: page.limit,
        }),
      );
      for (const item of out.Items ?? []) ids.add(String(item.customerId));
      start = out.LastEvaluatedKey;
    } while (start !== undefined && ids.size < page.limit);
    return { ids: [...ids], cursor: start === undefined ? undefined : Buffer.from(JSON.stringify(start)).toString('base64url') };
  }
}
