import fc from 'fast-check';
import { listCredits, settleCredit } from '../../lib/app/credits';
import { patchCustomer, putCustomer } from '../../lib/app/customers';
import { invoiceCustomer, syncCustomerInvoices } from '../../lib/app/invoicing/job';
import { beginInvoiceRun, fanOutInvoiceRun } from '../../lib/app/invoicing/runs';
import type { InvoiceJob } from '../../lib/app/messages';
import { readUsage } from '../../lib/app/usage';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { publishCatalog, publishedIssues } from '../../lib/domain/published-catalog';
import { DomainError } from '../../lib/domain/errors';
import { Period } from '../../lib/domain/period';
import { compareUtf8 } from '../../lib/domain/aggregation';
import { Q } from '../../lib/domain/quantity';
import { InjectedCrash, MemoryClock, memoryBilling, type Chaos } from '../support/memory';
import { modelPrice, type ModelPlan } from './reference';

/**
 * Billing against a reference model: random histories of three months (events, late events, plan
 * and currency changes, customers created late or never, budgets, customers linked to Stripe late,
 * credits settled by an operator) under catalog deploys that publish new plan versions (prices,
 * currency) or take a plan off sale, with a late-event window and a grace drawn per history, and
 * invoice runs started late, twice and out of order, jobs processed in random order, several at
 * once, redelivered, crashing before or after any store or Stripe write, and, right after a deploy,
 * run by workers with the old catalog or the new one. After every history, for each customer and
 * period, what was invoiced in total (its own invoice plus every correction, per currency) equals
 * the model's price of the period's final usage on that period's plan, in the version in force for
 * it; every Stripe invoice's items add up to its total and its record; no Stripe invoice exists
 * twice and none is negative; nothing owed is left out of Stripe once the customer is linked.
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
const modelPlans = Object.fromEntries(catalogJson.plans.map((p) => [p.id, p as ModelPlan]));
const AGGREGATION: Record<string, string> = { api_calls: 'SUM', storage_gb: 'MAX', seats: 'LATEST' };

const MONTHS = [Period.parse('2026-06'), Period.parse('2026-07'), Period.parse('2026-08')];
/** Runs go on long enough after the last month of events for the longest window's corrections (90 days: 4 periods). */
const ALL = [...MONTHS, ...['2026-09', '2026-10', '2026-11', '2026-12'].map(Period.parse)];
const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Every money amount of a plan (prices, fees) multiplied by `factor` (an exact decimal string), in `currency`. */
function repriced(plan: any, factor: string, currency: string): any {
  const times = (v: string | undefined) => (v === undefined ? undefined : new Q(v).times(factor).toFixed());
  return {
    ...plan,
    currency,
    ...(plan.baseFee !== undefined ? { baseFee: times(plan.baseFee) } : {}),
    charges: plan.charges.map((c: any) => ({
      ...c,
      ...(c.tiers
        ? { tiers: c.tiers.map((t: any) => ({ ...t, unitPrice: times(t.unitPrice), ...(t.flatFee !== undefined ? { flatFee: times(t.flatFee) } : {}) })) }
        : {}),
      ...(c.packagePrice !== undefined ? { packagePrice: times(c.packagePrice) } : {}),
      ...(c.amount !== undefined ? { amount: times(c.amount) } : {}),
    })),
  };
}

// ---- histories ------------------------------------------------------------------------------

const planArb = fc.constantFrom('default', 'pro', 'jp');
/** What a plan change does with the budget: keeps it (refused across a currency), removes it, or sets one in the new plan's currency. */
const budgetArb = fc.constantFrom('keep', 'keep', 'remove', 'new');
const customerArb = fc.record({
  created: fc.option(
    fc.record({ month: fc.integer({ min: 0, max: 2 }), day: fc.integer({ min: 0, max: 27 }), plan: planArb, stripe: fc.boolean(), budget: fc.boolean() }),
    { nil: undefined },
  ),
  changes: fc.array(fc.record({ month: fc.integer({ min: 0, max: 3 }), day: fc.integer({ min: 0, max: 27 }), plan: planArb, budget: budgetArb }), {
    maxLength: 3,
  }),
  /** A customer created without a Stripe customer gets one then (linked late). */
  link: fc.option(fc.record({ month: fc.integer({ min: 0, max: 5 }), day: fc.integer({ min: 0, max: 27 }) }), { nil: undefined }),
  /** An operator settles an open credit of the customer then (a write-off). */
  settle: fc.option(fc.record({ month: fc.integer({ min: 1, max: 6 }), day: fc.integer({ min: 0, max: 27 }) }), { nil: undefined }),
});
const valueArb = (meter: string) =>
  meter === 'seats'
    ? fc.integer({ min: -3, max: 40 }).map(String)
    : fc.oneof(
        fc.integer({ min: 0, max: 12_000 }).map(String),
        fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 999 })).map(([a, b]) => `${a}.${b}`),
      );
