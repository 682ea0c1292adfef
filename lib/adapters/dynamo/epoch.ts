import { ConditionalCheckFailedException, type DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { UsageEpoch } from '../../app/ports';

/**
 * The earliest period with usage or a customer: one item in the usage table (pk `#epoch`, which no
 * customer id can produce: ids never start with '#'; it has no `period` attribute, so the byPeriod
 * index never sees it). Written with "set if earlier", so concurrent writers converge on the
 * minimum; each instance remembers what it wrote and skips later periods, so counting costs one
 * conditional write per instance and period, not one per message.
 */
export class DynamoUsageEpoch implements UsageEpoch {
  private noted: string | undefined;

  constructor(
    private readonly db: DynamoDBClient,
    private readonly table: string,
  ) {}

  private key() {
    return { pk: { S: '#epoch' }, sk: { S: '#epoch' } };
  }

  async note(period: string): Promise<void> {
    if (this.noted !== undefined && this.noted <= period) return;
    try {
      await this.db.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: this.key(),
          UpdateExpression: 'SET earliest = :p',
          ConditionExpression: 'attribute_not_exists(earliest) OR earliest > :p',
          ExpressionAttributeValues: { ':p': { S: period } },
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
    this.noted = period;
  }

  async earliest(): Promise<string | undefined> {
    const out = await this.db.send(new GetItemCommand({ TableName: this.table, Key: this.key(), ConsistentRead: true }));
    return out.Item?.earliest?.S;
  }
}
