import fc from 'fast-check';
import { putCustomer } from '../../lib/app/customers';
import { invoiceCustomer } from '../../lib/app/invoicing/job';
import { beginInvoiceRun, fanOutInvoiceRun } from '../../lib/app/invoicing/runs';
import type { InvoiceJob } from '../../lib/app/ports';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { Period } from '../../lib/domain/period';
import { compareUtf8 } from '../../lib/domain/aggregation';
import { Q } from '../../lib/domain/quantity';
import { MemoryClock, memoryBilling, type Chaos } from '../support/memory';
import { modelPrice, type ModelPlan } from './reference';

/**
 * Billing against a reference model: random histories of three months (events, late events, plan
 * and currency changes, customers created late or never) with invoice runs started late, twice and
 * out of order, jobs processed in random order, several at once, redelivered, and crashing before
 * or after any store or Stripe write. After every history, for each customer and period, what was
 * invoiced in total (its own invoice plus every correction, per currency) equals the model's price
 * of the period's final usage on that period's plan; every Stripe invoice's items add up to its
 * total and its record; no Stripe invoice exists twice and none is negative.
 *
 * `npm test` runs MODEL_RUNS (default 200) histories; `npm run test:model` runs 5,000.
 */
const RUNS = Number(process.env.MODEL_RUNS ?? 200);

const catalogJson = {
  meters: [
    { slug: 'api_calls', displayName: 'API Calls', unit: 'calls', eventType: 'api_calls', aggregation: 'SUM', valueProperty: '$.value' },
    { slug: 'storage_gb', displayName: 'Storage', unit: 'GB', eventType: 'storage_gb', aggregation: 'MAX', valueProperty: '$.value' },
    { slug: 'seats', displayName: 'Seats', unit: 'seats', eventType: 'seats', aggregation: 'LATEST', valueProperty: '$.value' },
  ],
  plans: [
    {
      id: 'default',
      name: 'Usage',
      currency: 'usd',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          included: '1000',
          tiers: [
            { upTo: '1000', unitPrice: '0' },
            { upTo: '5000', unitPrice: '0.013' },
            { upTo: null, unitPrice: '0.0047' },
          ],
        },
        {
          meter: 'storage_gb',
          model: 'graduated',
          included: '5',
          tiers: [
            { upTo: '5', unitPrice: '0' },
            { upTo: null, unitPrice: '0.255', flatFee: '1.00' },
          ],
        },
        {
          meter: 'seats',
          model: 'graduated',
          included: '2',
          tiers: [
            { upTo: '2', unitPrice: '0' },
            { upTo: null, unitPrice: '8.00' },
          ],
        },
      ],
    },
    {
      id: 'pro',
      name: 'Pro',
      currency: 'usd',
      baseFee: '49.00',
      charges: [
        {
          meter: 'api_calls',
          model: 'volume',
          included: '1000',
          tiers: [
            { upTo: '1000', unitPrice: '0' },
            { upTo: '10000', unitPrice: '0.0123', flatFee: '2.50' },
            { upTo: null, unitPrice: '0.0051' },
          ],
        },
        { meter: 'storage_gb', model: 'package', included: '10', packageSize: '50', packagePrice: '10.00' },
        { meter: 'seats', model: 'flat', amount: '20.00' },
      ],
    },
    {
      id: 'jp',
      name: 'Japan',
      currency: 'jpy',
      baseFee: '5000',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          included: '1000',
          tiers: [
            { upTo: '1000', unitPrice: '0' },
            { upTo: null, unitPrice: '0.7' },
          ],
        },
        {
          meter: 'seats',
          model: 'graduated',
          included: '3',
          tiers: [
            { upTo: '3', unitPrice: '0' },
            { upTo: null, unitPrice: '1200.5' },
          ],
        },
      ],
    },
  ],
};
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const modelPlans = Object.fromEntries(catalogJson.plans.map((p) => [p.id, p as ModelPlan]));
const AGGREGATION: Record<string, string> = { api_calls: 'SUM', storage_gb: 'MAX', seats: 'LATEST' };

