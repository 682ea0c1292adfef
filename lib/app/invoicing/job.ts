import type { CatalogIndex } from '../../domain/catalog';
import { authorize, requireUnbound, type Principal } from '../../domain/apikey';
import { ConflictError, DomainError, NotFoundError } from '../../domain/errors';
import { checkCustomerId } from '../customer-id';
import { computeInvoices, CREDIT_CARRIED, type ComputedInvoice } from '../../domain/billing';
import { Period } from '../../domain/period';
import { type Clock } from '../ports/clock';
import { type InvoiceRepository, type InvoiceRunRepository } from '../ports/invoicing';
import { TERMINAL_INVOICE_STATUSES, type InvoiceRecord, type InvoiceStatus } from '../../domain/invoice-record';
import { type Customer } from '../../domain/customer';
import { gatherInvoices, type SnapshotDeps } from './snapshot';
import { failureReason, syncInvoice } from './sync';
import type { InvoiceSync } from './billing-provider';

/**
 * The invoice job of one (customer, period): gather -> compute -> store once -> sync.
 * The invoices are computed once and frozen in records created atomically with the baselines they
 * move and the credits they use; every later attempt syncs the stored records, so every retry
 * sends the provider exactly the same thing. Redeliveries, parallel runs and crashes at any step
 * converge on the same records and the same provider objects.
 */
export interface InvoicingDeps extends SnapshotDeps {
  catalog: CatalogIndex;
  invoices: InvoiceRepository;
  runs: InvoiceRunRepository;
  clock: Clock;
}

export interface InvoiceOutcome {
  /** The period's own invoice status, or `failed` when the job stopped for a reason no retry cures. */
  status: InvoiceStatus | 'failed';
  /** Records of the period (own invoice first). */
  records: InvoiceRecord[];
  error?: string;
}

/** Baselines and credits move under optimistic checks; a job that loses a race reads again. */
const MAX_COMPUTE_ATTEMPTS = 5;

export async function invoiceCustomer(deps: InvoicingDeps & { sync: InvoiceSync }, job: { customerId: string; period: string }): Promise<InvoiceOutcome> {
  const period = Period.parse(job.period);
  let stored: { records: InvoiceRecord[]; earlier: InvoiceRecord[]; stripeCustomerId?: string };
  try {
    stored = await storedInvoices(deps, job.customerId, period);
  } catch (err) {
    // A rule that holds however often we retry (e.g. plan_not_found): record why and stop.
    if (!(err instanceof DomainError)) throw err;
    const error = `${err.code}: ${err.message}`;
    await deps.runs.finish(period.key, job.customerId, 'failed', error);
    return { status: 'failed', records: [], error };
  }
  // The customer's other invoices that Stripe does not have yet (recorded while it had no Stripe
  // customer, or left on their way) go with this period's, all in period order: Stripe never gets
  // a correction (or a credit) of a bill it does not have yet.
  const mine = new Set(stored.records);
  const synced: InvoiceRecord[] = [];
  for (const record of [...stored.earlier, ...stored.records].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const sent = await syncInvoice(deps, await linked(deps, mine.has(record) ? await unblock(deps, record) : record, stored.stripeCustomerId));
    if (mine.has(record)) synced.push(sent);
    else if (sent.status === 'finalized') await deps.runs.finish(sent.period, job.customerId, 'done');
  }

  const blocked = synced.find((r) => r.status === 'blocked');
  if (blocked) await deps.runs.finish(period.key, job.customerId, 'failed', blocked.lastError);
  else if (synced.every((r) => TERMINAL_INVOICE_STATUSES.includes(r.status))) {
    const status = synced.every((r) => r.status === 'no_charge') ? 'skipped' : synced.some((r) => r.status === 'not_synced') ? 'waiting' : 'done';
    const corrections = synced.reduce((n, r) => n + r.lines.filter((l) => l.kind === 'correction').length, 0);
    await deps.runs.finish(period.key, job.customerId, status, undefined, corrections);
  }
  return { status: blocked ? 'failed' : synced[0]!.status, records: synced, error: blocked?.lastError };
}

/**
 * The period's records as stored, created now from a fresh snapshot if this is the first attempt;
 * and, when the customer has a Stripe customer, its other records that Stripe does not have yet.
 */
async function storedInvoices(deps: InvoicingDeps, customerId: string, period: Period) {
  for (let attempt = 1; attempt <= MAX_COMPUTE_ATTEMPTS; attempt++) {
    const snapshot = await gatherInvoices(deps, customerId, period);
    const stripeCustomerId = snapshot.customer?.stripeCustomerId;
    const earlier = stripeCustomerId ? waitingForStripe(snapshot.records).filter((r) => r.period !== period.key) : [];
    const mine = snapshot.records
      .filter((r) => r.period === period.key)
      .sort((a, b) => (a.key === period.key ? -1 : b.key === period.key ? 1 : a.key < b.key ? -1 : 1));
    if (mine[0]?.key === period.key) return { records: mine, earlier, stripeCustomerId };
    const computed = computeInvoices(deps.catalog, snapshot);
    const now = deps.clock.now().toISOString();
    const fresh = computed.invoices.map((i) => toRecord(customerId, snapshot.customer, i, now));
    const outcome = await deps.invoices.create(
      fresh,
      computed.baselines.map((b) => ({ customerId, ...b })),
      computed.credits.map((c) => ({ customerId, ...c })),
    );
    if (outcome === 'created') return { records: fresh, earlier, stripeCustomerId };
    // 'exists': another attempt stored them, read them back; 'moved': a baseline or credit changed, recompute.
  }
  throw new ConflictError('invoice_contended', `the invoice of ${customerId} for ${period.key} kept losing races to other invoices; retrying later`);
}

