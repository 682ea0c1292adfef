import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { UsageEpoch } from '../../app/ports/usage';
import { isConditionalCheckFailure } from '../aws-errors';
import { documents } from './documents';

/**
 * The earliest period with usage or a customer: one item in the usage table (pk `#epoch`, which no
 * customer id can produce: ids never start with '#'; it has no `period` attribute, so the byPeriod
 * index never sees it). Written with "set if earlier", so concurrent writers converge on the
 * minimum; each instance remembers what it wrote and skips later periods, so counting costs one
 * conditional write per instance and period, not one per message.
 */
const KEY = { pk: '#epoch', sk: '#epoch' };

export class DynamoUsageEpoch implements UsageEpoch {
  private readonly db: DynamoDBDocumentClient;
  private noted: string | undefined;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.db = documents(client);
  }

  async note(period: string): Promise<void> {
    if (this.noted !== undefined && this.noted <= period) return;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: KEY,
          UpdateExpression: 'SET earliest = :p',
          ConditionExpression: 'attribute_not_exists(earliest) OR earliest > :p',
          ExpressionAttributeValues: { ':p': period },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailure(err)) throw err;
    }
    this.noted = period;
  }

  async earliest(): Promise<string | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: KEY, ConsistentRead: true }));
    return out.Item?.earliest as string | undefined;
  }
}
