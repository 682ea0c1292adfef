import type { AddLinesInput, BillingProvider, DraftInvoiceInput, ProviderInvoice } from '../../lib/app/invoicing/billing-provider';
import { BillingProviderError } from '../../lib/app/invoicing/billing-provider';
import { StripeInvoiceSync } from '../../lib/adapters/stripe/stripe-invoice-sync';
import type { CatalogIndex } from '../../lib/domain/catalog';
import type { Clock } from '../../lib/app/ports/clock';
import type {
  CreateInvoicesOutcome,
  FanOutPosition,
  InvoiceJobQueue,
  InvoiceRepository,
  InvoiceRun,
  InvoiceRunRepository,
  MemberTake,
  RunMemberStatus,
} from '../../lib/app/ports/invoicing';
import type { CounterReads, IdPage, UsageEpoch, UsageIndex, UsageLedger } from '../../lib/app/ports/usage';
import type { CustomerRepository } from '../../lib/app/ports/customers';
import type { InvoiceJob } from '../../lib/app/messages';
import type { CreditSettlement, InvoiceRecord, InvoiceStatus } from '../../lib/domain/invoice-record';
import type { Customer } from '../../lib/domain/customer';
import { DUPLICATES_COUNTER } from '../../lib/app/ports/usage';

/**
 * In-memory adapters for the invoicing use cases, with the same conditional semantics as the
 * DynamoDB ones (conditional create, compare-and-set updates, atomic multi-item create). Every call
 * first yields to the event loop a (seeded) random number of times, so that jobs run "in
 * parallel" interleave at every store call, and may crash before or after it commits.
 */
export interface Chaos {
  /** Yields this many times before the call (interleaving). */
  yields(): number;
  /** Throws here when it says so ('before' the write commits, or 'after' it did). */
  crash(where: string): 'before' | 'after' | undefined;
}
const calm: Chaos = { yields: () => 0, crash: () => undefined };

export class InjectedCrash extends Error {
  constructor(where: string, when: string) {
    super(`injected crash ${when} ${where}`);
    this.name = 'InjectedCrash';
  }
}

const clone = <T>(v: T): T => structuredClone(v);

async function step<T>(chaos: Chaos, where: string, write: () => T): Promise<T> {
  for (let i = chaos.yields(); i > 0; i--) await new Promise<void>((r) => setImmediate(r));
  const crash = chaos.crash(where);
  if (crash === 'before') throw new InjectedCrash(where, 'before');
  const out = write();
  if (crash === 'after') throw new InjectedCrash(where, 'after');
  return out;
}