const MONTHS = [Period.parse('2026-06'), Period.parse('2026-07'), Period.parse('2026-08')];
const ALL = [...MONTHS, Period.parse('2026-09'), Period.parse('2026-10')];
const DAY = 86_400_000;
const HOUR = 3_600_000;
const WINDOW = 35 * DAY;

// ---- histories ------------------------------------------------------------------------------

const planArb = fc.constantFrom('default', 'pro', 'jp');
const customerArb = fc.record({
  created: fc.option(fc.record({ month: fc.integer({ min: 0, max: 2 }), day: fc.integer({ min: 0, max: 27 }), plan: planArb, stripe: fc.boolean() }), {
    nil: undefined,
  }),
  changes: fc.array(fc.record({ month: fc.integer({ min: 0, max: 3 }), day: fc.integer({ min: 0, max: 27 }), plan: planArb }), { maxLength: 3 }),
});
const valueArb = (meter: string) =>
  meter === 'seats'
    ? fc.integer({ min: -3, max: 40 }).map(String)
    : fc.oneof(
        fc.integer({ min: 0, max: 12_000 }).map(String),
        fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 999 })).map(([a, b]) => `${a}.${b}`),
      );
/** Late events cluster at the end of the window, where only the invoice two periods on can correct them. */
const eventArb = fc.constantFrom('api_calls', 'storage_gb', 'seats', 'seats').chain((meter) =>
  fc.record({
    customer: fc.integer({ min: 0, max: 2 }),
    month: fc.integer({ min: 0, max: 2 }),
    day: fc.oneof(fc.integer({ min: 0, max: 27 }), fc.integer({ min: 24, max: 27 })),
    minute: fc.integer({ min: 0, max: 1439 }),
    meter: fc.constant(meter),
    value: valueArb(meter),
    delayDays: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 35 }), fc.integer({ min: 28, max: 35 })),
  }),
);
const runArb = fc.record({ delayDays: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 45 })), twice: fc.boolean() });
const historyArb = fc.record({
  customers: fc.array(customerArb, { minLength: 3, maxLength: 3 }),
  events: fc.array(eventArb, { maxLength: 40 }),
  runs: fc.array(runArb, { minLength: ALL.length, maxLength: ALL.length }),
  seed: fc.integer(),
  crashRate: fc.constantFrom(0, 0.02, 0.06),
  parallel: fc.integer({ min: 1, max: 3 }),
  /** Customers per fan-out step: small, so that every run's fan-out is a chain of several steps. */
  pageSize: fc.integer({ min: 1, max: 3 }),
});
type History = typeof historyArb extends fc.Arbitrary<infer H> ? H : never;

