import fc from 'fast-check';
import { Decimal as DecimalJs } from 'decimal.js';
import { compareUtf8 } from '../../lib/domain/aggregation';
import { ADMIN, startTestStack, type TestStack } from '../support/stack';

/**
 * Accepted means counted (property): any request that passes validation, generated to the edges
 * of every rule (arbitrary Unicode with astral characters, controls, U+0000, U+FFFE/U+FFFF; ids of
 * exactly 256 UTF-16 units and claim keys around DynamoDB's 2,048-byte limit; values from 1e-12 to
 * 999999999999999.999999999999; leap seconds and offsets), goes through the real pipeline
 * (HTTP API -> fauxqs -> aggregator -> DynamoDB Local) and reads back exactly from the usage API,
 * with nothing in the DLQ. Sent again, every event is a duplicate and nothing moves.
 */
const SEED = Number(process.env.ACCEPTED_SEED ?? 20261126);
/** The model's own exact decimals (decimal.js rounds to 20 digits by default). */
const Decimal = DecimalJs.clone({ precision: 60 });
type Decimal = InstanceType<typeof Decimal>;
const RUNS = Number(process.env.ACCEPTED_RUNS ?? 24);

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

// --- generators -------------------------------------------------------------------------------

const special = fc.constantFrom(
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\uffff',
  '\ufffe',
  '\ufffd',
  '\u2028',
  '"',
  '\\',
  '%',
  '+',
  ' ',
  'é',
  '\u{1F600}',
  '\u{10FFFF}',
);
const anyCodePoint = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
const unit = fc.oneof({ weight: 4, arbitrary: anyCodePoint }, { weight: 1, arbitrary: special });
/** 1..max UTF-16 code units of well-formed Unicode. */
const text = (max: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit, minLength: 1, maxLength: max, size: 'medium' }).filter((s) => s.length <= max) },
    // The edges: exactly `max` units of 1-, 2-, 3- and 4-byte characters and of 6-byte JSON escapes.
    { weight: 1, arbitrary: fc.constantFrom('a', '\u0001', 'é', '\uffff', '\u0000').map((c) => c.repeat(max)) },
    { weight: 1, arbitrary: fc.constant('\u{1F600}'.repeat(max / 2)) },
  );

/** Exact decimals inside the limits, as text: up to 15 integer digits and 12 decimals. */
const decimalText = (signed: boolean) =>
  fc
    .oneof(
      { weight: 6, arbitrary: fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), fc.nat({ max: 12 }), fc.bigInt({ min: 0n, max: 10n ** 12n - 1n })) },
      { weight: 1, arbitrary: fc.constantFrom<[bigint, number, bigint]>([10n ** 15n - 1n, 12, 10n ** 12n - 1n], [0n, 12, 1n], [0n, 0, 0n], [1n, 0, 0n]) },
    )
    .chain(([int, places, frac]) =>
      fc.tuple(
        fc.constant(places === 0 ? `${int}` : `${int}.${String(frac % 10n ** BigInt(places)).padStart(places, '0')}`),
        signed ? fc.boolean() : fc.constant(false),
      ),
    )
    .map(([v, negative]) => (negative && v !== '0' ? `-${v}` : v));

/** A value as a client may send it: a string (sometimes in another notation) or, when a double carries it exactly, a JSON number. */
const sent = (signed: boolean) =>
  decimalText(signed).chain((v) => {
    const forms: fc.Arbitrary<string | number>[] = [fc.constant(v), fc.constant(` ${v} `)];
    if (new Decimal(String(Number(v))).eq(v)) forms.push(fc.constant(Number(v)));
    if (v === '0.000000000001') forms.push(fc.constant('1e-12'), fc.constant(1e-12));
    return fc.oneof(...forms).map((form) => ({ exact: new Decimal(v), form }));
  });

type Kind = 'api_calls' | 'storage_gb' | 'queue_depth' | 'user_activity';
interface Gen {
  kind: Kind;
  source: string;
  id: string;
  /** The instant (ms) and extra nanosecond digits, or a leap second on the instant's UTC day. */
  ms: number;
  nanos: string;
  offsetMinutes: number;
  leap: boolean;
  value: { exact: Decimal; form: string | number } | { unique: string | number };
}

