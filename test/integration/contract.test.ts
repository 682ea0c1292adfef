import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDeployment, ROOT } from '../../local/runtime/deployment';
import { Period } from '../../lib/domain/period';
import { contract } from '../support/contract';
import { cloudEvent, startTestStack, type Res, type TestStack } from '../support/stack';

/**
 * The contract, route by route: every status the OpenAPI document lists for every route of
 * serverless.yml is provoked here, on a stack of this file's own, and every answer is checked
 * against the document by TestStack (test/support/contract.ts). The other suites are checked the
 * same way as they run, but what they happen to call varies and jest orders files as it likes, so
 * coverage is proven here, from a fixed list of requests, whatever runs before or after.
 */
let t: TestStack;
let dynamo: DynamoDBClient;
let container: () => { clock: { now(): Date } };
const keys: Record<'ingest' | 'read' | 'admin' | 'readIngest', string> = { ingest: '', read: '', admin: '', readIngest: '' };

const now = new Date();
const period = Period.containing(now);
const recent = () => new Date(Math.max(period.start.getTime(), now.getTime() - 60_000)).toISOString();
const C = 'cus_contract';
const CREDITED = 'cus_contract_credited';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` with the stack's clock at `when` (the handlers run in this process). */
async function at<T>(when: Date, fn: () => Promise<T>): Promise<T> {
  const c = container();
  const real = c.clock;
  c.clock = { now: () => when };
  try {
    return await fn();
  } finally {
    c.clock = real;
  }
}

beforeAll(async () => {
  t = await startTestStack({ visibilityTimeoutSeconds: 3, env: { INVOICE_GRACE_MINUTES: '0' } });
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
  container = (require('../../lib/platform/container') as { container: typeof container }).container;
  for (const [name, scopes] of Object.entries({ ingest: ['ingest'], read: ['read'], admin: ['admin'], readIngest: ['read', 'ingest'] })) {
    keys[name as keyof typeof keys] = (await t.request('POST', '/api/v1/api-keys', { body: { name: `contract ${name}`, scopes } })).body.key;
  }
  expect(
    (await t.request('PUT', `/api/v1/customers/${C}`, { body: { name: 'Contract', budget: { amount: '10.00' }, alertEmail: 'ops@example.com' } })).status,
  ).toBe(201);
  // A customer whose plan has left the catalog: written as an older deployment would have.
  await dynamo.send(
    new PutItemCommand({
      TableName: t.stack.env.CUSTOMERS_TABLE,
      Item: {
        id: { S: 'cus_retired_plan' },
        name: { S: 'Retired' },
        planId: { S: 'retired' },
        createdAt: { S: now.toISOString() },
        updatedAt: { S: now.toISOString() },
      },
    }),
  );
  // Two carried credits (negative invoices of a LATEST meter corrected down), as the invoice job
  // records them, of a customer no run invoices (it has neither a customer record nor usage).
  for (const key of ['2026-01', '2026-02']) {
    await dynamo.send(
      new PutItemCommand({
        TableName: t.stack.env.INVOICES_TABLE,
        Item: {
          pk: { S: `inv#${CREDITED}` },
          sk: { S: key },
          customerId: { S: CREDITED },
          key: { S: key },
          period: { S: key },
          kind: { S: 'period' },
          status: { S: 'credit_carried' },
          planId: { S: 'default' },
          currency: { S: 'usd' },
          fees: { BOOL: false },
          lines: { L: [] },
          total: { S: '-12.50' },
          totalMinor: { S: '-1250' },
          quantities: { M: {} },
          corrections: { L: [] },
          attempts: { N: '1' },
          createdAt: { S: now.toISOString() },
          updatedAt: { S: now.toISOString() },
        },
      }),
    );
  }
  // Usage past 80% of the included calls, seats over the budget: tiers, a budget and alerts to show.
  const events = [
    cloudEvent({ subject: C, id: 'c-calls', time: recent(), data: { value: 9000 } }),
    cloudEvent({ subject: C, id: 'c-seats', type: 'seats', time: recent(), data: { value: 5 } }),
    cloudEvent({ subject: C, id: 'c-storage', type: 'storage_gb', time: recent(), data: { value: '2.5' } }),
    cloudEvent({ subject: C, id: 'c-users', type: 'user_activity', time: recent(), data: { userId: 'u1' } }),
    cloudEvent({ subject: C, id: 'c-void', time: recent(), data: { value: 1 } }),
    cloudEvent({ subject: C, id: 'c-old', time: recent(), data: { value: 1 } }),
  ];
  expect((await t.sendEvents(events, { key: keys.ingest })).status).toBe(202);
  await t.drain();
}, 120_000);
afterAll(async () => {
  dynamo?.middlewareStack.remove('contractThrottle');
  await t?.stop();
});

