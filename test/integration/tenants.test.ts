import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { Period } from '../../lib/domain/period';
import type { Container } from '../../lib/platform/container';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Tenants and abuse, on the local stack: what a hostile tenant found, each a scenario. An
 * Idempotency-Key reused after its record expired, de-duplication across customers, listings paged
 * while events arrive, and keys with limits.
 */
let t: TestStack;
let root: () => Container;
const period = Period.containing(new Date()).key;

beforeAll(async () => {
  t = await startTestStack();
  root = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const key = async (body: Record<string, unknown>) => (await t.request('POST', '/api/v1/api-keys', { body })).body as { keyId: string; key: string };
const events = (customer: string, ids: string[], value: number) => ids.map((id) => cloudEvent({ subject: customer, source: 'nightly', id, data: { value } }));

describe('an Idempotency-Key reused after its record expired', () => {
  it('starts a new batch: both batches counted and listed, voids work, reconciliation finds no drift', async () => {
    const c = 'cus_tenant_idem';
    const ingest = await key({ name: 'exporter', scopes: ['ingest'] });
    const send = (ids: string[], value: number) => t.sendEvents(events(c, ids, value), { key: ingest.key, idempotencyKey: 'nightly-export-1' });
    expect((await send(['a1', 'a2', 'a3'], 10)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('30');
    // 24 hours later the key's record is gone (its TTL): the same key with another export.
    await root().ledger; // the stack is up
    const { dynamoClient } = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    await dynamoClient().send(new DeleteItemCommand({ TableName: t.stack.env.DEDUPE_TABLE, Key: { pk: { S: `idem|${ingest.keyId}|nightly-export-1` } } }));
    expect((await send(['b1', 'b2', 'b3'], 100)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('330');
    const listed = (await t.request('GET', `/api/v1/customers/${c}/events?period=${period}`)).body.events as { id: string }[];
    expect(listed.map((e) => e.id).sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
    const voided = await t.request('POST', '/api/v1/events/void', { body: { customerId: c, source: 'nightly', id: 'a1', reason: 'test' } });
    expect(voided.status).toBe(200);
    expect((await t.usage(c)).values.api_calls).toBe('320');
    const { reconcile } = require('../../lib/app/audit') as typeof import('../../lib/app/audit');
    expect((await reconcile(root(), { period, customerId: c })).drifts).toEqual([]);
  });
});

describe('de-duplication per customer', () => {
  it("never lets one customer's event suppress, or reveal, another's with the same (source, id)", async () => {
    const attacker = await key({ name: 'attacker', scopes: ['ingest', 'read'], customerId: 'cus_tenant_a' });
    const probe = cloudEvent({ subject: 'cus_tenant_a', source: 'api-gw-eu-1', id: 'req_000123', data: { value: 1 } });
    expect((await t.sendEvents([probe], { key: attacker.key })).status).toBe(202);
    await t.drain();
    // The real producer sends the same pair for the victim.
    expect((await t.sendEvents([cloudEvent({ subject: 'cus_tenant_victim', source: 'api-gw-eu-1', id: 'req_000123', data: { value: 50000 } })])).status).toBe(
      202,
    );
    await t.drain();
    const victim = await t.usage('cus_tenant_victim');
    expect(victim.values.api_calls).toBe('50000');
    expect(victim.duplicatesDropped).toBe(0);
    // The attacker's own usage says nothing of the victim's events.
    const own = (await t.request('GET', '/api/v1/customers/cus_tenant_a/usage', { key: attacker.key })).body;
    expect(own.duplicatesDropped).toBe(0);
    // Within one customer a repeated pair is still one event.
    expect((await t.sendEvents([probe], { key: attacker.key })).status).toBe(202);
    await t.drain();
    expect((await t.request('GET', '/api/v1/customers/cus_tenant_a/usage', { key: attacker.key })).body).toMatchObject({ duplicatesDropped: 1 });
  });
});

describe('the event archive', () => {
  it('never overwrites an object: the same events at its key are accepted, other events are refused', async () => {
    const archive = root().archive;
    const event = (id: string) => ({
      source: 's',
      id,
      type: 'api_calls',
      time: '2026-12-01T00:00:00.000000000Z',
      subject: 'cus_tenant_arch',
      readings: { api_calls: '1' },
      batchId: 'b-arch',
    });
    const group = (events: ReturnType<typeof event>[]) => ({
      customerId: 'cus_tenant_arch',
      period,
      index: 0,
      key: `events/cus_tenant_arch/${period}/b-arch-0.ndjson.gz`,
      events,
    });
    await archive.put(group([event('1')]));
    await archive.put(group([event('1')])); // a redelivery rewrites the same events: fine
    await expect(archive.put(group([event('2')]))).rejects.toThrow(/refusing to overwrite/);
    expect((await archive.read(group([]).key)).map((e) => e.id)).toEqual(['1']);
  });

  it('finds a group`s object by batch and group whatever meters its key names, and one written before keys named them', async () => {
    const archive = root().archive;
    const c = 'cus_tenant_groups';
    const put = (key: string) => archive.put({ customerId: c, period, index: 0, key, events: [] });
    await put(`events/${c}/${period}/b-g-1~api_calls.ndjson.gz`);
    await put(`events/${c}/${period}/b-g-10~storage_gb.ndjson.gz`);
    await put(`events/${c}/${period}/b-old-1.ndjson.gz`);
    await put(`events/${c}/${period}/b-old-12.ndjson.gz`);
    expect(await archive.groupObject(c, period, 'b-g', 1)).toBe(`events/${c}/${period}/b-g-1~api_calls.ndjson.gz`);
    expect(await archive.groupObject(c, period, 'b-g', 10)).toBe(`events/${c}/${period}/b-g-10~storage_gb.ndjson.gz`);
    expect(await archive.groupObject(c, period, 'b-old', 1)).toBe(`events/${c}/${period}/b-old-1.ndjson.gz`);
    expect(await archive.groupObject(c, period, 'b-old', 2)).toBeUndefined();
    expect(await archive.groupObject(c, period, 'b-g', 2)).toBeUndefined();
  });
});

describe('the event listing', () => {
  /** Every page of a listing, `between` run after each page but the last (events arriving meanwhile). */
  async function pages(customerId: string, query: string, between: (page: number) => Promise<void> = async () => {}) {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; ; page++) {
      const res = await t.request(
        'GET',
        `/api/v1/customers/${customerId}/events?period=${period}&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      seen.push(...(res.body.events as { id: string }[]).map((e) => e.id));
      cursor = res.body.nextCursor ?? undefined;
      if (!cursor) return seen;
      await between(page);
    }
  }

  it('returns every event exactly once while 20 batches arrive between its pages', async () => {
    const c = 'cus_tenant_list';
    for (let b = 0; b < 5; b++)
      expect(
        (
          await t.sendEvents(
            events(
              c,
              [0, 1, 2].map((i) => `first-${b}-${i}`),
              1,
            ),
          )
        ).status,
      ).toBe(202);
    await t.drain();
    let sent = 0;
    // 15 events 2 to a page: at least 7 pauses between pages, 4 batches each, whatever arrives.
    const seen = await pages(c, 'limit=2', async () => {
      for (let k = 0; k < 4 && sent < 20; k++, sent++) expect((await t.sendEvents(events(c, [`late-${sent}-a`, `late-${sent}-b`], 1))).status).toBe(202);
      await t.drain();
    });
    expect(sent).toBe(20);
    expect(new Set(seen).size).toBe(seen.length); // nothing twice
    const first = seen.filter((id) => id.startsWith('first-')).sort();
    expect(first).toEqual([0, 1, 2, 3, 4].flatMap((b) => [0, 1, 2].map((i) => `first-${b}-${i}`)).sort()); // nothing skipped
  });

  it('reads only the objects that hold the meter a listing is filtered on, and binds its cursor to that filter', async () => {
    const c = 'cus_tenant_filter';
    for (let b = 0; b < 12; b++) expect((await t.sendEvents(events(c, [`calls-${b}`], 1))).status).toBe(202);
    expect((await t.sendEvents([cloudEvent({ subject: c, type: 'storage_gb', id: 'disk-1', data: { value: 3 } })])).status).toBe(202);
    await t.drain();
    const { s3Client } = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    const gets: string[] = [];
    s3Client().middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') gets.push(String((args.input as { Key?: string }).Key));
        return next(args);
      },
      { step: 'initialize', name: 'countGets' },
    );
    try {
      expect(await pages(c, 'meter=storage_gb&limit=10')).toEqual(['disk-1']);
      expect(gets).toHaveLength(1);
    } finally {
      s3Client().middlewareStack.remove('countGets');
    }
    const unfiltered = (await t.request('GET', `/api/v1/customers/${c}/events?period=${period}&limit=2`)).body.nextCursor as string;
    const misused = await t.request('GET', `/api/v1/customers/${c}/events?period=${period}&meter=storage_gb&cursor=${encodeURIComponent(unfiltered)}`);
    expect(misused).toMatchObject({ status: 400, body: { error: { code: 'invalid_cursor' } } });
  });
});

describe('limits of a key', () => {
  /** The stack's clock held at one instant (so that a window cannot end between two requests), moved by hand. */
  async function frozen<T>(fn: (move: (ms: number) => void) => Promise<T>): Promise<T> {
    const c = root();
    const real = c.clock;
    let at = real.now().getTime();
    c.clock = { now: () => new Date(at) };
    try {
      return await fn((ms) => (at += ms));
    } finally {
      c.clock = real;
    }
  }

  it('answers 429 rate_limited with Retry-After past the key`s requests per second, and never below it', async () => {
    const k = await key({ name: 'five a second', scopes: ['read'], limits: { requestsPerSecond: 5 } });
    const get = () => t.request('GET', '/api/v1/customers/cus_tenant_rps/usage', { key: k.key });
    await frozen(async (move) => {
      for (let i = 0; i < 5; i++) expect((await get()).status).toBe(200);
      const refused = await get();
      expect(refused).toMatchObject({ status: 429, body: { error: { code: 'rate_limited', message: expect.stringMatching(/5 requests of this second/) } } });
      expect(refused.headers.get('retry-after')).toBe('1');
      // A request the key may not make (403) counts too, and is refused the same way.
      expect((await t.request('GET', '/api/v1/customers', { key: k.key })).status).toBe(429);
      move(1000);
      expect((await get()).status).toBe(200);
      // Five in parallel at the start of a second: exactly the limit passes.
      move(1000);
      const statuses = await Promise.all(Array.from({ length: 9 }, () => get().then((r) => r.status)));
      expect(statuses.filter((s) => s === 200)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    });
  });

  it('answers 429 past the key`s events per minute, accepting nothing of the request, and takes a request that fits exactly', async () => {
    const c = 'cus_tenant_epm';
    const k = await key({ name: 'a thousand a minute', scopes: ['ingest'], limits: { eventsPerMinute: 1000 } });
    const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    await frozen(async (move) => {
      expect((await t.sendEvents(events(c, ids('a', 600), 1), { key: k.key })).status).toBe(202);
      const refused = await t.sendEvents(events(c, ids('b', 401), 1), { key: k.key });
      expect(refused).toMatchObject({
        status: 429,
        body: { error: { code: 'rate_limited', message: expect.stringMatching(/401 events .* 1000 events of this minute/) } },
      });
      const wait = Number(refused.headers.get('retry-after'));
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(60);
      expect((await t.sendEvents(events(c, ids('c', 400), 1), { key: k.key })).status).toBe(202); // exactly the limit
      expect((await t.sendEvents(events(c, ids('d', 1), 1), { key: k.key })).status).toBe(429);
      move(wait * 1000);
      expect((await t.sendEvents(events(c, ids('b', 401), 1), { key: k.key })).status).toBe(202);
    });
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('1401'); // a, c and the retried b: the refused ones were never taken
  });

  it('changes a key`s limits from its next request, and returns them to the defaults', async () => {
    const k = await key({ name: 'raised', scopes: ['read'], limits: { requestsPerSecond: 1 } });
    const get = () => t.request('GET', '/api/v1/customers/cus_tenant_patch/usage', { key: k.key });
    await frozen(async (move) => {
      expect((await get()).status).toBe(200);
      expect((await get()).status).toBe(429);
      move(1000);
      const raised = await t.request('PATCH', `/api/v1/api-keys/${k.keyId}`, { body: { limits: { requestsPerSecond: 3 } } });
      expect(raised).toMatchObject({ status: 200, body: { limits: { requestsPerSecond: 3 }, customLimits: { requestsPerSecond: 3 } } });
      expect([(await get()).status, (await get()).status, (await get()).status, (await get()).status]).toEqual([200, 200, 200, 429]);
      const reset = await t.request('PATCH', `/api/v1/api-keys/${k.keyId}`, { body: { limits: { requestsPerSecond: null } } });
      expect(reset).toMatchObject({ status: 200, body: { limits: { requestsPerSecond: 500, eventsPerMinute: 3_000_000 }, customLimits: {} } });
    });
    const listed = (await t.request('GET', '/api/v1/api-keys')).body.apiKeys.find((x: { keyId: string }) => x.keyId === k.keyId);
    expect(listed).toMatchObject({ limits: { requestsPerSecond: 500 }, customLimits: {} });
    for (const body of [
      { limits: { requestsPerSecond: 0 } },
      { limits: { eventsPerMinute: 10 } },
      { limits: { burst: 1 } },
      {},
      { limits: { requestsPerSecond: '5' } },
    ]) {
      expect((await t.request('PATCH', `/api/v1/api-keys/${k.keyId}`, { body })).status).toBe(400);
    }
    expect((await t.request('PATCH', '/api/v1/api-keys/abcdefghijkl', { body: { limits: {} } })).status).toBe(404);
    expect((await t.request('PATCH', `/api/v1/api-keys/${k.keyId}`, { body: { limits: {} }, key: k.key })).status).toBe(403);
  });

  it('answers /health from one check per 5 seconds, however often it is called', async () => {
    const { dynamoClient } = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    let describes = 0;
    dynamoClient().middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DescribeTableCommand') describes++;
        return next(args);
      },
      { step: 'initialize', name: 'countDescribes' },
    );
    try {
      await frozen(async (move) => {
        move(10_000); // past any earlier check
        const answers = await Promise.all(Array.from({ length: 50 }, () => t.request('GET', '/health', { key: null }).then((r) => r.status)));
        expect(new Set(answers)).toEqual(new Set([200]));
        expect(describes).toBe(7); // one check: each table once
        move(4_999);
        expect((await t.request('GET', '/health', { key: null })).status).toBe(200);
        expect(describes).toBe(7);
        move(1);
        expect((await t.request('GET', '/health', { key: null })).status).toBe(200);
        expect(describes).toBe(14);
      });
    } finally {
      dynamoClient().middlewareStack.remove('countDescribes');
    }
  });
});
