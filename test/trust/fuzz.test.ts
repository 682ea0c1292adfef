import fc from 'fast-check';
import { ADMIN, startTestStack, type Res, type TestStack } from '../support/stack';

/**
 * The fuzz suite: generated requests against the real local stack (HTTP API, fauxqs, aggregator,
 * DynamoDB Local). Bodies, headers (content types, Authorization, Idempotency-Key), paths (odd
 * Unicode, bad percent-encoding, long and dot segments), query strings and keys are generated;
 * every case knows which answers are right for it. Asserted for every request: never a 5xx; every
 * error is the envelope with the request id; never a 2xx for invalid input. At the end: what the
 * accepted requests sent is counted exactly, and nothing of the rejected ones.
 *
 * `npm test` sends FUZZ_REQUESTS=1000 (the default); `npm run fuzz` 10,000. Seed: FUZZ_SEED.
 */
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
  await setUpKeys();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const weighted = <T>(choices: [T, number][]) => fc.oneof(...choices.map(([v, weight]) => ({ weight, arbitrary: fc.constant(v) })));
/** `arb` in `yes` of every `yes + no` cases, otherwise undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, yes: number, no: number) =>
  fc.oneof({ weight: no, arbitrary: fc.constant(undefined) }, { weight: yes, arbitrary: arb });

// --- keys ---------------------------------------------------------------------------------------

const SUBJECTS = ['fz-a', 'fz-b', 'fz:c.1'] as const;
const BOUND = SUBJECTS[0];
type KeyName = 'admin' | 'ingest' | 'read' | 'bound' | 'boundOther' | 'revoked' | 'unknown' | 'none' | 'malformed' | 'limited';
const keys: Partial<Record<KeyName, string>> = { admin: ADMIN, unknown: `mk_unknownkey0_${'u'.repeat(43)}` };
const MALFORMED_AUTH = [
  'Bearer',
  'Bearer ',
  'Basic YWRtaW46YWRtaW4=',
  'Bearer\u00a0local-admin-key',
  'Bearer local-admin-key extra',
  'local-admin-key',
  'Bearer "local-admin-key"',
];
let realCursor = '';

async function setUpKeys() {
  const create = async (body: object) => {
    const res = await t.request('POST', '/api/v1/api-keys', { body });
    if (res.status !== 201) throw new Error(`key: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { keyId: string; key: string };
  };
  keys.ingest = (await create({ name: 'fz ingest', scopes: ['ingest'] })).key;
  keys.read = (await create({ name: 'fz read', scopes: ['read'] })).key;
  keys.bound = (await create({ name: 'fz bound', scopes: ['read', 'ingest'], customerId: BOUND })).key;
  keys.boundOther = (await create({ name: 'fz bound other', scopes: ['read', 'ingest'], customerId: 'fz-elsewhere' })).key;
  // Two requests a second and 1,000 events a minute: what it sends is answered rightly or 429 rate_limited.
  keys.limited = (await create({ name: 'fz limited', scopes: ['read', 'ingest'], limits: { requestsPerSecond: 2, eventsPerMinute: 1000 } })).key;
  const revoked = await create({ name: 'fz revoked', scopes: ['admin'] });
  await t.request('DELETE', `/api/v1/api-keys/${revoked.keyId}`);
  keys.revoked = revoked.key;
  for (const id of ['fz-list-1', 'fz-list-2', 'fz-list-3']) await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: id } });
  realCursor = (await t.request('GET', '/api/v1/customers?limit=1')).body.nextCursor;
}

function authorization(key: KeyName, variant: number): Record<string, string> {
  if (key === 'none') return {};
  if (key === 'malformed') return { authorization: MALFORMED_AUTH[variant % MALFORMED_AUTH.length]! };
  return { authorization: `Bearer ${keys[key]!}` };
}

/** 401 for no usable key; 403 for a key without the scope. */
function authAnswer(key: KeyName, scope: 'ingest' | 'read' | 'admin'): number[] | undefined {
  if (key === 'none' || key === 'malformed' || key === 'unknown' || key === 'revoked') return [401];
  const scopes: Record<string, string[]> = {
    admin: ['admin'],
    ingest: ['ingest'],
    read: ['read'],
    bound: ['read', 'ingest'],
    boundOther: ['read', 'ingest'],
    limited: ['read', 'ingest'],
  };
  const has = scopes[key]!.includes(scope) || scopes[key]!.includes('admin');
  if (!has) return [403];
  if (scope === 'admin' && (key === 'bound' || key === 'boundOther')) return [403];
  return undefined;
}