function toRecord(customerId: string, customer: Customer | undefined, i: ComputedInvoice, now: string): InvoiceRecord {
  const sign = BigInt(i.totalMinor);
  const status: InvoiceStatus = sign < 0n ? CREDIT_CARRIED : sign === 0n ? 'no_charge' : customer?.stripeCustomerId ? 'pending' : 'not_synced';
  return {
    customerId,
    key: i.key,
    period: i.period,
    kind: i.kind,
    status,
    planId: i.planId,
    planVersion: i.planVersion,
    ...(i.plan ? { plan: i.plan } : {}),
    currency: i.currency,
    fees: i.fees,
    lines: i.lines,
    total: i.total,
    totalMinor: i.totalMinor,
    quantities: i.quantities,
    ...(i.kind === 'period' ? { invoicedQuantities: i.quantities, invoicedVersion: 1 } : {}),
    corrections: i.corrections,
    stripeCustomerId: status === 'pending' ? customer?.stripeCustomerId : undefined,
    attempts: 1,
    createdAt: now,
    updatedAt: now,
  };
}

/** Records Stripe does not have yet: made while the customer had no Stripe customer, or on their way (an attempt died), oldest first. */
const ON_THE_WAY: InvoiceStatus[] = ['not_synced', 'pending', 'draft_created', 'items_added'];
const waitingForStripe = (records: InvoiceRecord[]) => records.filter((r) => ON_THE_WAY.includes(r.status)).sort((a, b) => (a.key < b.key ? -1 : 1));

/**
 * A record made while the customer had no Stripe customer, once the customer has one: it is on
 * its way to Stripe (pending, for that Stripe customer) like any other. Another attempt may have
 * moved it first: then it goes on from what that attempt stored.
 */
async function linked(deps: InvoicingDeps, record: InvoiceRecord, stripeCustomerId: string | undefined): Promise<InvoiceRecord> {
  if (record.status !== 'not_synced' || stripeCustomerId === undefined) return record;
  const at = deps.clock.now().toISOString();
  return (
    (await deps.invoices.update(record.customerId, record.key, 'not_synced', { status: 'pending', stripeCustomerId, updatedAt: at })) ??
    (await deps.invoices.get(record.customerId, record.key))!
  );
}

/**
 * `npm run cli -- invoices sync --customer`: sends every invoice of the customer that Stripe does not
 * have yet (recorded before it had a Stripe customer, or left part way), oldest first, and returns
 * what each became. A customer without a Stripe customer is a 409 that says what to do.
 */
export async function syncCustomerInvoices(deps: InvoicingDeps & { sync: InvoiceSync }, principal: Principal, customerId: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkCustomerId(customerId);
  const { customer } = await deps.counterReads.read(customerId, [], []);
  if (!customer) throw new NotFoundError('customer_not_found', `customer "${customerId}" does not exist`);
  if (!customer.stripeCustomerId) {
    throw new ConflictError(
      'no_stripe_customer',
      `${customerId} has no Stripe customer: link one first (customers put ${customerId} --stripe-customer cus_...)`,
    );
  }
  const open = (await deps.invoices.list(customerId)).filter((r) => !TERMINAL_INVOICE_STATUSES.includes(r.status) || r.status === 'not_synced');
  const invoices: InvoiceRecord[] = [];
  for (const record of open.sort((a, b) => (a.key < b.key ? -1 : 1)))
    invoices.push(await syncInvoice(deps, await linked(deps, record, customer.stripeCustomerId)));
  return {
    customerId,
    invoices: invoices.map((r) => ({ key: r.key, period: r.period, status: r.status, total: r.total, currency: r.currency, lastError: r.lastError ?? null })),
  };
}

/** A blocked invoice is tried again when its job runs again (a re-run of the period, after an operator's fix). */
async function unblock(deps: InvoicingDeps, record: InvoiceRecord): Promise<InvoiceRecord> {
  if (record.status !== 'blocked' || record.blockedFrom === undefined) return record;
  const at = deps.clock.now().toISOString();
  return (
    (await deps.invoices.update(record.customerId, record.key, 'blocked', { status: record.blockedFrom, attempts: record.attempts + 1, updatedAt: at })) ??
    (await deps.invoices.get(record.customerId, record.key))!
  );
}

/** After a failed attempt: record why (the last attempt also counts the customer as failed in its run). */
export async function recordInvoiceFailure(deps: InvoicingDeps, job: { customerId: string; period: string }, err: unknown, final: boolean): Promise<void> {
  const error = failureReason(err);
  const record = await deps.invoices.get(job.customerId, job.period);
  if (record && !TERMINAL_INVOICE_STATUSES.includes(record.status)) {
    await deps.invoices.update(job.customerId, job.period, record.status, {
      lastError: error.slice(0, 500),
      attempts: record.attempts + 1,
      updatedAt: deps.clock.now().toISOString(),
    });
  }
  if (final) await deps.runs.finish(job.period, job.customerId, 'failed', error);
}