interface Case {
  route: string;
  status: number;
  why: string;
  send: () => Promise<Res>;
  /** What the answer must hold, so that its schema is checked on more than an empty list. */
  holds?: (body: any) => void;
}
const get = (path: string, key = keys.read) => t.request('GET', path, { key });
const send = (method: string, path: string, body: unknown, key = keys.admin) => t.request(method, path, { body, key });

/** A success and each error of each route, in an order that builds on itself. */
const CASES: Case[] = [
  {
    route: 'POST /api/v1/events',
    status: 202,
    why: 'events accepted',
    send: () => t.sendEvents([cloudEvent({ subject: C, time: recent() })], { key: keys.ingest }),
  },
  { route: 'POST /api/v1/events', status: 400, why: 'an empty batch', send: () => t.sendEvents([], { key: keys.ingest }) },
  {
    route: 'POST /api/v1/events',
    status: 409,
    why: 'an Idempotency-Key reused with another body',
    send: async () => {
      expect((await t.sendEvents([cloudEvent({ subject: C, time: recent() })], { key: keys.ingest, idempotencyKey: 'contract-1' })).status).toBe(202);
      return t.sendEvents([cloudEvent({ subject: C, time: recent() })], { key: keys.ingest, idempotencyKey: 'contract-1' });
    },
  },
  {
    route: 'POST /api/v1/events',
    status: 413,
    why: '1,001 events',
    send: () =>
      t.sendEvents(
        Array.from({ length: 1001 }, () => cloudEvent()),
        { key: keys.ingest },
      ),
  },
  { route: 'POST /api/v1/events', status: 415, why: 'text/plain', send: () => t.sendEvents([cloudEvent()], { key: keys.ingest, contentType: 'text/plain' }) },

  {
    route: 'GET /api/v1/customers/{id}/usage',
    status: 200,
    why: 'tiers, budget and projection',
    send: () => get(`/api/v1/customers/${C}/usage`),
    holds: (b) => expect(b.budget).not.toBeNull(),
  },
  { route: 'GET /api/v1/customers/{id}/usage', status: 400, why: 'period 2026-13', send: () => get(`/api/v1/customers/${C}/usage?period=2026-13`) },
  { route: 'GET /api/v1/customers/{id}/usage', status: 409, why: 'a plan gone from the catalog', send: () => get('/api/v1/customers/cus_retired_plan/usage') },
  { route: 'GET /api/v1/customers/{id}/invoices/upcoming', status: 200, why: 'the preview', send: () => get(`/api/v1/customers/${C}/invoices/upcoming`) },
  {
    route: 'GET /api/v1/customers/{id}/invoices/upcoming',
    status: 400,
    why: 'period "now"',
    send: () => get(`/api/v1/customers/${C}/invoices/upcoming?period=now`),
  },
  {
    route: 'GET /api/v1/customers/{id}/invoices/upcoming',
    status: 409,
    why: 'a plan gone from the catalog',
    send: () => get('/api/v1/customers/cus_retired_plan/invoices/upcoming'),
  },
  {
    route: 'GET /api/v1/customers/{id}/alerts',
    status: 200,
    why: 'included, budget and forecast alerts',
    send: () => get(`/api/v1/customers/${C}/alerts`),
    holds: (b) => expect(b.alerts.length).toBeGreaterThan(2),
  },
  { route: 'GET /api/v1/customers/{id}/alerts', status: 400, why: 'period 26-11', send: () => get(`/api/v1/customers/${C}/alerts?period=26-11`) },

  {
    route: 'POST /api/v1/invoice-runs',
    status: 409,
    why: 'the current period has not ended',
    send: () => send('POST', '/api/v1/invoice-runs', { period: period.key }),
  },
  { route: 'POST /api/v1/invoice-runs', status: 400, why: 'period "x"', send: () => send('POST', '/api/v1/invoice-runs', { period: 'x' }) },
  {
    route: 'POST /api/v1/invoice-runs',
    status: 202,
    why: 'the run of the period, just after its end',
    send: () =>
      at(new Date(period.end.getTime() + 60_000), async () => {
        const res = await send('POST', '/api/v1/invoice-runs', { period: period.key });
        // The worker runs in this process, on the moved clock: wait for the run to finish there.
        for (let i = 0; i < 150; i++) {
          const progress = await get(`/api/v1/invoice-runs/${period.key}`, keys.admin);
          if (progress.body.status === 'completed') break;
          await sleep(200);
        }
        return res;
      }),
  },
  {
    route: 'GET /api/v1/invoice-runs/{period}',
    status: 200,
    why: 'a completed run',
    send: () => get(`/api/v1/invoice-runs/${period.key}`, keys.admin),
    holds: (b) => expect(b.status).toBe('completed'),
  },
  { route: 'GET /api/v1/invoice-runs/{period}', status: 400, why: 'period 2026-13', send: () => get('/api/v1/invoice-runs/2026-13', keys.admin) },
  { route: 'GET /api/v1/invoice-runs/{period}', status: 404, why: 'a period never run', send: () => get('/api/v1/invoice-runs/1999-01', keys.admin) },
  {
    route: 'GET /api/v1/customers/{id}/invoices',
    status: 200,
    why: 'the invoice of the run',
    send: () => get(`/api/v1/customers/${C}/invoices`),
    holds: (b) => expect(b.invoices).toHaveLength(1),
  },
  { route: 'GET /api/v1/customers/{id}/invoices', status: 400, why: 'a customer id with a space', send: () => get('/api/v1/customers/cus%20x/invoices') },

  {
    route: 'PUT /api/v1/customers/{id}',
    status: 201,
    why: 'created',
    send: () => send('PUT', '/api/v1/customers/cus_contract_2', { name: 'Two', planId: 'default' }),
  },
  { route: 'PUT /api/v1/customers/{id}', status: 200, why: 'replaced', send: () => send('PUT', '/api/v1/customers/cus_contract_2', { name: 'Two again' }) },
  { route: 'PUT /api/v1/customers/{id}', status: 400, why: 'no name', send: () => send('PUT', '/api/v1/customers/cus_contract_2', {}) },
  {
    route: 'PUT /api/v1/customers/{id}',
    status: 409,
    why: 'a budget kept across a move to yen',
    send: async () => {
      await send('PUT', '/api/v1/customers/cus_contract_3', { name: 'Three', budget: { amount: '10.00' } });
      return send('PUT', '/api/v1/customers/cus_contract_3', { name: 'Three', planId: 'jp' });
    },
  },
  {
    route: 'PATCH /api/v1/customers/{id}',
    status: 200,
    why: 'one field changed',
    send: () => send('PATCH', '/api/v1/customers/cus_contract_2', { alertEmail: null }),
    holds: (b) => expect(b.name).toBe('Two again'),
  },
  {
    route: 'PATCH /api/v1/customers/{id}',
    status: 400,
    why: 'an unknown plan',
    send: () => send('PATCH', '/api/v1/customers/cus_contract_2', { planId: 'nope' }),
  },
  {
    route: 'PATCH /api/v1/customers/{id}',
    status: 404,
    why: 'nobody (PATCH never creates)',
    send: () => send('PATCH', '/api/v1/customers/cus_nobody', { name: 'X' }),
  },
  {
    route: 'PATCH /api/v1/customers/{id}',
    status: 409,
    why: 'a budget kept across a move to yen',
    send: () => send('PATCH', '/api/v1/customers/cus_contract_3', { planId: 'jp' }),
  },
  {
    route: 'GET /api/v1/customers/{id}/credits',
    status: 200,
    why: 'two open credits',
    send: () => get(`/api/v1/customers/${CREDITED}/credits`),
    holds: (b) => expect(b.owed).toEqual([{ currency: 'usd', amount: expect.stringMatching(/^(25\.00|12\.50)$/) }]),
  },
  { route: 'GET /api/v1/customers/{id}/credits', status: 400, why: 'a customer id with a space', send: () => get('/api/v1/customers/cus%20x/credits') },
  {
    route: 'POST /api/v1/customers/{id}/credits/{key}/settle',
    status: 200,
    why: 'written off',
    send: () => send('POST', `/api/v1/customers/${CREDITED}/credits/2026-01/settle`, { as: 'write_off', reason: 'goodwill' }),
    holds: (b) => expect(b).toMatchObject({ status: 'written_off', reason: 'goodwill' }),
  },
  {
    route: 'POST /api/v1/customers/{id}/credits/{key}/settle',
    status: 400,
    why: 'a refund without its reference',
    send: () => send('POST', `/api/v1/customers/${CREDITED}/credits/2026-02/settle`, { as: 'refund', reason: 'card' }),
  },
  {
    route: 'POST /api/v1/customers/{id}/credits/{key}/settle',
    status: 404,
    why: 'no such credit',
    send: () => send('POST', `/api/v1/customers/${CREDITED}/credits/2025-01/settle`, { as: 'write_off', reason: 'x' }),
  },
  {
    route: 'POST /api/v1/customers/{id}/credits/{key}/settle',
    status: 409,
    why: 'settled already',
    send: async () => {
      await send('POST', `/api/v1/customers/${CREDITED}/credits/2026-02/settle`, { as: 'refund', reason: 'card', reference: 're_1' });
      return send('POST', `/api/v1/customers/${CREDITED}/credits/2026-02/settle`, { as: 'write_off', reason: 'again' });
    },
  },
  { route: 'GET /api/v1/customers/{id}', status: 200, why: 'the customer', send: () => get(`/api/v1/customers/${C}`) },
  { route: 'GET /api/v1/customers/{id}', status: 400, why: 'a customer id with a space', send: () => get('/api/v1/customers/cus%20x') },
  { route: 'GET /api/v1/customers/{id}', status: 404, why: 'nobody', send: () => get('/api/v1/customers/cus_nobody') },
  {
    route: 'GET /api/v1/customers',
    status: 200,
    why: 'a page with a cursor',
    send: () => get('/api/v1/customers?limit=1', keys.admin),
    holds: (b) => expect(b.nextCursor).toEqual(expect.any(String)),
  },
  { route: 'GET /api/v1/customers', status: 400, why: 'limit 0', send: () => get('/api/v1/customers?limit=0', keys.admin) },

  {
    route: 'POST /api/v1/api-keys',
    status: 201,
    why: 'a bound key',
    send: () => send('POST', '/api/v1/api-keys', { name: 'bound', scopes: ['read'], customerId: C }),
  },
  { route: 'POST /api/v1/api-keys', status: 400, why: 'no scopes', send: () => send('POST', '/api/v1/api-keys', { name: 'none', scopes: [] }) },
  { route: 'GET /api/v1/api-keys', status: 200, why: 'every key', send: () => get('/api/v1/api-keys', keys.admin) },
  {
    route: 'DELETE /api/v1/api-keys/{keyId}',
    status: 200,
    why: 'revoked',
    send: async () => {
      const { keyId } = (await send('POST', '/api/v1/api-keys', { name: 'to revoke', scopes: ['ingest'] })).body;
      return t.request('DELETE', `/api/v1/api-keys/${keyId}`, { key: keys.admin });
    },
  },
  {
    route: 'DELETE /api/v1/api-keys/{keyId}',
    status: 400,
    why: 'key id "NOPE"',
    send: () => t.request('DELETE', '/api/v1/api-keys/NOPE', { key: keys.admin }),
  },
  {
    route: 'DELETE /api/v1/api-keys/{keyId}',
    status: 404,
    why: 'an unknown key id',
    send: () => t.request('DELETE', '/api/v1/api-keys/zzzzzzzzzzzz', { key: keys.admin }),
  },
  {
    route: 'PATCH /api/v1/api-keys/{keyId}',
    status: 200,
    why: 'limits changed',
    send: async () => {
      const { keyId } = (await send('POST', '/api/v1/api-keys', { name: 'to limit', scopes: ['ingest'] })).body;
      return send('PATCH', `/api/v1/api-keys/${keyId}`, { limits: { requestsPerSecond: 10, eventsPerMinute: null } });
    },
    holds: (b) => expect(b).toMatchObject({ limits: { requestsPerSecond: 10 }, customLimits: { requestsPerSecond: 10 } }),
  },
  {
    route: 'PATCH /api/v1/api-keys/{keyId}',
    status: 400,
    why: 'a limit of 0',
    send: () => send('PATCH', '/api/v1/api-keys/zzzzzzzzzzzz', { limits: { requestsPerSecond: 0 } }),
  },
  {
    route: 'PATCH /api/v1/api-keys/{keyId}',
    status: 404,
    why: 'an unknown key id',
    send: () => send('PATCH', '/api/v1/api-keys/zzzzzzzzzzzz', { limits: {} }),
  },

  {
    route: 'GET /api/v1/customers/{id}/events',
    status: 200,
    why: 'a page with a cursor',
    send: () => get(`/api/v1/customers/${C}/events?limit=2`),
    holds: (b) => expect(b.nextCursor).toEqual(expect.any(String)),
  },
  { route: 'GET /api/v1/customers/{id}/events', status: 400, why: 'limit 0', send: () => get(`/api/v1/customers/${C}/events?limit=0`) },
  {
    route: 'POST /api/v1/events/void',
    status: 200,
    why: 'voided',
    send: () => send('POST', '/api/v1/events/void', { customerId: C, source: 'test', id: 'c-void', reason: 'sent twice' }),
  },
  {
    route: 'POST /api/v1/events/void',
    status: 400,
    why: 'no reason',
    send: () => send('POST', '/api/v1/events/void', { customerId: C, source: 'test', id: 'c-void' }),
  },
  {
    route: 'POST /api/v1/events/void',
    status: 404,
    why: 'never counted',
    send: () => send('POST', '/api/v1/events/void', { customerId: C, source: 'test', id: 'never', reason: 'r' }),
  },
  {
    route: 'POST /api/v1/events/void',
    status: 409,
    why: 'the event is 36 days old by now',
    send: () =>
      at(new Date(now.getTime() + 36 * 86_400_000), () => send('POST', '/api/v1/events/void', { customerId: C, source: 'test', id: 'c-old', reason: 'late' })),
  },

  {
    route: 'GET /api/v1/customers/{id}/entitlements',
    status: 200,
    why: 'every meter',
    send: () => get(`/api/v1/customers/${C}/entitlements`),
    holds: (b) => expect(b.entitlements.length).toBeGreaterThan(0),
  },
  { route: 'GET /api/v1/customers/{id}/entitlements', status: 400, why: 'a customer id with a space', send: () => get('/api/v1/customers/a%20b/entitlements') },
  {
    route: 'GET /api/v1/customers/{id}/entitlements',
    status: 409,
    why: 'a plan gone from the catalog',
    send: () => get('/api/v1/customers/cus_retired_plan/entitlements'),
  },
  { route: 'GET /api/v1/customers/{id}/entitlements/{meter}', status: 200, why: 'one meter', send: () => get(`/api/v1/customers/${C}/entitlements/api_calls`) },
  {
    route: 'GET /api/v1/customers/{id}/entitlements/{meter}',
    status: 400,
    why: 'bad percent-encoding',
    send: () => get(`/api/v1/customers/${C}/entitlements/%zz`),
  },
  {
    route: 'GET /api/v1/customers/{id}/entitlements/{meter}',
    status: 404,
    why: 'an unknown meter',
    send: () => get(`/api/v1/customers/${C}/entitlements/nope`),
  },
  {
    route: 'GET /api/v1/customers/{id}/entitlements/{meter}',
    status: 409,
    why: 'a plan gone from the catalog',
    send: () => get('/api/v1/customers/cus_retired_plan/entitlements/api_calls'),
  },

  {
    route: 'POST /api/v1/customers/{id}/portal-links',
    status: 201,
    why: 'a link for the customer',
    send: () => send('POST', `/api/v1/customers/${C}/portal-links`, { ttlSeconds: 600 }, keys.read),
    holds: (b) => expect(b.url).toMatch(/\/portal\?token=/),
  },
  {
    route: 'POST /api/v1/customers/{id}/portal-links',
    status: 400,
    why: 'a ttl of a second',
    send: () => send('POST', `/api/v1/customers/${C}/portal-links`, { ttlSeconds: 1 }, keys.read),
  },
  ...(['/portal', '/portal/usage.csv'] as const).flatMap((page): Case[] => [
    {
      route: `GET ${page}`,
      status: 200,
      why: 'a valid link',
      send: async () =>
        t.request('GET', `${page}${new URL((await send('POST', `/api/v1/customers/${C}/portal-links`, {}, keys.read)).body.url).search}`, { key: null }),
    },
    {
      route: `GET ${page}`,
      status: 400,
      why: 'a bad period',
      send: async () =>
        t.request('GET', `${page}${new URL((await send('POST', `/api/v1/customers/${C}/portal-links`, {}, keys.read)).body.url).search}&period=2026-13`, {
          key: null,
        }),
    },
    { route: `GET ${page}`, status: 401, why: 'a forged token', send: () => t.request('GET', `${page}?token=forged.token`, { key: null }) },
  ]),
  {
    route: 'GET /portal',
    status: 409,
    why: 'a plan gone from the catalog',
    send: async () =>
      t.request('GET', `/portal${new URL((await send('POST', '/api/v1/customers/cus_retired_plan/portal-links', {})).body.url).search}`, { key: null }),
  },

  { route: 'GET /health', status: 200, why: 'every table and queue answers', send: () => t.request('GET', '/health', { key: null }) },
  { route: 'GET /api/v1/openapi.json', status: 200, why: 'the document', send: () => t.request('GET', '/api/v1/openapi.json', { key: null }) },
];

