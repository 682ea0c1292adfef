import { loadDeployment } from '../../local/runtime/deployment';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * The auth matrix: every HTTP route declared in serverless.yml x every way a caller can lack the
 * right to it. Each request carries a malformed body, so an answer of 400 would mean the body was
 * read before the caller was checked: the answer must be the right 401 or 403, never anything else.
 */
type Access = 'public' | { scope: 'ingest' | 'read' | 'admin'; customer?: true };

/** Who may call what (README, API): a route missing here fails the test, so every new route is classified. */
const ACCESS: Record<string, Access> = {
  'POST /api/v1/events': { scope: 'ingest' },
  'GET /api/v1/customers/{id}/usage': { scope: 'read', customer: true },
  'PUT /api/v1/customers/{id}': { scope: 'admin' },
  'PATCH /api/v1/customers/{id}': { scope: 'admin' },
  'GET /api/v1/customers/{id}/credits': { scope: 'read', customer: true },
  'POST /api/v1/customers/{id}/credits/{key}/settle': { scope: 'admin' },
  'GET /api/v1/customers/{id}': { scope: 'read', customer: true },
  'GET /api/v1/customers': { scope: 'admin' },
  'POST /api/v1/api-keys': { scope: 'admin' },
  'DELETE /api/v1/api-keys/{keyId}': { scope: 'admin' },
  'PATCH /api/v1/api-keys/{keyId}': { scope: 'admin' },
  'GET /api/v1/api-keys': { scope: 'admin' },
  'GET /api/v1/customers/{id}/invoices': { scope: 'read', customer: true },
  'GET /api/v1/customers/{id}/invoices/upcoming': { scope: 'read', customer: true },
  'POST /api/v1/invoice-runs': { scope: 'admin' },
  'GET /api/v1/invoice-runs/{period}': { scope: 'admin' },
  'GET /api/v1/customers/{id}/alerts': { scope: 'read', customer: true },
  'GET /api/v1/customers/{id}/events': { scope: 'read', customer: true },
  'GET /api/v1/customers/{id}/entitlements': { scope: 'read', customer: true },
  'GET /api/v1/customers/{id}/entitlements/{meter}': { scope: 'read', customer: true },
  'POST /api/v1/events/void': { scope: 'admin' },
  'POST /api/v1/customers/{id}/portal-links': { scope: 'read', customer: true },
  'GET /health': 'public',
  'GET /api/v1/openapi.json': 'public',
  // Public at the HTTP level: the signed token in the query is the credential (its checks:
  // test/unit/portal-token.test.ts, test/integration/portal.test.ts).
  'GET /portal': 'public',
  'GET /portal/usage.csv': 'public',
};

const routes = loadDeployment().routes.map((r) => `${r.method} ${r.path}`);
const PARAMS: Record<string, string> = { id: 'cus_matrix', period: '2026-01', keyId: 'abcdefghijkl', meter: 'api_calls', key: '2026-01' };
const MALFORMED = ['Bearer', 'Basic bG9jYWw6a2V5', 'Bearer\u00a0local-admin-key', 'Bearer a b', 'bearer  mk_short_secret', 'Token local-admin-key'];

type Variant =
  | 'no key'
  | 'malformed header'
  | 'unknown key'
  | 'revoked key'
  | 'wrong scope'
  | "other customer's bound key"
  | 'bound key on an admin route'
  | 'a key past its requests per second';
const VARIANTS: Variant[] = [
  'no key',
  'malformed header',
  'unknown key',
  'revoked key',
  'wrong scope',
  "other customer's bound key",
  'bound key on an admin route',
  'a key past its requests per second',
];

