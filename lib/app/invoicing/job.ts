import type { CatalogIndex } from '../../domain/catalog';
import { ConflictError, DomainError } from '../../domain/errors';
import { computeInvoices, CREDIT_CARRIED, type ComputedInvoice } from '../../domain/invoicing';
import { Period } from '../../domain/period';
import {
  TERMINAL_INVOICE_STATUSES,
  type Clock,
  type Customer,
  type InvoiceRecord,
  type InvoiceRepository,
  type InvoiceRunRepository,
  type InvoiceStatus,
} from '../ports';
import { gatherInvoices, type SnapshotDeps } from './snapshot';
import { syncInvoice } from './sync';
import type { InvoiceSync } from './stripe-port';

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
  let records: InvoiceRecord[];
  try {
    records = await storedInvoices(deps, job.customerId, period);
  } catch (err) {
    // A rule that holds however often we retry (e.g. plan_not_found): record why and stop.
    if (!(err instanceof DomainError)) throw err;
    const error = `${err.code}: ${err.message}`;
    await deps.runs.finish(period.key, job.customerId, 'failed', error);
    return { status: 'failed', records: [], error };
  }
  const synced: InvoiceRecord[] = [];
  for (const record of records) synced.push(await syncInvoice(deps, await unblock(deps, record)));

  const blocked = synced.find((r) => r.status === 'blocked');
  if (blocked) await deps.runs.finish(period.key, job.customerId, 'failed', blocked.lastError);
  else if (synced.every((r) => TERMINAL_INVOICE_STATUSES.includes(r.status))) {
    await deps.runs.finish(period.key, job.customerId, synced.every((r) => r.status === 'no_charge') ? 'skipped' : 'done');
  }
  return { status: blocked ? 'failed' : synced[0]!.status, records: synced, error: blocked?.lastError };
}

/** The period's records as stored, created now from a fresh snapshot if this is the first attempt. */
async function storedInvoices(deps: InvoicingDeps, customerId: string, period: Period): Promise<InvoiceRecord[]> {
  for (let attempt = 1; attempt <= MAX_COMPUTE_ATTEMPTS; attempt++) {
    const snapshot = await gatherInvoices(deps, customerId, period);
    const mine = snapshot.records
      .filter((r) => r.period === period.key)
      .sort((a, b) => (a.key === period.key ? -1 : b.key === period.key ? 1 : a.key < b.key ? -1 : 1));
    if (mine[0]?.key === period.key) return mine;
    const computed = computeInvoices(deps.catalog, snapshot);
    const now = deps.clock.now().toISOString();
    const fresh = computed.invoices.map((i) => toRecord(customerId, snapshot.customer, i, now));
    const outcome = await deps.invoices.create(
      fresh,
      computed.baselines.map((b) => ({ customerId, ...b })),
      computed.credits.map((c) => ({ customerId, ...c })),
    );
    if (outcome === 'created') return fresh;
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

/** A blocked invoice is tried again when its job runs again (a re-run of the period, after an operator's fix). */
async function unblock(deps: InvoicingDeps, record: InvoiceRecord): Promise<InvoiceRecord> {
  if (record.status !== 'blocked' || record.blockedFrom === undefined) return record;
  const at = deps.clock.now().toISOString();
  return (
    (await deps.invoices.update(record.customerId, record.key, 'blocked', { status: record.blockedFrom, attempts: record.attempts + 1, updatedAt: at })) ??
    (await deps.invoices.get(record.customerId, record.key))!
  );
}

/** After the last SQS attempt: record why, and count the customer as failed in its run. */
export async function recordInvoiceFailure(deps: InvoicingDeps, job: { customerId: string; period: string }, error: string, final: boolean): Promise<void> {
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