export class MemoryClock implements Clock {
  constructor(public at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
}

class MemoryCustomers implements CustomerRepository {
  readonly byId = new Map<string, Customer>();
  async get(id: string) {
    return this.byId.has(id) ? clone(this.byId.get(id)!) : undefined;
  }
  async put(c: Customer) {
    this.byId.set(c.id, clone(c));
  }
  /** Pages in id order; `lastId` is the last id of the page. */
  async list(limit: number, after?: string) {
    const { items, cursor } = page(
      [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      (c) => c.id,
      limit,
      after,
      clone,
    );
    return { items, lastId: cursor };
  }
}

function page<T, R>(rows: T[], id: (row: T) => string, limit: number, cursor: string | undefined, map: (row: T) => R) {
  const from = cursor === undefined ? rows : rows.filter((r) => id(r) > cursor);
  const items = from.slice(0, limit);
  return { items: items.map(map), cursor: from.length > limit ? id(items[items.length - 1]!) : undefined };
}

/** The customer and counters of some meters in some periods, from the memory customers and ledger. */
export class MemoryCounterReads implements CounterReads {
  constructor(
    private readonly customers: Pick<CustomerRepository, 'get'>,
    private readonly ledger: Pick<UsageLedger, 'read'>,
  ) {}
  async read(customerId: string, periods: string[], meters: string[]) {
    const customer = await this.customers.get(customerId);
    const counters: Record<string, Record<string, string>> = {};
    for (const period of periods) {
      const { values, duplicatesDropped } = await this.ledger.read(customerId, period);
      const all: Record<string, string> = duplicatesDropped > 0 ? { ...values, [DUPLICATES_COUNTER]: String(duplicatesDropped) } : values;
      counters[period] = Object.fromEntries(meters.filter((m) => all[m] !== undefined).map((m) => [m, all[m]!]));
    }
    return { customer, counters };
  }
}

/** Counters set by the test: customer -> period -> meter -> value. */
class MemoryLedger implements Pick<UsageLedger, 'read'>, UsageIndex {
  readonly counters = new Map<string, Map<string, Record<string, string>>>();
  set(customerId: string, period: string, values: Record<string, string>) {
    if (!this.counters.has(customerId)) this.counters.set(customerId, new Map());
    this.counters.get(customerId)!.set(period, { ...values });
  }
  async read(customerId: string, period: string) {
    return { values: { ...(this.counters.get(customerId)?.get(period) ?? {}) }, duplicatesDropped: 0 };
  }
  async customersWithUsage(period: string, range: { cursor?: string; limit: number }): Promise<IdPage> {
    const ids = [...this.counters.entries()]
      .filter(([, byPeriod]) => byPeriod.has(period))
      .map(([id]) => id)
      .sort();
    const { items, cursor } = page(
      ids,
      (id) => id,
      range.limit,
      range.cursor,
      (id) => id,
    );
    return { ids: items, cursor };
  }
}

class MemoryEpoch implements UsageEpoch {
  earliestPeriod: string | undefined;
  async note(period: string) {
    if (this.earliestPeriod === undefined || period < this.earliestPeriod) this.earliestPeriod = period;
  }
  async earliest() {
    return this.earliestPeriod;
  }
}

class MemoryInvoices implements InvoiceRepository {
  readonly records = new Map<string, InvoiceRecord>();
  constructor(private readonly chaos: Chaos = calm) {}
  private id(customerId: string, key: string) {
    return `${customerId}\u0001${key}`;
  }
  all(): InvoiceRecord[] {
    return [...this.records.values()].map(clone);
  }
  async get(customerId: string, key: string) {
    await step(this.chaos, 'invoices.get', () => undefined);
    const r = this.records.get(this.id(customerId, key));
    return r ? clone(r) : undefined;
  }
  async list(customerId: string) {
    await step(this.chaos, 'invoices.list', () => undefined);
    return [...this.records.values()]
      .filter((r) => r.customerId === customerId)
      .sort((a, b) => (a.key < b.key ? 1 : -1))
      .map(clone);
  }
  async create(
    records: InvoiceRecord[],
    baselines: { customerId: string; period: string; quantities: Record<string, string>; version: number }[],
    credits: { customerId: string; key: string; appliedTo: string }[],
  ): Promise<CreateInvoicesOutcome> {
    return step(this.chaos, 'invoices.create', () => {
      // All conditions first, then all writes: a transaction.
      if (this.records.has(this.id(records[0]!.customerId, records[0]!.key))) return 'exists';
      if (records.some((r) => this.records.has(this.id(r.customerId, r.key)))) return 'moved';
      for (const b of baselines) if (this.records.get(this.id(b.customerId, b.period))?.invoicedVersion !== b.version) return 'moved';
      for (const c of credits) {
        const r = this.records.get(this.id(c.customerId, c.key));
        if (!r || r.creditAppliedTo !== undefined || r.creditSettlement !== undefined) return 'moved';
      }
      for (const r of records) this.records.set(this.id(r.customerId, r.key), clone(r));
      for (const b of baselines) {
        const r = this.records.get(this.id(b.customerId, b.period))!;
        r.invoicedQuantities = { ...b.quantities };
        r.invoicedVersion = b.version + 1;
      }
      for (const c of credits) this.records.get(this.id(c.customerId, c.key))!.creditAppliedTo = c.appliedTo;
      return 'created' as const;
    });
  }
  async settleCredit(customerId: string, key: string, settlement: CreditSettlement) {
    return step(this.chaos, 'invoices.settleCredit', () => {
      const r = this.records.get(this.id(customerId, key));
      if (!r || r.status !== 'credit_carried' || r.creditAppliedTo !== undefined || r.creditSettlement !== undefined) return false;
      r.creditSettlement = clone(settlement);
      return true;
    });
  }
  async update(customerId: string, key: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>) {
    return step(this.chaos, `invoices.update:${String(changes.status ?? Object.keys(changes)[0])}`, () => {
      const r = this.records.get(this.id(customerId, key));
      if (!r || r.status !== expected) return undefined;
      for (const [k, v] of Object.entries(changes)) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = clone(v);
      return clone(r);
    });
  }
}

class MemoryRuns implements InvoiceRunRepository {
  readonly runs = new Map<string, { startedAt: string; fannedOut: boolean; fanOut?: FanOutPosition }>();
  readonly members = new Map<string, Map<string, { status: RunMemberStatus; lastError?: string; chain?: string; step?: string; corrections?: number }>>();
  constructor(private readonly chaos: Chaos = calm) {}
  async get(period: string): Promise<InvoiceRun | undefined> {
    const run = this.runs.get(period);
    if (!run) return undefined;
    const counts = { total: 0, done: 0, skipped: 0, failed: 0, waiting: 0, corrections: 0 };
    for (const m of this.members.get(period)?.values() ?? []) {
      counts.total++;
      if (m.status !== 'pending') counts[m.status]++;
      counts.corrections += m.corrections ?? 0;
    }
    return { period, startedAt: run.startedAt, fannedOut: run.fannedOut, ...counts };
  }
  async exists(period: string) {
    return this.runs.has(period);
  }
  async beginFanOut(period: string, now: string, position: FanOutPosition) {
    await step(this.chaos, 'runs.beginFanOut', () => {
      const run = this.runs.get(period) ?? { startedAt: now, fannedOut: false };
      this.runs.set(period, { ...run, fannedOut: false, fanOut: clone(position) });
    });
  }
  async fanOutPosition(period: string) {
    return step(this.chaos, 'runs.fanOutPosition', () => {
      const at = this.runs.get(period)?.fanOut;
      return at ? clone(at) : undefined;
    });
  }
  /** Changes the run if its position is held by `token` (a conditional write). */
  private held(where: string, period: string, token: string, change: (run: { fannedOut: boolean; fanOut?: FanOutPosition }) => void) {
    return step(this.chaos, where, () => {
      const run = this.runs.get(period);
      if (run?.fanOut?.token !== token) return false;
      change(run);
      return true;
    });
  }
  async pinFanOutPage(period: string, token: string, page: IdPage) {
    return step(this.chaos, 'runs.pinFanOutPage', () => {
      const at = this.runs.get(period)?.fanOut;
      if (at?.token !== token) return undefined;
      at.pinned ??= clone(page);
      return clone(at.pinned);
    });
  }
  async advanceFanOut(period: string, token: string, next: FanOutPosition) {
    return this.held('runs.advanceFanOut', period, token, (run) => (run.fanOut = clone(next)));
  }
  async endFanOut(period: string, token: string) {
    return this.held('runs.endFanOut', period, token, (run) => {
      run.fannedOut = true;
      delete run.fanOut;
    });
  }
  async takeMembers(period: string, customerIds: string[], take: MemberTake) {
    const enqueue: string[] = [];
    for (const customerId of new Set(customerIds)) if (await this.takeMember(period, customerId, take)) enqueue.push(customerId);
    return enqueue;
  }
  private async takeMember(period: string, customerId: string, take: MemberTake) {
    return step(this.chaos, 'runs.takeMember', () => {
      if (!this.members.has(period)) this.members.set(period, new Map());
      const members = this.members.get(period)!;
      const m = members.get(customerId);
      if (!m) {
        members.set(customerId, { status: 'pending', chain: take.chain, step: take.step });
        return true;
      }
      const retake =
        m.chain !== take.chain && take.again.includes(m.status) && (take.againIfTakenBy === undefined || (m.chain ?? '').startsWith(take.againIfTakenBy));
      if (m.step !== take.step && !retake) return false;
      Object.assign(m, { chain: take.chain, step: take.step });
      if (!take.again.includes(m.status)) return false;
      if (m.status === 'failed' || m.status === 'waiting') m.status = 'pending';
      return true;
    });
  }
  async finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>, error?: string, corrections?: number) {
    await step(this.chaos, 'runs.finish', () => {
      const m = this.members.get(period)?.get(customerId);
      if (m && (m.status === 'pending' || m.status === 'failed' || m.status === 'waiting')) {
        Object.assign(m, { status, lastError: error }, corrections === undefined ? {} : { corrections });
      }
    });
  }
}

/** The invoice queue; a send may crash before or after SQS took the messages. */
class MemoryJobQueue implements InvoiceJobQueue {
  readonly jobs: InvoiceJob[] = [];
  constructor(private readonly chaos: Chaos = calm) {}
  async enqueue(jobs: InvoiceJob[]) {
    await step(this.chaos, 'queue.enqueue', () => this.jobs.push(...clone(jobs)));
  }
}

/** The provider as Stripe behaves for what the sync calls: idempotency keys, drafts, add_lines, finalize. */
class MemoryStripe implements BillingProvider {
  readonly invoices = new Map<
    string,
    { id: string; customer: string; currency: string; status: 'draft' | 'open'; metadata: Record<string, string>; total: number }
  >();
  readonly items: { id: string; invoice: string; amount: number; metadata: Record<string, string> }[] = [];
  private readonly keys = new Map<string, unknown>();
  private seq = 0;
  /** The next this many calls fail as a timeout would (retryable) before reaching the provider. */
  failNext = 0;
  constructor(private readonly chaos: Chaos = calm) {}