/** Late events cluster at the end of the window (a fraction of it), where only the last invoice of the lookback can correct them. */
const eventArb = fc.constantFrom('api_calls', 'storage_gb', 'seats', 'seats').chain((meter) =>
  fc.record({
    customer: fc.integer({ min: 0, max: 2 }),
    month: fc.integer({ min: 0, max: 2 }),
    day: fc.oneof(fc.integer({ min: 0, max: 27 }), fc.integer({ min: 24, max: 27 })),
    minute: fc.integer({ min: 0, max: 1439 }),
    meter: fc.constant(meter),
    value: valueArb(meter),
    /** Per mille of the window. */
    delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 800, max: 1000 })),
  }),
);
const runArb = fc.record({ delayDays: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 45 })), twice: fc.boolean() });
/**
 * A catalog deploy: the plan's next version (prices doubled, or in the other currency) from the next
 * period, or (retro) from the previous one, repricing what was not invoiced yet; or the plan off sale.
 */
const deployArb = fc.record({
  month: fc.integer({ min: 0, max: 3 }),
  day: fc.integer({ min: 0, max: 27 }),
  plan: planArb,
  kind: fc.constantFrom('price', 'price', 'currency', 'remove', 'retro'),
});
const historyArb = fc.record({
  customers: fc.array(customerArb, { minLength: 3, maxLength: 3 }),
  events: fc.array(eventArb, { maxLength: 40 }),
  runs: fc.array(runArb, { minLength: ALL.length, maxLength: ALL.length }),
  deploys: fc.array(deployArb, { maxLength: 3 }),
  windowDays: fc.constantFrom(35, 35, 60, 90),
  graceMinutes: fc.constantFrom(0, 60, 60, 3 * 24 * 60),
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
  | { at: number; kind: 'create'; customer: number; plan: string; stripe: boolean; budget: boolean }
  | { at: number; kind: 'plan'; customer: number; plan: string; budget: string }
  | { at: number; kind: 'link'; customer: number }
  | { at: number; kind: 'settle'; customer: number }
  | { at: number; kind: 'deploy'; plan: string; change: string }
  | { at: number; kind: 'event'; customer: number; period: string; meter: string; value: string; time: string; id: string }
  | { at: number; kind: 'run'; period: Period };

function timeline(h: History): Action[] {
  const actions: Action[] = [];
  const window = h.windowDays * DAY;
  const grace = h.graceMinutes * 60_000;
  h.customers.forEach((c, i) => {
    if (!c.created) return;
    const createdAt = MONTHS[c.created.month]!.start.getTime() + c.created.day * DAY + HOUR;
    actions.push({ at: createdAt, kind: 'create', customer: i, plan: c.created.plan, stripe: c.created.stripe, budget: c.created.budget });
    for (const ch of c.changes) {
      const at = ALL[ch.month]!.start.getTime() + ch.day * DAY + 2 * HOUR;
      if (at > createdAt) actions.push({ at, kind: 'plan', customer: i, plan: ch.plan, budget: ch.budget });
    }
    if (!c.created.stripe && c.link)
      actions.push({ at: Math.max(createdAt + HOUR, ALL[c.link.month]!.start.getTime() + c.link.day * DAY + 3 * HOUR), kind: 'link', customer: i });
    if (c.settle) actions.push({ at: ALL[c.settle.month]!.start.getTime() + c.settle.day * DAY + 4 * HOUR, kind: 'settle', customer: i });
  });
  // A deploy never shares its instant with another action (+7 ms, and 13 ms apart from each other):
  // the instant a period is invoiced then tells which versions were out before it.
  h.deploys.forEach((d, n) =>
    actions.push({ at: ALL[d.month]!.start.getTime() + d.day * DAY + 5 * HOUR + 7 + 13 * n, kind: 'deploy', plan: d.plan, change: d.kind }),
  );
  h.events.forEach((e, n) => {
    const time = MONTHS[e.month]!.start.getTime() + e.day * DAY + e.minute * 60_000;
    actions.push({
      at: time + Math.min(Math.floor((e.delay * window) / 1000), window - 60_000),
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
    const at = period.end.getTime() + grace + HOUR + h.runs[i]!.delayDays * DAY;
    actions.push({ at, kind: 'run', period });
    if (h.runs[i]!.twice) actions.push({ at: at + DAY, kind: 'run', period });
  });
  const order = { deploy: 0, create: 1, plan: 2, link: 3, settle: 4, event: 5, run: 6 };
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

/**
 * The versions of each plan the deploys published, with when: every version stays (a plan off sale
 * is still published). A version published with an effectiveFrom in the past (retroactive) prices
 * the periods it covers that were not invoiced yet when it came; an invoiced period keeps its own.
 */
type ModelVersions = Map<string, { effectiveFrom: string | undefined; publishedAt: number; plan: ModelPlan }[]>;

/**
 * The plan of a period: the last plan accepted for it (asked for before the period began, or in
 * the month of creation, which a request corrects from creation), in the version in force for the
 * period (the latest whose effectiveFrom is not after it). Before creation, `default` without fees.
 */
function modelTerms(
  versions: ModelVersions,
  requests: Map<number, { at: number; plan: string }[]>,
  customer: number,
  period: Period,
  invoicedAt = Infinity,
): { plan: ModelPlan; fees: boolean } {
  const version = (id: string) => {
    const list = versions.get(id)!;
    let inForce = list[0]!;
    for (const v of list) if ((v.effectiveFrom === undefined || v.effectiveFrom <= period.key) && v.publishedAt <= invoicedAt) inForce = v;
    return inForce.plan;
  };
  const asked = requests.get(customer);
  if (!asked) return { plan: version('default'), fees: false };
  const created = Period.containing(new Date(asked[0]!.at));
  if (period.key < created.key) return { plan: version('default'), fees: false };
  const effective = (r: { at: number }) => (Period.containing(new Date(r.at)).key === created.key ? created.key : Period.containing(new Date(r.at)).next().key);
  const inForce = asked.filter((r) => effective(r) <= period.key);
  return { plan: version(inForce[inForce.length - 1]!.plan), fees: true };
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
  // The catalog the functions bundle, and everything published: every deploy publishes first.
  const current = structuredClone(catalogJson) as { meters: unknown[]; plans: any[] };
  let published = publishCatalog(parseCatalog(current), { meters: [], plans: [] });
  const deployed = () => new CatalogIndex(parseCatalog(current), published);
  const versions: ModelVersions = new Map(catalogJson.plans.map((p) => [p.id, [{ effectiveFrom: undefined, publishedAt: 0, plan: modelPlans[p.id]! }]]));
  const deps = {
    ...memoryBilling(deployed(), clock, { chaos, correctionWindowMs: h.windowDays * DAY, graceMs: h.graceMinutes * 60_000 }),
    fanOutPageSize: h.pageSize,
    sleep: () => new Promise<void>((r) => setImmediate(r)),
  };
  const { ledger, invoices, runs, invoiceJobs: queue, epoch, stripe } = deps;
  const events: ModelEvent[] = [];
  const requests = new Map<number, { at: number; plan: string }[]>();
  const linked = new Set<number>();
  const admin = { keyId: 'model', scopes: ['admin' as const] };
  /** For an hour after a deploy (a deploy takes minutes), workers that still run the earlier catalog take some of the jobs. */
  let earlier: CatalogIndex | undefined;
  let overlapUntil = 0;

  /** Takes up to `n` jobs in random order and runs them `parallel` at a time; a crashed job goes back to the queue. */
  async function work(n: number) {
    for (let done = 0; done < n && queue.jobs.length > 0;) {
      const batch: InvoiceJob[] = [];
      while (batch.length < h.parallel && queue.jobs.length > 0) batch.push(queue.jobs.splice(Math.floor(random() * queue.jobs.length), 1)[0]!);
      done += batch.length;
      await Promise.all(
        batch.map(async (job) => {
          if (random() < 0.05) queue.jobs.push(job); // SQS delivers it twice
          const old = earlier !== undefined && clock.now().getTime() < overlapUntil && random() < 0.5;
          if (old) seen.jobsOnTheEarlierCatalog++;
          const worker = old ? { ...deps, catalog: earlier! } : deps;
          try {
            if ('action' in job) {
              const step = await fanOutInvoiceRun(worker, job);
              if (step.stale) seen.staleFanOutSteps++;
              else if (step.page >= 2) seen.fanOutStepsPastSecondPage++;
            } else await invoiceCustomer(worker, job);
          } catch {
            queue.jobs.push(job); // redelivered after the visibility timeout
          }
        }),
      );
    }
  }

  /** An operator (or the API's caller) tries again what a crash of the store interrupted. */
  async function operator<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof InjectedCrash) || attempt > 30) throw err;
      }
    }
  }

  /** A plan request as the customers API takes it; refused (budget kept across a currency, a plan off sale) it changes nothing. */
  async function ask(a: Extract<Action, { kind: 'create' | 'plan' }>): Promise<void> {
    const next = Period.containing(clock.now()).next().key;
    const budget =
      a.kind === 'create'
        ? a.budget
          ? { budget: { amount: '100' } }
          : {}
        : a.budget === 'remove'
          ? { budget: null }
          : a.budget === 'new'
            ? { budget: { amount: '100', currency: deps.catalog.planVersion(a.plan, next)?.currency ?? 'usd' } }
            : {};
    const stripeId = a.kind === 'create' && a.stripe ? { stripeCustomerId: `cus_${a.customer}` } : {};
    try {
      await operator(() => putCustomer(deps, admin, `c${a.customer}`, { name: `c${a.customer}`, planId: a.plan, ...stripeId, ...budget }));
    } catch (err) {
      const code = err instanceof DomainError ? err.code : String(err);
      if (code === 'budget_currency_mismatch' && a.kind === 'plan' && a.budget === 'keep') seen.budgetKeptAcrossCurrencyRefused++;
      else if (code === 'unknown_plan' && !deps.catalog.onSale(a.plan)) seen.planOffSaleRefused++;
      else if (!(code === 'invalid_budget' && a.kind === 'plan' && a.budget === 'new')) throw err;
      return;
    }
    // A PUT creates the customer when it does not exist yet (its creation was refused).
    if (!requests.has(a.customer)) requests.set(a.customer, [{ at: a.at, plan: a.plan }]);
    else requests.get(a.customer)!.push({ at: a.at, plan: a.plan });
    if (a.kind === 'create' && a.stripe) linked.add(a.customer);
  }

  /** Publishes the plan's next version from the next period (prices doubled, or in the other currency), or takes it off sale. */
  function deploy(a: Extract<Action, { kind: 'deploy' }>): void {
    if (!current.plans.some((p) => p.id === a.plan)) return; // off sale already
    if (a.change === 'remove' && a.plan !== 'default') {
      current.plans = current.plans.filter((p) => p.id !== a.plan);
      seen.plansTakenOffSale++;
    } else {
      const list = versions.get(a.plan)!;
      const last = current.plans.filter((p) => p.id === a.plan).at(-1)!;
      const now = Period.containing(clock.now());
      const from = a.change === 'retro' ? now.previous().key : now.next().key;
      const effectiveFrom = list.at(-1)!.effectiveFrom !== undefined && list.at(-1)!.effectiveFrom! > from ? list.at(-1)!.effectiveFrom! : from;
      const other = a.change === 'currency' ? (last.currency === 'usd' ? 'jpy' : 'usd') : last.currency;
      const factor = a.change === 'currency' ? (other === 'jpy' ? '100' : '0.01') : '2';
      const next = { ...repriced(last, factor, other), version: (last.version ?? 1) + 1, effectiveFrom };
      current.plans.push(next);
      list.push({ effectiveFrom, publishedAt: clock.now().getTime(), plan: next as ModelPlan });
      if (a.change === 'currency') seen.versionsInAnotherCurrency++;
      if (a.change === 'retro') seen.retroactiveVersions++;
      seen.versionsPublished++;
    }
    published = publishCatalog(parseCatalog(current), published);
    expect(publishedIssues(parseCatalog(current), published)).toEqual([]);
    earlier = deps.catalog;
    deps.catalog = deployed();
    // A retroactive version prices by when a period is invoiced: no overlap, so that moment decides alone.
    overlapUntil = a.change === 'retro' ? 0 : clock.now().getTime() + HOUR;
  }

  for (const a of timeline(h)) {
    clock.at = new Date(a.at);
    if (random() < 0.2) stripe.forgetKeys(); // a day or more passed since the last retries
    if (a.kind === 'create' || a.kind === 'plan') await ask(a);
    else if (a.kind === 'deploy') deploy(a);
    else if (a.kind === 'link') {
      if (requests.has(a.customer)) {
        await operator(() => patchCustomer(deps, admin, `c${a.customer}`, { stripeCustomerId: `cus_${a.customer}` }));
        linked.add(a.customer);
        seen.customersLinkedLate++;
      }
    } else if (a.kind === 'settle') {
      const open = (await operator(() => listCredits(deps, admin, `c${a.customer}`))).credits.find((c) => c.status === 'open');
      const settle = () => settleCredit(deps, admin, `c${a.customer}`, open!.key, { as: 'write_off', reason: 'model' });
      // Applied by an invoice in the meantime (credit_not_open): nothing to settle.
      if (
        open &&
        (await operator(settle).then(
          () => true,
          (err: unknown) => (err instanceof DomainError && err.code === 'credit_not_open' ? false : Promise.reject(err)),
        ))
      )
        seen.creditsSettled++;
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
  // An operator sends what Stripe does not have yet (invoices sync) for every customer with a Stripe customer.
  chaos.off = true;
  for (const i of linked) await syncCustomerInvoices(deps, admin, `c${i}`);
  return { invoices: invoices.all(), stripe, events, requests, runs, versions, linked, deps };
}

/** What the histories exercised, so the test proves it reached every hard case. */
const seen = {
  versionsPublished: 0,
  versionsInAnotherCurrency: 0,
  retroactiveVersions: 0,
  plansTakenOffSale: 0,
  planOffSaleRefused: 0,
  jobsOnTheEarlierCatalog: 0,
  budgetKeptAcrossCurrencyRefused: 0,
  customersLinkedLate: 0,
  creditsSettled: 0,
  correctionsBeyondTwoPeriods: 0,
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

async function check(h: History, out: Awaited<ReturnType<typeof play>>) {
  const { invoices, stripe, events, requests, versions } = out;
  seen.histories++;
  for (const r of invoices) {
    for (const l of r.lines) {
      if (l.kind === 'correction') seen.corrections++;
      if (l.kind === 'correction' && Period.parse(l.period!).next().next().key === r.period) seen.twoPeriodCorrections++;
      if (l.kind === 'correction' && Period.parse(l.period!).next().next().key < r.period) seen.correctionsBeyondTwoPeriods++;
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
      const own = invoices.find((r) => r.customerId === `c${c}` && r.key === period.key);
      const { plan, fees } = modelTerms(versions, requests, c, period, own ? Date.parse(own.createdAt) : Infinity);
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
  // Nothing owed is left out of Stripe once the customer has a Stripe customer.
  for (const r of invoices) {
    const withStripe = out.linked.has(Number(r.customerId.slice(1)));
    const allowed = withStripe ? ['finalized', 'no_charge', 'credit_carried'] : ['no_charge', 'not_synced', 'credit_carried'];
    expect({ key: `${r.customerId}/${r.key}`, withStripe, status: r.status, allowed: allowed.includes(r.status) }).toMatchObject({ allowed: true });
    expect(r.lines.reduce((s, l) => s + BigInt(l.amountMinor), 0n)).toBe(BigInt(r.totalMinor));
    expect(r.lines.every((l) => l.amountMinor !== '0')).toBe(true);
    if (r.status === 'finalized') expect(BigInt(r.totalMinor) > 0n).toBe(true);
  }
  const creditUses = invoices.flatMap((r) => r.lines.filter((l) => l.kind === 'credit').map((l) => `${r.customerId}:${l.lineKey}`));
  expect(new Set(creditUses).size).toBe(creditUses.length);
  // A settled credit is never applied; the open ones are what the customer is owed, per currency.
  for (const r of invoices.filter((x) => x.creditSettlement !== undefined)) expect(r.creditAppliedTo).toBeUndefined();
  for (let c = 0; c < 3; c++) {
    const open = invoices.filter((r) => r.customerId === `c${c}` && r.status === 'credit_carried' && !r.creditAppliedTo && !r.creditSettlement);
    const owed = new Map<string, bigint>();
    for (const r of open) owed.set(r.currency, (owed.get(r.currency) ?? 0n) - BigInt(r.totalMinor));
    const listed = (await listCredits(out.deps, { keyId: 'model', scopes: ['admin'] }, `c${c}`)).owed;
    expect(listed.map((o) => [o.currency, o.amount.replace('.', '')])).toEqual(
      [...owed].sort().map(([cur, minor]) => [cur, cur === 'jpy' ? String(minor) : String(minor).padStart(3, '0')]),
    );
  }
  // A carried credit is on the customer's next invoice in its currency: only the newest can still be open.
  for (const credit of invoices.filter((r) => r.status === 'credit_carried' && r.creditAppliedTo === undefined && r.creditSettlement === undefined)) {
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
  // Stripe never gets a correction of a bill it does not have: the corrected period's own invoice is
  // in Stripe before the invoice that corrects it (or was never sent: nothing, or a credit, to bill).
  const seq = (id: string) => Number(id.slice('in_'.length));
  for (const r of finalized) {
    for (const l of r.lines.filter((x) => x.kind === 'correction')) {
      const corrected = invoices.find((x) => x.customerId === r.customerId && x.key === l.period)!;
      if (corrected.status === 'no_charge' || corrected.status === 'credit_carried') continue;
      expect({
        of: r.key,
        corrects: l.period,
        sentBefore: corrected.status === 'finalized' && seq(corrected.stripeInvoiceId!) < seq(r.stripeInvoiceId!),
      }).toEqual({
        of: r.key,
        corrects: l.period,
        sentBefore: true,
      });
    }
  }
  // 5. Money with its currency: a budget applies to the periods billed in its currency, and only those.
  for (let c = 0; c < 3; c++) {
    const customer = await out.deps.customers.get(`c${c}`);
    if (!customer?.budget) continue;
    for (const period of ALL) {
      const u = await readUsage(out.deps, { keyId: 'model', scopes: ['admin'] }, `c${c}`, period.key);
      expect({ c, period: period.key, currency: u.budget!.currency }).toEqual({ c, period: period.key, currency: customer.budget.currency });
      expect({ c, period: period.key, applies: u.budget!.percentUsed !== null }).toEqual({ c, period: period.key, applies: u.budget!.currency === u.currency });
    }
  }
}

describe('billing against the reference model', () => {
  // MODEL_HISTORY='<the counterexample as fast-check prints it, one history>' replays it alone.
  if (process.env.MODEL_HISTORY) {
    it('replays MODEL_HISTORY', async () => {
      const h = JSON.parse(process.env.MODEL_HISTORY!.replace(/undefined/g, 'null'), (_k, v: unknown) => (v === null ? undefined : v)) as History;
      await check(h, await play(h));
    });
    return;
  }
  it(`bills every customer-period exactly its model price, in any run order, under crashes and parallel jobs (${RUNS} histories)`, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(historyArb, async (h) => check(h, await play(h))),
      // npm test replays a fixed seed (reproducible in CI; its histories reach every hard case);
      // npm run test:model draws new histories each time unless MODEL_SEED says otherwise.
      // MODEL_SEED and MODEL_PATH replay a failure as fast-check printed it.
      {
        numRuns: RUNS,
        seed: process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : RUNS <= 200 ? 20261126 : undefined,
        ...(process.env.MODEL_PATH ? { path: process.env.MODEL_PATH } : {}),
        verbose: 1,
      },
    );
    console.log(`${RUNS} histories in ${((Date.now() - started) / 1000).toFixed(1)} s; exercised ${JSON.stringify(seen)}`);
    // A generator that never reaches the hard cases proves nothing about them.
    for (const [what, count] of Object.entries(seen)) expect({ what, reached: count > 0 }).toEqual({ what, reached: true });
  }, 1_800_000);
});