it.each(CASES)('$route answers $status: $why', async ({ status, send, holds }) => {
  const res = await send();
  expect(res.status).toBe(status);
  holds?.(res.body);
});

it('serves docs/openapi.json as committed', async () => {
  const res = await t.request('GET', '/api/v1/openapi.json', { key: null });
  expect(res.body).toEqual(JSON.parse(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8')));
});

/** Who may call each route, by the document: 401 without a key, 403 with a key of another scope, 503 when DynamoDB throttles. */
const access = Object.entries(contract().doc.paths as Record<string, Record<string, { security: Record<string, string[]>[] }>>).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, scope: op.security[0]?.apiKey?.[0] })),
);
const concrete = (route: string) => route.split(' ')[1]!.replace('{id}', C).replace('{period}', period.key).replace('{keyId}', 'abcdefghijkl');
const protectedRoutes = access.filter((a) => a.scope !== undefined);
const otherScope: Record<string, keyof typeof keys> = { ingest: 'read', read: 'ingest', admin: 'readIngest' };

it.each(protectedRoutes)('$route answers 401 without a key and 403 with a key lacking $scope', async ({ route, scope }) => {
  const [method] = route.split(' ') as [string];
  expect((await t.request(method, concrete(route), { key: null })).status).toBe(401);
  expect((await t.request(method, concrete(route), { key: keys[otherScope[scope!]!] })).status).toBe(403);
});