// --- ingest cases -------------------------------------------------------------------------------

/** Micro-units as an exact decimal text ("1.5", "0"). */
const decimal = (micros: bigint) => `${micros / 1_000_000n}.${String(micros % 1_000_000n).padStart(6, '0')}`.replace(/\.?0+$/, '') || '0';

interface GenEvent {
  subject: (typeof SUBJECTS)[number];
  value: string | number;
  exact: bigint; // value in 10^-6 units, for the model
  secondsAgo: number;
}
const genEvent: fc.Arbitrary<GenEvent> = fc
  .record({
    subject: fc.constantFrom(...SUBJECTS),
    micros: fc.bigInt({ min: 0n, max: 5_000_000_000n }),
    asString: fc.boolean(),
    secondsAgo: fc.integer({ min: 30, max: 240 }),
  })
  .map(({ subject, micros, asString, secondsAgo }) => {
    const text = decimal(micros);
    const exactAsNumber = String(Number(text)) === text;
    return { subject, value: asString || !exactAsNumber ? text : Number(text), exact: micros, secondsAgo };
  });

/** One change that makes an event invalid, by construction. */
const MUTATIONS: [string, (e: Record<string, unknown>) => unknown][] = [
  ['id empty', (e) => ({ ...e, id: '' })],
  ['id too long', (e) => ({ ...e, id: 'i'.repeat(257) })],
  ['id a number', (e) => ({ ...e, id: 42 })],
  ['id a lone surrogate', (e) => ({ ...e, id: `${String(e.id)}\ud800` })],
  ['id missing', ({ id: _id, ...e }) => e],
  ['source too long', (e) => ({ ...e, source: '\u{1F600}'.repeat(129) })],
  ['source null', (e) => ({ ...e, source: null })],
  ['subject "."', (e) => ({ ...e, subject: '.' })],
  ['subject ".."', (e) => ({ ...e, subject: '..' })],
  ['subject with a space', (e) => ({ ...e, subject: 'fz a' })],
  ['subject non-ASCII', (e) => ({ ...e, subject: 'fz-é' })],
  ['subject too long', (e) => ({ ...e, subject: 'f'.repeat(129) })],
  ['subject missing', ({ subject: _s, ...e }) => e],
  ['unknown type', (e) => ({ ...e, type: 'api_callz' })],
  ['type a number', (e) => ({ ...e, type: 7 })],
  ['time not RFC 3339', (e) => ({ ...e, time: 'yesterday' })],
  ['time in the future', (e) => ({ ...e, time: new Date(Date.now() + 3_600_000).toISOString() })],
  ['time too old', (e) => ({ ...e, time: new Date(Date.now() - 40 * 86_400_000).toISOString() })],
  ['time month 13', (e) => ({ ...e, time: '2026-13-01T00:00:00Z' })],
  ['time a leap second not at 23:59 UTC', (e) => ({ ...e, time: `${String(e.time).slice(0, 10)}T12:59:60Z` })],
  ['time missing', ({ time: _t, ...e }) => e],
  ['specversion 0.3', (e) => ({ ...e, specversion: '0.3' })],
  ['specversion a number', (e) => ({ ...e, specversion: 1 })],
  ['value negative', (e) => ({ ...e, data: { value: -1 } })],
  ['value NaN', (e) => ({ ...e, data: { value: 'NaN' } })],
  ['value too large', (e) => ({ ...e, data: { value: '1e15' } })],
  ['value too precise', (e) => ({ ...e, data: { value: '0.0000000000001' } })],
  ['value an object', (e) => ({ ...e, data: { value: {} } })],
  ['value true', (e) => ({ ...e, data: { value: true } })],
  ['value missing', (e) => ({ ...e, data: {} })],
  ['data an array', (e) => ({ ...e, data: [1] })],
  ['data a string', (e) => ({ ...e, data: 'value=1' })],
  ['datacontenttype text', (e) => ({ ...e, datacontenttype: 'text/plain' })],
  ['not an object', () => 'event'],
  ['null event', () => null],
];
/** Whole-body problems: the text sent, and the answers that are right for it. */
const BODY_PROBLEMS: [string, (valid: string) => string | Buffer, number[]][] = [
  ['truncated JSON', (v) => v.slice(0, Math.max(1, v.length - 7)), [400]],
  ['a BOM before the JSON', (v) => `\ufeff${v}`, [400]],
  ['trailing garbage', (v) => `${v} x`, [400]],
  ['a key twice', (v) => v.replace('"specversion":"1.0"', '"specversion":"1.0","specversion":"0.3"'), [400]],
  ['an inexact JSON number', (v) => v.replace(/"value":("[^"]*"|[0-9.e-]+)/, '"value":123456789.123456789012'), [400]],
  ['not UTF-8', (v) => Buffer.concat([Buffer.from(v.slice(0, -2)), Buffer.from([0xff, 0xfe]), Buffer.from(v.slice(-2))]), [400]],
  ['empty', () => '', [400]],
  ['the JSON null', () => 'null', [400]],
  ['an empty batch', () => '[]', [400]],
  ['random text', () => 'events please', [400]],
];

const VALID_TYPES = ['application/cloudevents-batch+json', 'application/json', 'application/json; charset=utf-8', 'Application/CloudEvents-Batch+JSON'];
const INVALID_TYPES = ['text/plain', 'application/xml', 'application/jsonx', 'multipart/form-data', 'application/cloudevents+xml', ''];

interface IngestCase {
  type: 'ingest';
  key: KeyName;
  authVariant: number;
  mode: 'batch' | 'single' | 'binary';
  events: GenEvent[];
  resend: number;
  mutation?: { at: number; which: number };
  bodyProblem?: number;
  contentType: { valid: boolean; which: number };
  idempotency: 'none' | 'fresh' | 'replay' | 'conflict' | 'invalid';
}
const ingestCase: fc.Arbitrary<IngestCase> = fc
  .record({
    key: weighted<KeyName>([
      ['admin', 4],
      ['ingest', 4],
      ['bound', 2],
      ['read', 1],
      ['boundOther', 1],
      ['none', 1],
      ['malformed', 1],
      ['unknown', 1],
      ['revoked', 1],
      ['limited', 1],
    ]),
    authVariant: fc.nat(),
    mode: weighted<IngestCase['mode']>([
      ['batch', 2],
      ['single', 1],
      ['binary', 1],
    ]),
    events: fc.array(genEvent, { minLength: 1, maxLength: 6 }),
    resend: fc.nat({ max: 3 }),
    mutation: sometimes(fc.record({ at: fc.nat(), which: fc.nat({ max: MUTATIONS.length - 1 }) }), 1, 3),
    bodyProblem: sometimes(fc.nat({ max: BODY_PROBLEMS.length - 1 }), 1, 8),
    contentType: fc.record({ valid: fc.nat({ max: 9 }).map((n) => n > 0), which: fc.nat() }),
    idempotency: weighted<IngestCase['idempotency']>([
      ['none', 5],
      ['fresh', 2],
      ['replay', 1],
      ['conflict', 1],
      ['invalid', 1],
    ]),
  })
  .map((c) => ({ ...c, type: 'ingest' as const }));

// --- read and admin cases -----------------------------------------------------------------------

const ODD_IDS: [string, string][] = [
  ['bad percent-encoding', '%zz'],
  ['truncated percent-encoding', 'fz-a%'],
  ['overlong UTF-8', '%C0%AF'],
  ['dot segment', '%2e%2e'],
  ['dot', '.'],
  ['two dots', '..'],
  ['encoded slash', 'fz%2Fa'],
  ['odd Unicode', encodeURIComponent('fz-\u{1F600}\u0000\uffff')],
  ['a space', 'fz%20a'],
  ['long segment', 'a'.repeat(3000)],
  ['long valid-looking', 'f'.repeat(129)],
];
const BAD_PERIODS = ['2026-13', '26-11', 'now', '%zz', '2026-1', '2026-11-01', 'x'.repeat(500)];
const BAD_LIMITS = ['0', '201', '-1', '1.5', 'ten', ''];

interface ReadCase {
  type: 'read';
  key: KeyName;
  authVariant: number;
  route: number;
  id: { valid: boolean; which: number };
  period: { kind: 'none' | 'valid' | 'invalid'; which: number };
  limit: { kind: 'none' | 'valid' | 'invalid'; which: number };
  cursor: 'none' | 'real' | 'truncated' | 'tampered' | 'garbage';
  body: number;
}
const readCase: fc.Arbitrary<ReadCase> = fc
  .record({
    key: weighted<KeyName>([
      ['admin', 3],
      ['read', 2],
      ['bound', 2],
      ['boundOther', 1],
      ['ingest', 1],
      ['none', 1],
      ['malformed', 1],
      ['unknown', 1],
      ['revoked', 1],
      ['limited', 1],
    ]),
    authVariant: fc.nat(),
    route: fc.nat(),
    id: fc.record({ valid: fc.boolean(), which: fc.nat() }),
    period: fc.record({ kind: fc.constantFrom<'none' | 'valid' | 'invalid'>('none', 'valid', 'invalid'), which: fc.nat() }),
    limit: fc.record({ kind: fc.constantFrom<'none' | 'valid' | 'invalid'>('none', 'valid', 'invalid'), which: fc.nat() }),
    cursor: fc.constantFrom<ReadCase['cursor']>('none', 'none', 'real', 'truncated', 'tampered', 'garbage'),
    body: fc.nat({ max: 8 }),
  })
  .map((c) => ({ ...c, type: 'read' as const }));

// --- running a case -----------------------------------------------------------------------------

interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** The statuses that are right for this request. */
  expect: number[];
  /** On a 2xx: the events that count (ingest) and whether it must be a replay. */
  accepted?: { events: WireEvent[]; replay: boolean; remember?: RememberedRequest };
  describe: string;
}
interface WireEvent {
  source: string;
  id: string;
  subject: string;
  time: string;
  period: string;
  micros: bigint;
}
interface RememberedRequest {
  key: KeyName;
  idempotencyKey: string;
  headers: Record<string, string>;
  body: string | Buffer | undefined;
}

let sequence = 0;
const accepted: WireEvent[] = [];
const idempotent: RememberedRequest[] = [];

function wire(e: GenEvent): { json: Record<string, unknown>; model: WireEvent } {
  sequence += 1;
  const time = new Date(Date.now() - e.secondsAgo * 1000).toISOString();
  const json = { specversion: '1.0', id: `fz-${SEED}-${sequence}`, source: 'fuzz', type: 'api_calls', subject: e.subject, time, data: { value: e.value } };
  return { json, model: { source: 'fuzz', id: json.id, subject: e.subject, time, period: time.slice(0, 7), micros: e.exact } };
}

function ingestRequest(c: IngestCase): Request {
  const base = { method: 'POST', path: '/api/v1/events' };
  const auth = authorization(c.key, c.authVariant);
  if (c.idempotency === 'replay' && idempotent.length > 0) {
    const r = idempotent[c.authVariant % idempotent.length]!;
    return { ...base, headers: r.headers, body: r.body, expect: [202], accepted: { events: [], replay: true }, describe: 'idempotent replay' };
  }
  const fresh = c.events.map(wire);
  // Events accepted before, sent again as a client retry would: the same identity, time and value.
  const resent = (c.resend === 0 ? [] : accepted.slice(-c.resend)).map((m) => ({
    json: { specversion: '1.0', id: m.id, source: m.source, type: 'api_calls', subject: m.subject, time: m.time, data: { value: decimal(m.micros) } },
    model: m,
  }));
  const events = c.mode === 'batch' ? [...fresh, ...resent] : fresh.slice(0, 1);
  const jsons: unknown[] = events.map((e) => e.json);
  const problems: string[] = [];
  if (c.mutation) {
    const at = c.mutation.at % jsons.length;
    const [name, mutate] = MUTATIONS[c.mutation.which]!;
    if (c.mode === 'binary' && ['not an object', 'null event', 'data an array', 'data a string', 'datacontenttype text'].includes(name)) {
      jsons[at] = { ...(jsons[at] as object), data: { value: -5 } }; // not expressible in binary mode: a bad value instead
      problems.push('value negative');
    } else if (c.mode === 'binary' && ['id a number', 'id a lone surrogate'].includes(name)) {
      problems.push('ce-id not percent-encoded'); // a header is always text: break its encoding instead (below)
    } else {
      jsons[at] = mutate(jsons[at] as Record<string, unknown>);
      problems.push(name);
    }
  }
  const single = c.mode !== 'batch';
  let body: string | Buffer = JSON.stringify(single ? jsons[0] : jsons);
  const headers: Record<string, string> = { ...auth };
  const types = c.contentType.valid
    ? single
      ? ['application/cloudevents+json', 'application/json', 'application/cloudevents+json; charset=UTF-8']
      : VALID_TYPES
    : INVALID_TYPES;
  let contentType = types[c.contentType.which % types.length]!;
  if (c.mode === 'binary') {
    const e = jsons[0] as Record<string, unknown>;
    contentType = c.contentType.valid ? 'application/json' : contentType;
    for (const attr of ['specversion', 'id', 'source', 'type', 'subject', 'time']) {
      if (typeof e[attr] === 'string' || typeof e[attr] === 'number') headers[`ce-${attr}`] = encodeURIComponent(String(e[attr]));
    }
    if (problems.includes('ce-id not percent-encoded')) headers['ce-id'] = '100%';
    body = e.data === undefined ? '' : JSON.stringify(e.data);
  }
  let bodyAnswer: number[] | undefined;
  if (c.bodyProblem !== undefined && c.mode !== 'binary') {
    const [name, make, answer] = BODY_PROBLEMS[c.bodyProblem]!;
    body = make(String(body));
    bodyAnswer = answer;
    problems.push(name);
  }
  if (contentType !== '') headers['content-type'] = contentType;

  let idempotencyKey: string | undefined;
  if (c.idempotency === 'fresh' || c.idempotency === 'replay') idempotencyKey = `fz-${SEED}-${sequence}-key`;
  if (c.idempotency === 'conflict' && idempotent.length > 0) idempotencyKey = idempotent[c.authVariant % idempotent.length]!.idempotencyKey;
  if (c.idempotency === 'invalid') idempotencyKey = ['has space', 'x'.repeat(256), 'caf\u00e9', '\t'][c.authVariant % 4];
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;

  // The answer, in the order the API checks: key, scope, media type, size, JSON, events, customer, Idempotency-Key.
  const describe = `ingest ${c.mode} key=${c.key} type=${contentType} ${problems.join(', ') || 'valid'} idem=${c.idempotency}`;
  const expect = (statuses: number[]): Request => ({ ...base, headers, body, expect: statuses, describe });
  const auth401or403 = authAnswer(c.key, 'ingest');
  if (auth401or403) return expect(auth401or403);
  // The body is decoded as UTF-8 when the handler reads it, before the media type is looked at.
  if (problems.includes('not UTF-8')) return expect([400]);
  if (!c.contentType.valid) return expect([415]);
  if (bodyAnswer) return expect(bodyAnswer);
  if (problems.length > 0) return expect([400]);
  const subjects = new Set(events.map((e) => e.model.subject));
  if (c.key === 'boundOther' || (c.key === 'bound' && [...subjects].some((s) => s !== BOUND))) return expect([403]);
  if (c.idempotency === 'invalid') return expect([400]);
  const conflicting =
    idempotencyKey !== undefined && c.idempotency === 'conflict' && idempotent.some((r) => r.idempotencyKey === idempotencyKey && r.key === c.key);
  if (conflicting) return expect([409]);
  const remember = idempotencyKey !== undefined ? { key: c.key, idempotencyKey, headers, body } : undefined;
  return { ...expect([202]), accepted: { events: events.map((e) => e.model), replay: false, remember } };
}

const READ_ROUTES: {
  method: string;
  path: (id: string) => string;
  scope: 'read' | 'admin' | 'public';
  customer: boolean;
  ok: number[];
  query: ('period' | 'list')[];
  body?: true;
}[] = [
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/usage`, scope: 'read', customer: true, ok: [200], query: ['period'] },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}`, scope: 'read', customer: true, ok: [200, 404], query: [] },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/invoices`, scope: 'read', customer: true, ok: [200], query: [] },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/invoices/upcoming`, scope: 'read', customer: true, ok: [200], query: ['period'] },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/alerts`, scope: 'read', customer: true, ok: [200], query: ['period'] },
  { method: 'PUT', path: (id) => `/api/v1/customers/${id}`, scope: 'admin', customer: true, ok: [200, 201], query: [], body: true },
  { method: 'GET', path: () => '/api/v1/customers', scope: 'admin', customer: false, ok: [200], query: ['list'] },
  { method: 'GET', path: () => '/api/v1/api-keys', scope: 'admin', customer: false, ok: [200], query: [] },
  { method: 'DELETE', path: (id) => `/api/v1/api-keys/${id}`, scope: 'admin', customer: false, ok: [404], query: [] },
  { method: 'GET', path: (id) => `/api/v1/invoice-runs/${id}`, scope: 'admin', customer: false, ok: [200, 404], query: [] },
  { method: 'POST', path: () => '/api/v1/invoice-runs', scope: 'admin', customer: false, ok: [409], query: [], body: true },
  { method: 'POST', path: () => '/api/v1/api-keys', scope: 'admin', customer: false, ok: [400], query: [], body: true },
  { method: 'GET', path: () => '/health', scope: 'public', customer: false, ok: [200], query: [] },
  { method: 'DELETE', path: (id) => `/api/v1/customers/${id}`, scope: 'public', customer: false, ok: [405], query: [] },
  { method: 'PATCH', path: (id) => `/api/v1/customers/${id}`, scope: 'admin', customer: true, ok: [200, 404], query: [], body: true },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/credits`, scope: 'read', customer: true, ok: [200], query: [] },
  { method: 'PATCH', path: (id) => `/api/v1/api-keys/${id}`, scope: 'admin', customer: false, ok: [404], query: [], body: true },
  { method: 'GET', path: (id) => `/api/v1/customers/${id}/events`, scope: 'read', customer: true, ok: [200], query: ['period'] },
];

