import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoRateLimiter } from '../../lib/adapters/dynamo/rate-limits';
import { limitEvents, limitRequest } from '../../lib/app/limits';
import type { RateLimiter } from '../../lib/app/ports/access';
import { RateLimitedError } from '../../lib/domain/errors';
import { effectiveLimits, limitWindow, retryAfterSeconds, type LimitWindow } from '../../lib/domain/rate-limit';

const defaults = { requestsPerSecond: 500, eventsPerMinute: 3_000_000 };

describe('limit windows', () => {
  it('count requests in a calendar second and events in a calendar minute, each on the key`s item of the minute', () => {
    const at = new Date('2026-12-07T10:00:59.250Z');
    const minute = Math.floor(at.getTime() / 60_000);
    expect(limitWindow('k1', 'requests', at)).toEqual({ item: `k1|r|${minute}`, field: 's59', endsAt: Date.parse('2026-12-07T10:01:00.000Z') });
    expect(limitWindow('k1', 'events', at)).toEqual({ item: `k1|e|${minute}`, field: 'n', endsAt: Date.parse('2026-12-07T10:01:00.000Z') });
    expect(retryAfterSeconds(limitWindow('k1', 'requests', at), at)).toBe(1);
    const early = new Date('2026-12-07T10:00:00.001Z');
    expect(retryAfterSeconds(limitWindow('k1', 'events', early), early)).toBe(60);
    // The last millisecond of a window still waits a whole second: Retry-After is in seconds.
    const last = new Date('2026-12-07T10:00:59.999Z');
    expect(retryAfterSeconds(limitWindow('k1', 'events', last), last)).toBe(1);
  });

  it('apply a key`s own limits and the deployment`s for the rest', () => {
    expect(effectiveLimits(undefined, defaults)).toEqual(defaults);
    expect(effectiveLimits({ eventsPerMinute: 1000 }, defaults)).toEqual({ requestsPerSecond: 500, eventsPerMinute: 1000 });
  });
});

/** Exactly what the table does: a count per window, added to only if it stays within the limit. */
class MemoryLimiter implements RateLimiter {
  readonly counts = new Map<string, number>();
  async take(w: LimitWindow, count: number, limit: number) {
    const key = `${w.item}|${w.field}`;
    const n = this.counts.get(key) ?? 0;
    if (n + count > limit) return false;
    this.counts.set(key, n + count);
    return true;
  }
}

describe('a key`s limits', () => {
  const at = { t: Date.parse('2026-12-07T10:00:00.000Z') };
  const deps = { limiter: new MemoryLimiter(), clock: { now: () => new Date(at.t) }, defaultLimits: defaults };

  it('pass exactly the requests per second and refuse the next with the wait', async () => {
    const key = { keyId: 'k2', scopes: [], limits: { requestsPerSecond: 3 } };
    for (let i = 0; i < 3; i++) await expect(limitRequest(deps, key)).resolves.toBeUndefined();
    await expect(limitRequest(deps, key)).rejects.toEqual(expect.objectContaining({ code: 'rate_limited', retryAfterSeconds: 1 }));
    at.t += 999;
    await expect(limitRequest(deps, key)).rejects.toBeInstanceOf(RateLimitedError);
    at.t += 1;
    await expect(limitRequest(deps, key)).resolves.toBeUndefined();
  });

  it('take a request`s events only if they all fit in the minute, and leave a refused request`s out', async () => {
    const key = { keyId: 'k3', scopes: [], limits: { eventsPerMinute: 1000 } };
    at.t = Date.parse('2026-12-07T10:05:20.000Z');
    await limitEvents(deps, key, 700);
    await expect(limitEvents(deps, key, 301)).rejects.toEqual(expect.objectContaining({ retryAfterSeconds: 40 }));
    await expect(limitEvents(deps, key, 300)).resolves.toBeUndefined();
    await expect(limitEvents(deps, key, 1)).rejects.toBeInstanceOf(RateLimitedError);
  });
});

describe('the DynamoDB limiter', () => {
  const db = mockClient(DynamoDBDocumentClient);
  const failures: unknown[] = [];
  const limiter = () => new DynamoRateLimiter(new DynamoDBClient({ region: 'us-east-1' }), 'Limits', (err) => failures.push(err));
  const window = limitWindow('k4', 'requests', new Date('2026-12-07T10:00:00.000Z'));
  beforeEach(() => {
    db.reset();
    failures.length = 0;
  });

  it('adds to the window only within the limit, in one conditional write', async () => {
    db.on(UpdateCommand).resolves({});
    expect(await limiter().take(window, 1, 5)).toBe(true);
    expect(db.commandCalls(UpdateCommand)[0]!.args[0].input).toMatchObject({
      TableName: 'Limits',
      Key: { pk: window.item },
      UpdateExpression: 'ADD #f :count SET expiresAt = if_not_exists(expiresAt, :expires)',
      ConditionExpression: 'attribute_not_exists(#f) OR #f <= :most',
      ExpressionAttributeNames: { '#f': 's0' },
      ExpressionAttributeValues: { ':count': 1, ':most': 4 },
    });
  });

  it('remembers a full second until it ends, and asks again at another limit (a raised one)', async () => {
    db.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'full', $metadata: {} }));
    const l = limiter();
    expect(await l.take(window, 1, 5)).toBe(false);
    expect(await l.take(window, 1, 5)).toBe(false);
    expect(await l.take(window, 7, 5)).toBe(false);
    expect(db.commandCalls(UpdateCommand)).toHaveLength(1);
    db.on(UpdateCommand).resolves({});
    expect(await l.take(window, 1, 6)).toBe(true);
    expect(await l.take(limitWindow('k4', 'requests', new Date('2026-12-07T10:00:01.000Z')), 1, 5)).toBe(true);
    expect(db.commandCalls(UpdateCommand)).toHaveLength(3);
  });

  it('lets a request pass when the table cannot be written, and says so', async () => {
    db.on(UpdateCommand).rejects(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }));
    expect(await limiter().take(window, 1, 5)).toBe(true);
    expect(failures).toHaveLength(1);
  });

  it('never takes more than the limit in one go (no write)', async () => {
    expect(await limiter().take(window, 6, 5)).toBe(false);
    expect(db.commandCalls(UpdateCommand)).toHaveLength(0);
  });
});