let t: TestStack;
const keys: Record<string, string> = {};
beforeAll(async () => {
  t = await startTestStack({ pollers: false });
  const create = async (name: string, body: object) => {
    const res = await t.request('POST', '/api/v1/api-keys', { body: { name, ...body } });
    if (res.status !== 201) throw new Error(`key ${name}: ${res.status}`);
    return res.body as { keyId: string; key: string };
  };
  for (const [name, scopes] of Object.entries({ read: ['read'], ingest: ['ingest'], readIngest: ['read', 'ingest'] }))
    keys[name] = (await create(name, { scopes })).key;
  const revoked = await create('revoked', { scopes: ['admin'] });
  expect((await t.request('DELETE', `/api/v1/api-keys/${revoked.keyId}`)).status).toBe(200);
  keys.revoked = revoked.key;
  keys.boundRead = (await create('bound read', { scopes: ['read', 'ingest'], customerId: 'cus_other' })).key;
  // One request a second, of another customer: counted before its scope or customer is looked at.
  keys.limited = (await create('limited', { scopes: ['read'], customerId: 'cus_other', limits: { requestsPerSecond: 1 } })).key;
  // Refused at creation now (admin_key_bound); one made before that rule must still be refused at use.
  keys.boundAdmin = (await t.storeKeyDirectly({ name: 'bound admin', scopes: ['admin'], customerId: 'cus_other' })).key;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

/**
 * The Authorization header (`key:<name>` stands for a key made in beforeAll) and the answer
 * expected for one cell, or undefined where the cell does not apply.
 */
function cell(access: Exclude<Access, 'public'>, variant: Variant, i: number): { authorization?: string; status: number; code: string } | undefined {
  const unauthorized = { status: 401, code: 'unauthorized' };
  switch (variant) {
    case 'no key':
      return { ...unauthorized };
    case 'malformed header':
      return { authorization: MALFORMED[i % MALFORMED.length], ...unauthorized };
    case 'unknown key':
      return { authorization: `Bearer mk_zzzzzzzzzzzz_${'Q'.repeat(43)}`, ...unauthorized };
    case 'revoked key':
      return { authorization: 'key:revoked', ...unauthorized };
    case 'wrong scope': {
      const key = access.scope === 'ingest' ? 'read' : access.scope === 'read' ? 'ingest' : 'readIngest';
      return { authorization: `key:${key}`, status: 403, code: 'insufficient_scope' };
    }
    case "other customer's bound key":
      // Ingest reads the customer from the events themselves (their subject), so it cannot be decided before the body.
      if (access.scope === 'ingest') return undefined;
      return { authorization: `key:${access.scope === 'admin' ? 'boundAdmin' : 'boundRead'}`, status: 403, code: 'customer_forbidden' };
    case 'bound key on an admin route':
      return access.scope === 'admin' ? { authorization: 'key:boundAdmin', status: 403, code: 'customer_forbidden' } : undefined;
    case 'a key past its requests per second':
      return { authorization: 'key:limited', status: 429, code: 'rate_limited' };
  }
}

const matrix = routes.flatMap((route, r) => {
  const access = ACCESS[route];
  if (access === undefined || access === 'public') return [];
  return VARIANTS.flatMap((variant, v) => {
    const c = cell(access, variant, r * VARIANTS.length + v);
    return c ? [{ route, variant, ...c }] : [];
  });
});

it('classifies every HTTP route of serverless.yml (and only those)', () => {
  expect([...routes].sort()).toEqual(Object.keys(ACCESS).sort());
  // 8 cells for admin routes, 7 for read routes, 6 for ingest.
  expect(matrix.length).toBeGreaterThanOrEqual(100);
});

const path = (route: string) => route.split(' ')[1]!.replace(/\{(\w+)\}/g, (_, name: string) => PARAMS[name]!);

/** A second of its own for each limited cell, on the stack's clock (the handlers run in this process). */
let second = Math.ceil(Date.now() / 1000) * 1000 + 3_600_000;

it.each(matrix)('$route, $variant: $status $code before the body is read', async ({ route, variant, authorization, status, code }) => {
  const header = authorization?.startsWith('key:') ? `Bearer ${keys[authorization.slice(4)]!}` : authorization;
  const send = () =>
    t.raw(route.split(' ')[0]!, path(route), {
      headers: { 'content-type': 'application/json', ...(header === undefined ? {} : { authorization: header }) },
      body: '{"this body": is not JSON and matches no schema',
    });
  let res: Awaited<ReturnType<typeof send>>;
  if (variant === 'a key past its requests per second') {
    const c = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container();
    const real = c.clock;
    const at = new Date((second += 1000));
    c.clock = { now: () => at };
    try {
      await send(); // the second's one request (refused 403 or 400: it counts all the same)
      res = await send();
    } finally {
      c.clock = real;
    }
  } else res = await send();
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.body.error).toEqual({ code, message: expect.any(String), details: expect.any(Array), requestId: res.headers.get('x-request-id') });
});

/** Public routes that take a credential of their own in the query: the portal's signed token. */
const tokenQuery = (route: string) => (route.includes(' /portal') ? `?token=${portalToken}` : '');
let portalToken: string;
beforeAll(async () => {
  const res = await t.request('POST', '/api/v1/customers/cus_matrix/portal-links');
  portalToken = new URL(res.body.url).searchParams.get('token')!;
});

it.each(routes.filter((r) => ACCESS[r] === 'public'))('%s is public: any key, or none, gets the same answer', async (route) => {
  for (const authorization of [undefined, 'Bearer nope', MALFORMED[2]!, 'Bearer local-admin-key']) {
    const res = await t.raw(route.split(' ')[0]!, path(route) + tokenQuery(route), { headers: authorization ? { authorization } : {} });
    expect({ authorization, status: res.status }).toEqual({ authorization, status: 200 });
  }
});

it.each(routes.filter((r) => ACCESS[r] === 'public' && tokenQuery(r) !== ''))('%s is not opened by an API key without its token: 401', async (route) => {
  for (const authorization of [undefined, 'Bearer local-admin-key']) {
    const res = await t.raw(route.split(' ')[0]!, path(route), { headers: authorization ? { authorization } : {} });
    expect({ authorization, status: res.status, type: res.headers.get('content-type') }).toEqual({
      authorization,
      status: 401,
      type: 'text/html; charset=utf-8',
    });
  }
});