const windowMs = 30 * 86_400_000;
const event = fc
  .record({
    kind: fc.constantFrom<Kind>('api_calls', 'storage_gb', 'queue_depth', 'user_activity'),
    source: text(256),
    id: text(256),
    ms: fc.integer({ min: 60_000, max: windowMs }).map((back) => Date.now() - back),
    nanos: fc.stringMatching(/^[0-9]{0,6}$/),
    offsetMinutes: fc.oneof(fc.constant(0), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 })),
    leap: fc.integer({ min: 0, max: 15 }).map((n) => n === 0),
  })
  .chain((e) =>
    (e.kind === 'user_activity'
      ? fc
          .oneof(
            text(256),
            fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 64 }).map((s) => `sha256:${s}`),
            fc.integer().map((n) => n as string | number),
          )
          .map((unique) => ({ unique }))
      : sent(e.kind === 'queue_depth')
    ).map((value) => ({ ...e, value }) as Gen),
  );

// --- the client's view: wire form and expected counters ------------------------------------------

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
function wireTime(e: Gen): { text: string; normalized: string; period: string } {
  if (e.leap) {
    // The leap second ending the day before the instant: always in the past, always in the window.
    const day = new Date(e.ms - 86_400_000).toISOString().slice(0, 10);
    return { text: `${day}T23:59:60Z`, normalized: `${day}T23:59:59.999999999Z`, period: day.slice(0, 7) };
  }
  const utc = new Date(e.ms).toISOString();
  const local = new Date(e.ms + e.offsetMinutes * 60_000).toISOString().slice(0, 23);
  const offset =
    e.offsetMinutes === 0 ? 'Z' : `${e.offsetMinutes < 0 ? '-' : '+'}${pad(Math.trunc(Math.abs(e.offsetMinutes) / 60))}:${pad(Math.abs(e.offsetMinutes) % 60)}`;
  return { text: `${local}${e.nanos}${offset}`, normalized: `${utc.slice(0, 23)}${e.nanos.padEnd(6, '0')}Z`, period: utc.slice(0, 7) };
}

function wireEvent(e: Gen, subject: string) {
  const data = 'unique' in e.value ? { userId: e.value.unique } : e.kind === 'queue_depth' ? { depth: e.value.form } : { value: e.value.form };
  return { specversion: '1.0', id: e.id, source: e.source, type: e.kind, subject, time: wireTime(e).text, data };
}

interface Expected {
  api_calls: Decimal;
  api_requests: number;
  storage_gb: Decimal;
  queue_depth?: { order: string[]; value: Decimal };
  active_users: Set<string>;
}
function expectedCounters(events: Gen[]): Map<string, Expected> {
  const byPeriod = new Map<string, Expected>();
  for (const e of events) {
    const { period, normalized } = wireTime(e);
    const x = byPeriod.get(period) ?? { api_calls: new Decimal(0), api_requests: 0, storage_gb: new Decimal(0), active_users: new Set<string>() };
    byPeriod.set(period, x);
    if ('unique' in e.value) x.active_users.add(String(e.value.unique));
    else if (e.kind === 'api_calls') {
      x.api_calls = x.api_calls.plus(e.value.exact);
      x.api_requests += 1;
    } else if (e.kind === 'storage_gb') x.storage_gb = Decimal.max(x.storage_gb, e.value.exact);
    else {
      // The latest by the tuple (time, source, id), each compared as a string (the product stores an encoding of it).
      const order = [normalized, e.source, e.id];
      const later = (a: string[], b: string[]) => (compareUtf8(a[0]!, b[0]!) || compareUtf8(a[1]!, b[1]!) || compareUtf8(a[2]!, b[2]!)) > 0;
      if (!x.queue_depth || later(order, x.queue_depth.order)) x.queue_depth = { order, value: e.value.exact };
    }
  }
  return byPeriod;
}
const canonical = (d: Decimal) => (d.isZero() ? '0' : d.toFixed());

// --- the property -------------------------------------------------------------------------------

const seen = new Set<string>();
let run = 0;