/** A small seeded PRNG, so chaos and job order replay with the history. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Action =
  | { at: number; kind: 'create'; customer: number; plan: string; stripe: boolean }
  | { at: number; kind: 'plan'; customer: number; plan: string }
  | { at: number; kind: 'event'; customer: number; period: string; meter: string; value: string; time: string; id: string }
  | { at: number; kind: 'run'; period: Period };

function timeline(h: History): Action[] {
  const actions: Action[] = [];
  h.customers.forEach((c, i) => {
    if (!c.created) return;
    const createdAt = MONTHS[c.created.month]!.start.getTime() + c.created.day * DAY + HOUR;
    actions.push({ at: createdAt, kind: 'create', customer: i, plan: c.created.plan, stripe: c.created.stripe });
    for (const ch of c.changes) {
      const at = ALL[ch.month]!.start.getTime() + ch.day * DAY + 2 * HOUR;
      if (at > createdAt) actions.push({ at, kind: 'plan', customer: i, plan: ch.plan });
    }
  });
  h.events.forEach((e, n) => {
    const time = MONTHS[e.month]!.start.getTime() + e.day * DAY + e.minute * 60_000;
    actions.push({
      at: time + Math.min(e.delayDays * DAY, WINDOW),
      kind: 'event',
      customer: e.customer,
      period: MONTHS[e.month]!.key,
      meter: e.meter,
      value: e.value,
      time: new Date(time).toISOString(),
      id: `e${String(n).padStart(3, '0')}`,
    });
  });
  ALL.forEach((period, i) => {
    const at = period.end.getTime() + HOUR + h.runs[i]!.delayDays * DAY;
    actions.push({ at, kind: 'run', period });
    if (h.runs[i]!.twice) actions.push({ at: at + DAY, kind: 'run', period });
  });
  const order = { create: 0, plan: 1, event: 2, run: 3 };
  return actions.sort((a, b) => a.at - b.at || order[a.kind] - order[b.kind]);
}

// ---- the model --------------------------------------------------------------------------------

interface ModelEvent {
  customer: number;
  period: string;
  meter: string;
  value: string;
  time: string;
  id: string;
}

/** The period's final usage per meter, by the meters' rules, computed from the events alone. */
function modelUsage(events: ModelEvent[], customer: number, period: string): Record<string, string> {
  const usage: Record<string, string> = {};
  const latest: Record<string, string> = {};
  for (const e of events.filter((x) => x.customer === customer && x.period === period)) {
    const current = usage[e.meter];
    if (AGGREGATION[e.meter] === 'SUM') usage[e.meter] = new Q(current ?? 0).plus(e.value).toFixed();
    if (AGGREGATION[e.meter] === 'MAX') usage[e.meter] = current === undefined || new Q(e.value).gt(current) ? e.value : current;
    if (AGGREGATION[e.meter] === 'LATEST') {
      // By time, then id (one source here), each compared as a string.
      const order = `${e.time} ${e.id}`;
      if (latest[e.meter] === undefined || compareUtf8(order, latest[e.meter]!) > 0) {
        latest[e.meter] = order;
        usage[e.meter] = e.value;
      }
    }
  }
  return usage;
}

/** The plan of a period: the last plan asked for before the period began (the creation plan in its first period). */
function modelTerms(h: History, requests: Map<number, { at: number; plan: string }[]>, customer: number, period: Period): { plan: ModelPlan; fees: boolean } {
  const asked = requests.get(customer);
  if (!asked) return { plan: modelPlans.default!, fees: false };
  const created = Period.containing(new Date(asked[0]!.at));
  if (period.key < created.key) return { plan: modelPlans.default!, fees: false };
  const before = asked.filter((r) => r.at < period.start.getTime());
  return { plan: modelPlans[(before.length ? before[before.length - 1]! : asked[0]!).plan]!, fees: true };
}

// ---- running a history through the product ----------------------------------------------------