  /** Stripe forgets idempotency keys after 24 hours: a retry that comes later must find what it made by other means. */
  forgetKeys(): void {
    this.keys.clear();
  }

  private async call<T>(where: string, key: string | undefined, write: () => T): Promise<T> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new BillingProviderError(`injected timeout of ${where}`, true, 'timeout');
    }
    return step(this.chaos, `stripe.${where}`, () => {
      if (key !== undefined && this.keys.has(key)) return this.keys.get(key) as T;
      const out = write();
      if (key !== undefined) this.keys.set(key, out);
      return out;
    }).catch((err: unknown) => {
      // A crash of the provider call looks like a timeout to the caller: retryable.
      throw err instanceof InjectedCrash ? new BillingProviderError(err.message, true, 'timeout') : err;
    });
  }
  private view(id: string): ProviderInvoice {
    const inv = this.invoices.get(id)!;
    return { id, status: inv.status, totalMinor: inv.total };
  }
  /** The Stripe customers this account has (invoices name others freely; only `customerExists` asks). */
  readonly customers = new Set<string>();
  async customerExists(stripeCustomerId: string) {
    return this.customers.has(stripeCustomerId);
  }
  createDraftInvoice(input: DraftInvoiceInput) {
    return this.call('createDraftInvoice', input.idempotencyKey, () => {
      const id = `in_${++this.seq}`;
      this.invoices.set(id, { id, customer: input.stripeCustomerId, currency: input.currency, status: 'draft', metadata: { ...input.metadata }, total: 0 });
      return this.view(id);
    });
  }
  /** All or nothing, at most 250 items per invoice, like Stripe's add_lines. */
  addInvoiceLines(input: AddLinesInput) {
    return this.call('addInvoiceLines', input.idempotencyKey, () => {
      const inv = this.invoices.get(input.invoiceId)!;
      if (inv.status !== 'draft') throw new BillingProviderError(`invoice ${inv.id} is not a draft`, false, 'invoice_not_editable');
      if (this.items.filter((i) => i.invoice === inv.id).length + input.lines.length > 250) {
        throw new BillingProviderError(`invoice ${inv.id} would have more than 250 items`, false, 'invoice_too_many_items');
      }
      for (const line of input.lines) this.items.push({ id: `ii_${++this.seq}`, invoice: inv.id, amount: line.amountMinor, metadata: { ...line.metadata } });
      return this.view(inv.id);
    });
  }
  finalizeInvoice(invoiceId: string, idempotencyKey: string) {
    return this.call('finalizeInvoice', idempotencyKey, () => {
      const inv = this.invoices.get(invoiceId)!;
      if (inv.status === 'draft') {
        inv.total = this.items.filter((i) => i.invoice === invoiceId).reduce((s, i) => s + i.amount, 0);
        inv.status = 'open';
      }
      return this.view(invoiceId);
    });
  }
  getInvoice(invoiceId: string) {
    return this.call('getInvoice', undefined, () => this.view(invoiceId));
  }
  findInvoice(stripeCustomerId: string, invoiceKey: string) {
    return this.call('findInvoice', undefined, () => {
      const found = [...this.invoices.values()].find((i) => i.customer === stripeCustomerId && i.metadata.invoice_key === invoiceKey);
      return found ? this.view(found.id) : undefined;
    });
  }
  listInvoiceLines(invoiceId: string) {
    return this.call('listInvoiceLines', undefined, () =>
      this.items.filter((i) => i.invoice === invoiceId).map((i) => ({ id: i.id, amountMinor: i.amount, metadata: { ...i.metadata } })),
    );
  }
}

/**
 * What the invoice job, runs and previews take, on in-memory adapters (the ledger is also the usage
 * index); `chaos` crashes the invoices, runs, queue and Stripe. Tests spread it and add their own.
 */
export function memoryBilling(catalog: CatalogIndex, clock: MemoryClock, opts: { chaos?: Chaos; correctionWindowMs?: number; graceMs?: number } = {}) {
  const chaos = opts.chaos ?? calm;
  const ledger = new MemoryLedger();
  const customers = new MemoryCustomers();
  const stripe = new MemoryStripe(chaos);
  return {
    catalog,
    clock,
    ledger,
    usageIndex: ledger,
    customers,
    counterReads: new MemoryCounterReads(customers, ledger),
    invoices: new MemoryInvoices(chaos),
    runs: new MemoryRuns(chaos),
    invoiceJobs: new MemoryJobQueue(chaos),
    epoch: new MemoryEpoch(),
    subscriptions: { sync: async () => ({}) },
    graceMs: opts.graceMs ?? 3_600_000,
    correctionWindowMs: opts.correctionWindowMs ?? 35 * 86_400_000,
    stripe,
    sync: new StripeInvoiceSync(stripe),
  };
}