async function send(subject: string, events: Gen[], mode: 'batch' | 'binary') {
  const headers = { authorization: `Bearer ${ADMIN}` };
  if (mode === 'batch') {
    const res = await t.raw('POST', '/api/v1/events', {
      headers: { ...headers, 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify(events.map((e) => wireEvent(e, subject))),
    });
    return [res];
  }
  return Promise.all(
    events.map((e) => {
      const w = wireEvent(e, subject);
      const ce = Object.fromEntries(
        ['specversion', 'id', 'source', 'type', 'subject', 'time'].map((a) => [`ce-${a}`, encodeURIComponent(String(w[a as keyof typeof w]))]),
      );
      return t.raw('POST', '/api/v1/events', { headers: { ...headers, ...ce, 'content-type': 'application/json' }, body: JSON.stringify(w.data) });
    }),
  );
}

it(`counts every accepted event exactly and reads it back (fast-check, seed ${SEED}, ${RUNS} runs)`, async () => {
  const longKeySource = '\u0001'.repeat(83);
  await fc.assert(
    fc.asyncProperty(
      fc.array(event, { minLength: 1, maxLength: 40 }),
      fc.string({ unit: fc.constantFrom(...'abcXYZ019._:-'), maxLength: 120 }),
      fc.constantFrom<'batch' | 'binary'>('batch', 'batch', 'binary'),
      fc.boolean(),
      async (generated, suffix, mode, resend) => {
        run += 1;
        const subject = `acc${run}-${suffix}`.slice(0, 128);
        // (source, id) is the identity across the whole test: a repeat would be a duplicate by design.
        const events = generated.filter((e) => {
          const k = JSON.stringify([e.source, e.id]);
          return !seen.has(k) && (seen.add(k), true);
        });
        if (events.length === 0) return;
        const responses = await send(subject, events, mode);
        for (const res of responses) expect({ status: res.status, error: res.body?.error }).toEqual({ status: 202, error: undefined });
        if (resend) for (const res of await send(subject, events, mode)) expect(res.status).toBe(202);
        await t.drain();
        for (const [period, x] of expectedCounters(events)) {
          const u = await t.usage(subject, period);
          expect({ period, ...u.values }).toMatchObject({
            period,
            api_calls: canonical(x.api_calls),
            api_requests: String(x.api_requests),
            storage_gb: canonical(x.storage_gb),
            queue_depth: x.queue_depth ? canonical(x.queue_depth.value) : '0',
            active_users: String(x.active_users.size),
          });
        }
        const dropped = (await Promise.all([...expectedCounters(events).keys()].map((p) => t.usage(subject, p)))).reduce((n, u) => n + u.duplicatesDropped, 0);
        expect(dropped).toBe(resend ? events.length : 0);
        expect(await t.receiveAll(t.dlqUrl)).toEqual([]);
      },
    ),
    {
      seed: SEED,
      numRuns: RUNS,
      endOnFailure: true,
      examples: [
        // Claim keys of exactly 2,048 bytes (kept readable) and 2,049 (hashed), 256-unit ids of every width.
        [
          [
            {
              kind: 'api_calls',
              source: `${longKeySource}abcd`,
              id: '\u0001'.repeat(256),
              ms: Date.now() - 120_000,
              nanos: '',
              offsetMinutes: 0,
              leap: false,
              value: { exact: new Decimal('999999999999999.999999999999'), form: '999999999999999.999999999999' },
            },
            {
              kind: 'api_calls',
              source: `${longKeySource}abcde`,
              id: '\u0001'.repeat(256),
              ms: Date.now() - 130_000,
              nanos: '999999',
              offsetMinutes: 59,
              leap: false,
              value: { exact: new Decimal('0.000000000001'), form: 1e-12 },
            },
            {
              kind: 'storage_gb',
              source: '\u{1F600}'.repeat(128),
              id: '\uffff'.repeat(256),
              ms: Date.now() - 140_000,
              nanos: '1',
              offsetMinutes: -(23 * 60 + 59),
              leap: false,
              value: { exact: new Decimal(0), form: '0' },
            },
            {
              kind: 'queue_depth',
              source: 'é'.repeat(256),
              id: '\u0000'.repeat(256),
              ms: Date.now() - 2 * 86_400_000,
              nanos: '',
              offsetMinutes: 0,
              leap: true,
              value: { exact: new Decimal('-999999999999999.999999999999'), form: '-999999999999999.999999999999' },
            },
            {
              kind: 'user_activity',
              source: 's',
              id: '\ufffe',
              ms: Date.now() - 150_000,
              nanos: '',
              offsetMinutes: 0,
              leap: false,
              value: { unique: '\u0001'.repeat(256) },
            },
          ] as Gen[],
          'edge',
          'batch',
          true,
        ],
      ],
    },
  );
}, 600_000);