async function play(h: History) {
  const random = prng(h.seed);
  const chaos: Chaos & { off: boolean } = {
    off: false,
    yields: () => Math.floor(random() * 3),
    crash: () => {
      if (chaos.off || random() >= h.crashRate) return undefined;
      seen.crashes++;
      return random() < 0.5 ? 'before' : 'after';
    },
  };
  const clock = new MemoryClock(MONTHS[0]!.start);
  const deps = {
    ...memoryBilling(catalog, clock, { chaos, correctionWindowMs: WINDOW }),
    fanOutPageSize: h.pageSize,
    sleep: () => new Promise<void>((r) => setImmediate(r)),
  };
  const { ledger, invoices, runs, invoiceJobs: queue, epoch, stripe } = deps;
  const events: ModelEvent[] = [];
  const requests = new Map<number, { at: number; plan: string }[]>();
  const admin = { keyId: 'model', scopes: ['admin' as const] };
  const putAs = (i: number, plan: string, stripeId: boolean) =>
    putCustomer(deps, admin, `c${i}`, { name: `c${i}`, planId: plan, ...(stripeId ? { stripeCustomerId: `cus_${i}` } : {}) });

  /** Takes up to `n` jobs in random order and runs them `parallel` at a time; a crashed job goes back to the queue. */
  async function work(n: number) {
    for (let done = 0; done < n && queue.jobs.length > 0;) {
      const batch: InvoiceJob[] = [];
      while (batch.length < h.parallel && queue.jobs.length > 0) batch.push(queue.jobs.splice(Math.floor(random() * queue.jobs.length), 1)[0]!);
      done += batch.length;
      await Promise.all(
        batch.map(async (job) => {
          if (random() < 0.05) queue.jobs.push(job); // SQS delivers it twice
          try {
            if ('action' in job) {
              const step = await fanOutInvoiceRun(deps, job);
              if (step.stale) seen.staleFanOutSteps++;
              else if (step.page >= 2) seen.fanOutStepsPastSecondPage++;
            } else await invoiceCustomer(deps, job);
          } catch {
            queue.jobs.push(job); // redelivered after the visibility timeout
          }
        }),
      );
    }
  }

  for (const a of timeline(h)) {
    clock.at = new Date(a.at);
    if (random() < 0.2) stripe.forgetKeys(); // a day or more passed since the last retries
    if (a.kind === 'create') {
      await putAs(a.customer, a.plan, a.stripe);
      requests.set(a.customer, [{ at: a.at, plan: a.plan }]);
    } else if (a.kind === 'plan') {
      await putAs(a.customer, a.plan, h.customers[a.customer]!.created!.stripe);
      requests.get(a.customer)!.push({ at: a.at, plan: a.plan });
    } else if (a.kind === 'event') {
      events.push(a);
      ledger.set(`c${a.customer}`, a.period, modelUsage(events, a.customer, a.period));
      await epoch.note(a.period);
    } else {
      // Started like POST /invoice-runs does; a failed start is tried again by its caller.
      for (let started = false; !started;)
        started = await beginInvoiceRun(deps, a.period).then(
          () => true,
          () => false,
        );
    }
    await work(Math.floor(random() * 4));
  }
  clock.at = new Date(ALL[ALL.length - 1]!.end.getTime() + 60 * DAY);
  for (let round = 0; queue.jobs.length > 0; round++) {
    if (round > 20) chaos.off = true; // every job eventually gets a calm delivery
    if (random() < 0.2) stripe.forgetKeys();
    if (round > 200) throw new Error(`jobs never finished: ${JSON.stringify(queue.jobs)}`);
    await work(queue.jobs.length);
  }
  return { invoices: invoices.all(), stripe, events, requests, runs };
}

/** What the histories exercised, so the test proves it reached every hard case. */
const seen = {
  histories: 0,
  corrections: 0,
  twoPeriodCorrections: 0,
  credits: 0,
  currencySplits: 0,
  outOfOrderRuns: 0,
  stripeInvoices: 0,
  crashes: 0,
  fanOutStepsPastSecondPage: 0,
  staleFanOutSteps: 0,
};