function readRequest(c: ReadCase): Request {
  const route = READ_ROUTES[c.route % READ_ROUTES.length]!;
  const now = new Date().toISOString().slice(0, 7);
  // A valid path id for the route: a customer, a period (invoice runs) or a key id (unknown, never a real key).
  const validId = route.path('x').includes('invoice-runs')
    ? now
    : route.path('x').includes('api-keys')
      ? `zz${String(c.id.which % 1e10).padStart(10, '0')}`
      : SUBJECTS[c.id.which % SUBJECTS.length]!;
  const [oddName, oddId] = ODD_IDS[c.id.which % ODD_IDS.length]!;
  const id = c.id.valid ? validId : oddId;
  const params = new URLSearchParams();
  let queryValid = true;
  if (route.query.includes('period') && c.period.kind !== 'none') {
    params.set('period', c.period.kind === 'valid' ? now : BAD_PERIODS[c.period.which % BAD_PERIODS.length]!);
    queryValid &&= c.period.kind === 'valid';
  }
  let rawQuery = '';
  if (route.query.includes('list')) {
    if (c.limit.kind !== 'none')
      params.set('limit', c.limit.kind === 'valid' ? String(1 + (c.limit.which % 200)) : BAD_LIMITS[c.limit.which % BAD_LIMITS.length]!);
    queryValid &&= c.limit.kind !== 'invalid';
    const tamper = (s: string) => `${s.slice(0, 4)}${s[4] === 'A' ? 'B' : 'A'}${s.slice(5)}`;
    const cursor = { none: undefined, real: realCursor, truncated: realCursor.slice(0, -3), tampered: tamper(realCursor), garbage: 'A' }[c.cursor];
    if (cursor !== undefined) params.set('cursor', cursor);
    queryValid &&= c.cursor === 'none' || c.cursor === 'real';
    if (c.cursor === 'garbage' && c.limit.which % 3 === 0) rawQuery = 'cursor=%zz'; // malformed encoding in the query itself
  }
  const query = rawQuery || params.toString();
  const bodies = [
    JSON.stringify({ name: 'Fuzz Co' }),
    JSON.stringify({ period: now }),
    '{"name":',
    JSON.stringify({ name: 'x', scopes: ['superuser'] }),
    JSON.stringify({ name: '', planId: 'gold' }),
    '[]',
    JSON.stringify({ limits: { requestsPerSecond: 5, eventsPerMinute: null } }),
    '{"limits":{"requestsPerSecond":1e400}}',
    JSON.stringify({ limits: { eventsPerMinute: '\u{1F600}'.repeat(300) } }),
  ];
  const body = route.body ? bodies[c.body]! : undefined;
  const headers: Record<string, string> = { ...authorization(c.key, c.authVariant), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  const request = { method: route.method, path: `${route.path(id)}${query ? `?${query}` : ''}`, headers, body };
  const describe = `${route.method} ${route.path('{id}')} key=${c.key} id=${c.id.valid ? 'valid' : oddName} query=${query.slice(0, 60)}`;
  const answer = (statuses: number[]) => ({ ...request, expect: statuses, describe });

  if (route.scope === 'public') return answer(route.ok);
  const auth = authAnswer(c.key, route.scope);
  if (auth) return answer(auth);
  const idProblem = !c.id.valid && route.path('x') !== route.path('y');
  // A bound key is checked against a customer path parameter once it decodes.
  if (route.customer && (c.key === 'bound' || c.key === 'boundOther')) {
    const decodes = !['bad percent-encoding', 'truncated percent-encoding', 'overlong UTF-8'].includes(oddName) || c.id.valid;
    if (!decodes) return answer([400]);
    if (c.key === 'boundOther' || id !== BOUND) return answer([403]);
  }
  if (idProblem) return answer([400]);
  if (!queryValid) return answer([400]);
  if (route.body) {
    const keyLimits = route.path('x').includes('api-keys');
    const ok = keyLimits
      ? c.body === 6
      : ((route.method === 'PUT' || route.method === 'PATCH') && c.body === 0) || (route.path('x').endsWith('invoice-runs') && c.body === 1);
    return answer(ok ? route.ok : [400]);
  }
  return answer(route.ok);
}

// --- the run ------------------------------------------------------------------------------------

const tally = new Map<string, number>();
let sent = 0;

async function check(req: Request): Promise<void> {
  const res: Res & { text: string } = await t.raw(req.method, req.path, { headers: req.headers, body: req.body });
  sent += 1;
  const where = `${req.describe} -> ${res.status} ${res.text.slice(0, 300)}`;
  const label = res.status >= 400 ? `${res.status} ${res.body?.error?.code ?? '(no envelope)'}` : `${res.status}`;
  tally.set(label, (tally.get(label) ?? 0) + 1);
  if (res.status >= 500) throw new Error(`5xx: ${where}`);
  if (res.status >= 400) {
    const e = res.body?.error;
    const envelope = e && typeof e.code === 'string' && typeof e.message === 'string' && Array.isArray(e.details) && typeof e.requestId === 'string';
    if (!envelope || e.requestId !== res.headers.get('x-request-id')) throw new Error(`not the error envelope with the request id: ${where}`);
  }
  // The limited key's requests may also be past its limits (whatever else they would be answered).
  const limited = req.headers.authorization === `Bearer ${keys.limited}`;
  if (!req.expect.includes(res.status) && !(limited && res.status === 429)) throw new Error(`expected ${req.expect.join('/')}: ${where}`);
  if (res.status === 429 && res.headers.get('retry-after') === null) throw new Error(`429 without Retry-After: ${where}`);
  if (res.status >= 200 && res.status < 300 && req.accepted) {
    if (req.accepted.replay !== (res.headers.get('idempotent-replayed') === 'true')) throw new Error(`replay header wrong: ${where}`);
    accepted.push(...req.accepted.events);
    if (req.accepted.remember) idempotent.push(req.accepted.remember);
  }
}

it(`answers ${REQUESTS} generated requests without a 5xx, each one rightly, and counts exactly what it accepted (seed ${SEED})`, async () => {
  const started = Date.now();
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 5, arbitrary: ingestCase }, { weight: 4, arbitrary: readCase }), async (c) => {
        await check(c.type === 'ingest' ? ingestRequest(c) : readRequest(c));
      }),
      { seed: SEED, numRuns: REQUESTS, endOnFailure: true },
    );
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? `\n${((err as Error).cause as Error).message}` : '';
    throw new Error(`fuzz failed (reproduce with FUZZ_SEED=${SEED} FUZZ_REQUESTS=${REQUESTS}): ${(err as Error).message}${cause}`);
  }

  // What was accepted counts exactly once per (source, id); every other copy is a duplicate; nothing else counts.
  await t.drain(120_000);
  const expected = new Map<string, { micros: bigint; events: number; duplicates: number }>();
  const seen = new Set<string>();
  for (const e of accepted) {
    const k = `${e.subject}|${e.period}`;
    const x = expected.get(k) ?? { micros: 0n, events: 0, duplicates: 0 };
    expected.set(k, x);
    if (seen.has(e.id)) x.duplicates += 1;
    else {
      seen.add(e.id);
      x.micros += e.micros;
      x.events += 1;
    }
  }
  for (const subject of SUBJECTS) {
    for (const period of new Set([new Date().toISOString().slice(0, 7), new Date(Date.now() - 300_000).toISOString().slice(0, 7)])) {
      const x = expected.get(`${subject}|${period}`) ?? { micros: 0n, events: 0, duplicates: 0 };
      const u = await t.usage(subject, period);
      expect({ subject, period, api_calls: u.values.api_calls, api_requests: u.values.api_requests, duplicates: u.duplicatesDropped }).toEqual({
        subject,
        period,
        api_calls: decimal(x.micros),
        api_requests: String(x.events),
        duplicates: x.duplicates,
      });
    }
  }
  expect(await t.receiveAll(t.dlqUrl)).toEqual([]);

  const rows = [...tally.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([answer, count]) => ({ answer, count }));
  console.log(
    `fuzz: ${sent} requests in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${SEED}); ${accepted.length} events accepted, ${seen.size} distinct`,
  );
  console.table(rows);
  expect(sent).toBe(REQUESTS);
  expect(rows.filter((r) => r.answer.startsWith('5'))).toEqual([]);
}, 3_600_000);