describe('past a key`s limit', () => {
  let limited = '';
  /** Each route in a second of its own: its first request counts, the second is one too many. */
  let second = Math.ceil(Date.now() / 1000) * 1000 + 3_600_000;
  beforeAll(async () => {
    limited = (await send('POST', '/api/v1/api-keys', { name: 'one a second', scopes: ['admin'], limits: { requestsPerSecond: 1 } })).body.key;
  });

  it.each(protectedRoutes)('$route answers 429 rate_limited with Retry-After', async ({ route }) => {
    const [method] = route.split(' ') as [string];
    second += 1000;
    const res = await at(new Date(second), async () => {
      await t.request(method, concrete(route), { key: limited });
      return t.request(method, concrete(route), { key: limited });
    });
    expect({ status: res.status, code: res.body.error.code, retryAfter: res.headers.get('retry-after') }).toEqual({
      status: 429,
      code: 'rate_limited',
      retryAfter: '1',
    });
  });
});

describe('while DynamoDB throttles', () => {
  beforeAll(() => {
    dynamo.middlewareStack.add(
      () => async () => {
        throw Object.assign(new Error('throttled by the contract test'), { name: 'ThrottlingException' });
      },
      { step: 'initialize', name: 'contractThrottle' },
    );
  });
  afterAll(() => {
    dynamo.middlewareStack.remove('contractThrottle');
  });

  it.each(protectedRoutes)('$route answers 503 service_busy with Retry-After', async ({ route, scope }) => {
    const [method] = route.split(' ') as [string];
    const res = await t.request(method, concrete(route), { key: keys[scope as keyof typeof keys] });
    expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 503, code: 'service_busy' });
  });

  it('GET /health answers 503 once its last answer (at most 5 s old) has expired', async () => {
    const root = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container();
    const clock = root.clock;
    try {
      root.clock = { now: () => new Date(clock.now().getTime() + 5_001) };
      expect((await t.request('GET', '/health', { key: null })).status).toBe(503);
    } finally {
      root.clock = clock;
    }
  });
});

it('has seen every status the document lists for every route of serverless.yml', () => {
  const seen = contract().seen;
  const missing = loadDeployment().routes.flatMap(({ method, path }) => {
    const responses = contract().doc.paths[path]?.[method.toLowerCase()]?.responses;
    if (!responses) return [`${method} ${path}: not in the document`];
    return Object.keys(responses)
      .map(Number)
      .filter((status) => !seen.get(`${method} ${path}`)?.has(status))
      .map((status) => `${method} ${path} ${status}`);
  });
  expect(missing).toEqual([]);
});