function check(h: History, out: Awaited<ReturnType<typeof play>>) {
  const { invoices, stripe, events, requests } = out;
  seen.histories++;
  for (const r of invoices) {
    for (const l of r.lines) {
      if (l.kind === 'correction') seen.corrections++;
      if (l.kind === 'correction' && Period.parse(l.period!).next().next().key === r.period) seen.twoPeriodCorrections++;
      if (l.kind === 'credit') seen.credits++;
    }
    if (r.kind === 'correction') seen.currencySplits++;
  }
  seen.stripeInvoices += stripe.invoices.size;
  if (
    h.runs.some((r, i) =>
      h.runs.slice(i + 1).some((later, j) => ALL[i + 1 + j]!.end.getTime() + later.delayDays * DAY < ALL[i]!.end.getTime() + r.delayDays * DAY),
    )
  )
    seen.outOfOrderRuns++;
  // 1. Per customer and period: all that was billed for it equals the model's price, per currency.
  for (let c = 0; c < 3; c++) {
    for (const period of ALL) {
      const { plan, fees } = modelTerms(h, requests, c, period);
      const expected = modelPrice(plan, modelUsage(events, c, period.key), fees);
      const billed = new Map<string, bigint>();
      for (const r of invoices.filter((x) => x.customerId === `c${c}`)) {
        for (const l of r.lines) {
          if (l.kind === 'credit' || (l.period ?? r.period) !== period.key) continue;
          billed.set(r.currency, (billed.get(r.currency) ?? 0n) + BigInt(l.amountMinor));
        }
      }
      for (const [currency, amount] of billed)
        if (currency !== plan.currency) expect({ c, period: period.key, currency, amount }).toEqual({ c, period: period.key, currency, amount: 0n });
      expect({ c, period: period.key, billed: billed.get(plan.currency) ?? 0n }).toEqual({ c, period: period.key, billed: expected });
    }
  }
  // 2. Records: terminal, lines add up, one own invoice per period, credits used at most once.
  for (const r of invoices) {
    expect(['finalized', 'no_charge', 'not_synced', 'credit_carried']).toContain(r.status);
    expect(r.lines.reduce((s, l) => s + BigInt(l.amountMinor), 0n)).toBe(BigInt(r.totalMinor));
    expect(r.lines.every((l) => l.amountMinor !== '0')).toBe(true);
    if (r.status === 'finalized') expect(BigInt(r.totalMinor) > 0n).toBe(true);
  }
  const creditUses = invoices.flatMap((r) => r.lines.filter((l) => l.kind === 'credit').map((l) => `${r.customerId}:${l.lineKey}`));
  expect(new Set(creditUses).size).toBe(creditUses.length);
  // A carried credit is on the customer's next invoice in its currency: only the newest can still be open.
  for (const credit of invoices.filter((r) => r.status === 'credit_carried' && r.creditAppliedTo === undefined)) {
    const later = invoices.filter((r) => r.customerId === credit.customerId && r.currency === credit.currency && r.createdAt > credit.createdAt);
    expect({ credit: credit.key, later: later.map((r) => r.key) }).toEqual({ credit: credit.key, later: [] });
  }
  for (const r of invoices.filter((x) => x.creditAppliedTo !== undefined)) {
    const by = invoices.find((x) => x.customerId === r.customerId && x.key === r.creditAppliedTo)!;
    expect(by.lines.filter((l) => l.lineKey === `credit:${r.key}`).map((l) => l.amount)).toEqual([r.total]);
  }
  // 3. Runs: every run fanned out, and every member's job finished.
  for (const [period, run] of out.runs.runs) {
    expect({ period, fannedOut: run.fannedOut }).toEqual({ period, fannedOut: true });
    const pending = [...(out.runs.members.get(period) ?? [])].filter(([, m]) => m.status === 'pending').map(([id]) => id);
    expect({ period, pending }).toEqual({ period, pending: [] });
  }
  // 4. Stripe: one invoice per record, its items add up to its total and to the record's, never negative.
  const finalized = invoices.filter((r) => r.status === 'finalized');
  const keys = [...stripe.invoices.values()].map((i) => i.metadata.invoice_key);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.sort()).toEqual(finalized.map((r) => `inv:${r.customerId}:${r.key}:invoice`).sort());
  for (const r of finalized) {
    const inv = stripe.invoices.get(r.stripeInvoiceId!)!;
    const items = stripe.items.filter((i) => i.invoice === inv.id);
    expect(inv.status).toBe('open');
    expect(items.reduce((s, i) => s + i.amount, 0)).toBe(inv.total);
    expect(String(inv.total)).toBe(r.totalMinor);
    expect(items.map((i) => i.metadata.line_key).sort()).toEqual(r.lines.map((l) => l.lineKey).sort());
  }
}

describe('billing against the reference model', () => {
  it(`bills every customer-period exactly its model price, in any run order, under crashes and parallel jobs (${RUNS} histories)`, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(historyArb, async (h) => check(h, await play(h))),
      // npm test replays a fixed seed (reproducible in CI; its histories reach every hard case);
      // npm run test:model draws new histories each time unless MODEL_SEED says otherwise.
      { numRuns: RUNS, seed: process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : RUNS <= 200 ? 20261126 : undefined, verbose: 1 },
    );
    console.log(`${RUNS} histories in ${((Date.now() - started) / 1000).toFixed(1)} s; exercised ${JSON.stringify(seen)}`);
    // A generator that never reaches the hard cases proves nothing about them.
    for (const [what, count] of Object.entries(seen)) expect({ what, reached: count > 0 }).toEqual({ what, reached: true });
  }, 1_800_000);
});
