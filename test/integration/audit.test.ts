import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Period } from '../../lib/domain/period';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Every cent traceable, end to end on the emulators: the aggregator archives what it counts
 * (fauxqs S3), the listing shows it, a void takes an event back exactly once, reconciliation finds a
 * counter edited by hand and repairs it.
 */
let t: TestStack;
let dynamo: DynamoDBClient;
let container: () => { clock: { now(): Date } };
const root = join(__dirname, '..', '..');
const now = new Date();
const period = Period.containing(now);
const recent = (minutesAgo: number) => new Date(Math.max(period.start.getTime(), now.getTime() - minutesAgo * 60_000)).toISOString();

beforeAll(async () => {
  t = await startTestStack({ visibilityTimeoutSeconds: 3 });
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
  container = (require('../../lib/platform/container') as { container: typeof container }).container;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const listAll = async (customer: string, query = '') => {
  const events: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: { status: number; body: any } = await t.request(
      'GET',
      `/api/v1/customers/${customer}/events?period=${period.key}&limit=7${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(res.status).toBe(200);
    events.push(...res.body.events);
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor);
  return { events, pages };
};
const voidOne = (customerId: string, source: string, id: string, reason = 'sent by mistake') =>
  t.request('POST', '/api/v1/events/void', { body: { customerId, source, id, reason } });

describe('the archive and the event listing', () => {
  it('lists exactly the events that were counted, once each, through duplicates and redeliveries', async () => {
    const c = 'cus_audit_list';
    const sent = Array.from({ length: 30 }, (_, i) => cloudEvent({ subject: c, id: `l-${i}`, time: recent(10 + i), data: { value: `${i}.5` } }));
    expect((await t.sendEvents(sent.slice(0, 20))).status).toBe(202);
    expect((await t.sendEvents(sent.slice(10))).status).toBe(202); // 10 duplicates in another request
    // One more message, delivered twice as SQS may do: its events are counted and archived once.
    const time = `${recent(2).slice(0, 19)}.000000000Z`;
    const redelivered = JSON.stringify({
      v: 1,
      batchId: 'audit-redelivered',
      receivedAt: now.toISOString(),
      events: ['l-30', 'l-31'].map((id) => ({
        source: 'test',
        id,
        type: 'api_calls',
        customerId: c,
        time,
        period: period.key,
        readings: { api_calls: '1', api_requests: '1' },
      })),
    });
    await t.sendRawMessage(redelivered);
    await t.drain();
    await t.sendRawMessage(redelivered);
    await t.drain();
    const { events, pages } = await listAll(c);
    expect(pages).toBe(5); // 32 events, 7 per page
    expect(events.map((e) => e.id).sort()).toEqual([...sent.map((e) => e.id as string), 'l-30', 'l-31'].sort());
    expect(events.find((e) => e.id === 'l-3')).toMatchObject({
      source: 'test',
      type: 'api_calls',
      readings: { api_calls: '3.5', api_requests: '1' },
      voided: false,
    });
    const usage = await t.usage(c, period.key);
    expect(usage.values).toMatchObject({ api_calls: '452', api_requests: '32' }); // 0.5 + 1.5 + ... + 29.5, + 2
    expect(usage.duplicatesDropped).toBe(10);
    // One object per (message, customer, period) group, at the documented key.
    const objects = await t.stack.s3.send(new ListObjectsV2Command({ Bucket: 'archivebucket', Prefix: `events/${c}/${period.key}/` }));
    expect(objects.Contents!.length).toBeGreaterThanOrEqual(2);
    for (const o of objects.Contents!) expect(o.Key).toMatch(new RegExp(`^events/${c}/${period.key}/.+-\\d+~[a-z0-9_,]+\\.ndjson\\.gz$`));
  });

  it('filters by meter and refuses bad periods, limits, meters and cursors with the error envelope', async () => {
    const c = 'cus_audit_bad';
    await t.sendEvents([cloudEvent({ subject: c, type: 'seats', time: recent(5), data: { value: 4 } }), cloudEvent({ subject: c, time: recent(5) })]);
    await t.drain();
    const seats = await t.request('GET', `/api/v1/customers/${c}/events?period=${period.key}&meter=seats`);
    expect(seats.body.events.map((e: any) => e.readings)).toEqual([{ seats: '4' }]);
    const bad = async (query: string, code: string) => {
      const res = await t.request('GET', `/api/v1/customers/${c}/events?${query}`);
      expect({ query, status: res.status, code: res.body.error?.code, requestId: typeof res.body.error?.requestId }).toEqual({
        query,
        status: 400,
        code,
        requestId: 'string',
      });
    };
    await bad('period=2026-13', 'invalid_period');
    await bad('limit=0', 'invalid_query');
    await bad('limit=1001', 'invalid_query');
    await bad('limit=abc', 'invalid_query');
    await bad('meter=nope', 'unknown_meter');
    await bad('cursor=forged.AAAA', 'invalid_cursor');
    // A cursor handed out for one customer cannot read another's archive.
    const first = await t.request('GET', `/api/v1/customers/cus_audit_list/events?period=${period.key}&limit=1`);
    await bad(`period=${period.key}&cursor=${encodeURIComponent(first.body.nextCursor)}`, 'invalid_cursor');
  });
});

describe('void', () => {
  it('takes back SUM, COUNT, MAX, LATEST and UNIQUE_COUNT readings exactly once', async () => {
    const c = 'cus_audit_void';
    const sent = await t.sendEvents([
      cloudEvent({ subject: c, id: 'v-sum-1', time: recent(30), data: { value: 100 } }),
      cloudEvent({ subject: c, id: 'v-sum-2', time: recent(29), data: { value: '0.25' } }),
      cloudEvent({ subject: c, id: 'v-max-1', type: 'storage_gb', time: recent(28), data: { value: 50 } }),
      cloudEvent({ subject: c, id: 'v-max-2', type: 'storage_gb', time: recent(27), data: { value: 80 } }),
      cloudEvent({ subject: c, id: 'v-latest-1', type: 'queue_depth', time: recent(26), data: { depth: 7 } }),
      cloudEvent({ subject: c, id: 'v-latest-2', type: 'queue_depth', time: recent(25), data: { depth: 3 } }),
      cloudEvent({ subject: c, id: 'v-u-1', type: 'user_activity', time: recent(24), data: { userId: 'ann' } }),
      cloudEvent({ subject: c, id: 'v-u-2', type: 'user_activity', time: recent(23), data: { userId: 'bob' } }),
      cloudEvent({ subject: c, id: 'v-u-3', type: 'user_activity', time: recent(22), data: { userId: 'ann' } }),
    ]);
    expect(sent.body).toEqual({ accepted: 9 });
    await t.drain();
    expect((await t.usage(c, period.key)).values).toMatchObject({
      api_calls: '100.25',
      api_requests: '2',
      storage_gb: '80',
      queue_depth: '3',
      active_users: '2',
    });

    for (const id of ['v-sum-1', 'v-max-2', 'v-latest-2', 'v-u-2', 'v-u-1']) {
      const res = await voidOne('cus_audit_void', 'test', id);
      expect({ id, status: res.status }).toEqual({ id, status: 200 });
      expect(res.body).toMatchObject({ customerId: c, period: period.key, voided: true, alreadyVoided: false, reason: 'sent by mistake' });
    }
    // ann is still active through v-u-3; bob is gone; MAX falls back to 50, LATEST to 7.
    expect((await t.usage(c, period.key)).values).toMatchObject({
      api_calls: '0.25',
      api_requests: '1',
      storage_gb: '50',
      queue_depth: '7',
      active_users: '1',
    });

    const again = await voidOne('cus_audit_void', 'test', 'v-sum-1', 'another reason');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ alreadyVoided: true, reason: 'sent by mistake' });
    expect((await t.usage(c, period.key)).values.api_calls).toBe('0.25');

    const listed = (await listAll(c)).events;
    expect(
      listed
        .filter((e) => e.voided)
        .map((e) => e.id)
        .sort(),
    ).toEqual(['v-latest-2', 'v-max-2', 'v-sum-1', 'v-u-1', 'v-u-2']);
    expect(listed.find((e) => e.id === 'v-sum-1')).toMatchObject({ voided: true, voidReason: 'sent by mistake' });
  });

  it('answers 404 for an unknown event, 409 outside the correction window, and 400 for a bad body', async () => {
    expect((await voidOne('cus_audit_void', 'test', 'never-sent')).body.error.code).toBe('event_not_found');
    expect((await voidOne('cus_audit_void', 'test', 'never-sent')).status).toBe(404);
    const c = 'cus_audit_old';
    await t.sendEvents([cloudEvent({ subject: c, id: 'old-1', time: recent(1) })]);
    await t.drain();
    const ctr = container();
    const real = ctr.clock;
    ctr.clock = { now: () => new Date(Date.now() + 36 * 86_400_000) };
    try {
      const res = await voidOne('cus_audit_old', 'test', 'old-1');
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('event_outside_window');
    } finally {
      ctr.clock = real;
    }
    for (const body of [
      {},
      { customerId: 'cus_audit_void', source: 'test', id: 'x' },
      { customerId: 'cus_audit_void', source: 'test', id: 'x', reason: ' ' },
      { customerId: 'cus_audit_void', source: '', id: 'x', reason: 'r' },
      { customerId: 'cus_audit_void', source: 'test', id: 'x', reason: 'r', extra: 1 },
      { source: 'test', id: 'x', reason: 'r' },
      { customerId: 'cus audit', source: 'test', id: 'x', reason: 'r' },
    ]) {
      const res = await t.request('POST', '/api/v1/events/void', { body });
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
  });

  it('puts a void in an invoiced period on the next invoice as a negative correction', async () => {
    const closed = period.previous();
    const c = 'cus_audit_invoiced';
    const ctr = container();
    const real = ctr.clock;
    const at = (d: Date) => (ctr.clock = { now: () => d });
    try {
      at(new Date(closed.start.getTime() + 86_400_000));
      await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: c } });
      const time = new Date(closed.start.getTime() + 3600_000).toISOString();
      await t.sendEvents([
        cloudEvent({ subject: c, id: 'inv-1', time, data: { value: 40000 } }),
        cloudEvent({ subject: c, id: 'inv-2', time, data: { value: 30000 } }),
      ]);
      await t.drain();
      at(new Date(closed.end.getTime() + 2 * 3600_000));
      await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key, force: true } });
      for (let i = 0; i < 100 && (await t.request('GET', `/api/v1/invoice-runs/${closed.key}`)).body.status !== 'completed'; i++)
        await new Promise((r) => setTimeout(r, 200));
      const [invoice] = (await t.request('GET', `/api/v1/customers/${c}/invoices`)).body.invoices;
      expect(invoice).toMatchObject({ period: closed.key, total: '60.00' }); // 70,000 calls: 60,000 above the free 10,000 at 0.001
      at(new Date(closed.end.getTime() + 3 * 3600_000));
      expect((await voidOne('cus_audit_invoiced', 'test', 'inv-2', 'duplicate of inv-1 sent by a retry bug')).status).toBe(200);
      const upcoming = (await t.request('GET', `/api/v1/customers/${c}/invoices/upcoming?period=${period.key}`)).body;
      expect(upcoming.lines).toEqual([expect.objectContaining({ kind: 'correction', meter: 'api_calls', period: closed.key, amount: '-30.00' })]);
      expect(upcoming.total).toBe('-30.00');
    } finally {
      ctr.clock = real;
    }
  }, 60_000);
});

describe('reconciliation', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'tools/cli.ts', 'reconcile', '--period', period.key, ...args], {
      cwd: root,
      encoding: 'utf8',
      env: process.env,
    });

  it('finds a counter edited by hand, exits 3, repairs it with --fix and an audit entry, then finds nothing', async () => {
    const c = 'cus_audit_drift';
    await t.sendEvents([
      cloudEvent({ subject: c, time: recent(3), data: { value: 12 } }),
      cloudEvent({ subject: c, type: 'seats', time: recent(3), data: { value: 4 } }),
    ]);
    await t.drain();
    // Someone edits a counter straight in DynamoDB.
    await dynamo.send(
      new UpdateItemCommand({
        TableName: 'UsageTable',
        Key: { pk: { S: `${c}|${period.key}` }, sk: { S: 'm#api_calls' } },
        UpdateExpression: 'SET #v = :v',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':v': { N: '19.5' } },
      }),
    );
    const found = cli('--customer', c);
    expect(found.status).toBe(3);
    expect(found.stdout).toContain('1 drifting counter');
    expect(found.stdout).toMatch(/cus_audit_drift.*api_calls.*19\.5.*12.*-7\.5/);
    const json = JSON.parse(cli('--customer', c, '--json').stdout);
    expect(json.drifts).toEqual([{ customerId: c, meter: 'api_calls', counter: '19.5', archive: '12', drift: '-7.5' }]);

    const fixed = cli('--customer', c, '--fix');
    expect(fixed.status).toBe(3); // drift was found (and repaired)
    expect(fixed.stdout).toMatch(/yes/);
    expect((await t.usage(c, period.key)).values.api_calls).toBe('12');
    const again = cli('--customer', c);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('0 drifting counters');
  }, 60_000);

  it('runs daily over the current and previous period and reports drift as a metric', async () => {
    const { handler } = require('../../functions/reconciler/handler') as typeof import('../../functions/reconciler/handler');
    const { metrics } = require('../../lib/platform/observability') as typeof import('../../lib/platform/observability');
    const added = jest.spyOn(metrics, 'addMetric');
    const clean = (await handler({}, {} as never)) as { period: string; drifts: number }[];
    expect(clean.map((r) => r.period)).toEqual([period.previous().key, period.key]);
    expect(clean.every((r) => r.drifts === 0)).toBe(true);
    await dynamo.send(
      new UpdateItemCommand({
        TableName: 'UsageTable',
        Key: { pk: { S: `cus_audit_list|${period.key}` }, sk: { S: 'm#api_calls' } },
        UpdateExpression: 'ADD #v :d',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':d': { N: '1' } },
      }),
    );
    const drifted = (await handler({}, {} as never)) as { period: string; drifts: number }[];
    expect(drifted.find((r) => r.period === period.key)!.drifts).toBe(1);
    expect(added).toHaveBeenCalledWith('CounterDrift', expect.anything(), 1);
    added.mockRestore();
  }, 60_000);
});
