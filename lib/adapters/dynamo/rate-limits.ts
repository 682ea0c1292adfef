import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RateLimiter } from '../../app/ports/access';
import type { LimitWindow } from '../../domain/rate-limit';
import { isConditionalCheckFailure } from '../aws-errors';
import { documents } from './documents';

/** Windows whose items are gone by TTL this long after they end (TTL deletes lazily; the key names the minute anyway). */
const KEEP_SECONDS = 120;
/** Refused windows remembered per instance before the ended ones are dropped. */
const MAX_REMEMBERED = 10_000;

/** Counter writes made by this process, refused ones included (each is a write unit): benchmarks report them. */
export const limitWrites = { count: 0 };

/** A window that refused one more is full for any count at that limit until it ends (a raised limit asks again). */
const memoOf = (window: LimitWindow, limit: number) => `${window.item}|${window.field}|${limit}`;

/**
 * A key's limit windows as counters on the rate-limits table: one conditional UpdateItem per take
 * (`ADD field :count` if the field plus the count stays within the limit), 1 write unit whether it
 * passes or not. A request window this instance saw full is refused from memory until it ends, so a
 * key flooding past its limit costs one write per instance per second, not one per request.
 *
 * If the table cannot be written (throttled, unavailable), the take passes: `onFailure` hears of it.
 * A limit protects the service; an outage of its counters must not stop ingest.
 */
export class DynamoRateLimiter implements RateLimiter {
  private readonly db: DynamoDBDocumentClient;
  private readonly refused = new Map<string, number>();

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
    private readonly onFailure: (err: unknown) => void,
  ) {
    this.db = documents(client);
  }

  async take(window: LimitWindow, count: number, limit: number): Promise<boolean> {
    const memo = memoOf(window, limit);
    if (count > limit || this.refused.has(memo)) return false;
    try {
      limitWrites.count++;
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: window.item },
          UpdateExpression: 'ADD #f :count SET expiresAt = if_not_exists(expiresAt, :expires)',
          ConditionExpression: 'attribute_not_exists(#f) OR #f <= :most',
          ExpressionAttributeNames: { '#f': window.field },
          ExpressionAttributeValues: { ':count': count, ':most': limit - count, ':expires': Math.ceil(window.endsAt / 1000) + KEEP_SECONDS },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailure(err)) {
        if (count === 1) this.remember(memo, window.endsAt);
        return false;
      }
      this.onFailure(err);
      return true;
    }
  }

  private remember(memo: string, endsAt: number): void {
    if (this.refused.size >= MAX_REMEMBERED) {
      const now = Date.now();
      for (const [k, end] of this.refused) if (end <= now) this.refused.delete(k);
      if (this.refused.size >= MAX_REMEMBERED) this.refused.clear();
    }
    this.refused.set(memo, endsAt);
  }
}
