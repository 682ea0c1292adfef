import { z } from 'zod';
import { authorize, requireUnbound, type Principal } from '../domain/apikey';
import type { CatalogIndex, Plan } from '../domain/catalog';
import { ConflictError, NotFoundError } from '../domain/errors';
import { correctionLines, invoiceDraft, priceUsage, type InvoiceDraft, type InvoiceLine } from '../domain/invoice';
import { PERIOD_PATTERN, Period } from '../domain/period';
import { billable } from '../domain/quantity';
import { planFor } from '../domain/plan-schedule';
import { mapLimit } from '../platform/concurrency';
import { BillingProviderError, type BillingProvider } from './billing-port';
import { checkCustomerId } from './customers';
import { parsePeriodInput, resolvePeriod } from './usage';
import {
  TERMINAL_INVOICE_STATUSES,
  type Clock,
  type Customer,
  type CustomerRepository,
  type InvoiceJobQueue,
  type InvoiceRecord,
  type InvoiceRepository,
  type InvoiceRun,
  type InvoiceRunRepository,
  type UsageLedger,
} from './ports';

/**
 * Monthly invoicing (SPEC 8): a run enqueues one job per customer; a job turns the customer's
 * period into an invoice record with frozen lines, then walks it through Stripe one recorded step
 * at a time (draft -> items -> finalize). Every Stripe write carries an idempotency key built from
 * (customer, period, line), and every step first checks what an earlier attempt already did, so
 * re-runs, redeliveries and crashes never make a second invoice or line.
 */
export interface BillingDeps {
  catalog: CatalogIndex;
  ledger: UsageLedger;
  customers: CustomerRepository;
  invoices: InvoiceRepository;
  runs: InvoiceRunRepository;
  invoiceJobs: InvoiceJobQueue;
  clock: Clock;
  /** A period is invoiced only this long after it ends (SPEC 3.5, default 1 hour). */
  graceMs: number;
}

/** Late events are accepted for 35 days, so a period can still change for about two months. */
const CORRECTION_LOOKBACK = 2;

interface Computed {
  customer: Customer | undefined;
  plan: Plan;
  quantities: Record<string, string>;
  draft: InvoiceDraft;
  baselines: { record: InvoiceRecord | undefined; customerId: string; period: string; quantities: Record<string, string> }[];
}

/** What the period would invoice now: its lines plus corrections of earlier, already invoiced periods. */
async function compute(deps: BillingDeps, customerId: string, period: Period): Promise<Computed> {
  const customer = await deps.customers.get(customerId);
  const plan = planFor(deps.catalog, customer?.plans, period.key);
  const meters = deps.catalog.meters();
  const quantities = billable((await deps.ledger.read(customerId, period.key)).values);
  const lines: InvoiceLine[] = [...priceUsage({ plan, meters, usage: quantities }).lines];
  const baselines: Computed['baselines'] = [];
  let earlier = period;
  for (let i = 0; i < CORRECTION_LOOKBACK; i++) {
    earlier = earlier.previous();
    const [record, invoiced] = await Promise.all([deps.invoices.get(customerId, earlier.key), deps.runs.exists(earlier.key)]);
    if (!record && !invoiced) continue; // never invoiced: nothing to correct
    const now = billable((await deps.ledger.read(customerId, earlier.key)).values);
    const before = record?.invoicedQuantities ?? {};
    const earlierPlan = record
      ? (deps.catalog.plan(record.planId) ?? planFor(deps.catalog, customer?.plans, earlier.key))
      : planFor(deps.catalog, customer?.plans, earlier.key);
    const corrections = correctionLines(earlierPlan, meters, now, before, earlier.key);
    if (corrections.length === 0) continue;
    lines.push(...corrections);
    baselines.push({ record, customerId, period: earlier.key, quantities: now });
  }
  return { customer, plan, quantities, draft: invoiceDraft(plan.currency, lines), baselines };
}

/** GET .../invoices/upcoming: the invoice the period would produce now, in the shape of a real one. */
export async function previewInvoice(deps: BillingDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const { plan, draft } = await compute(deps, customerId, period);
  return {
    customerId,
    period: period.key,
    planId: plan.id,
    currency: draft.currency,
    status: 'upcoming',
    lines: draft.lines.map(publicLine),
    total: draft.total,
    asOf: deps.clock.now().toISOString(),
  };
}

export function publicLine(l: InvoiceLine) {
  return {
    kind: l.kind,
    meter: l.meter ?? null,
    description: l.description,
    quantity: l.quantity,
    unitAmount: l.unitAmount,
    amount: l.amount,
    lineKey: l.lineKey,
  };
}

export function publicInvoice(r: InvoiceRecord) {
  return {
    customerId: r.customerId,
    period: r.period,
    status: r.status,
    planId: r.planId,
    currency: r.currency,
    lines: r.lines.map(publicLine),
    total: r.total,
    stripeInvoiceId: r.stripeInvoiceId ?? null,
    stripeStatus: r.stripeStatus ?? null,
    hostedInvoiceUrl: r.hostedInvoiceUrl ?? null,
    quantities: r.quantities,
    corrections: r.corrections,
    lastError: r.lastError ?? null,
    createdAt: r.createdAt,
    finalizedAt: r.finalizedAt ?? null,
  };
}

export async function listInvoices(deps: BillingDeps, principal: Principal, customerId: string) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  return { customerId, invoices: (await deps.invoices.list(customerId)).map(publicInvoice) };
}

export function runView(run: InvoiceRun) {
  const finished = run.done + run.skipped + run.failed;
  const status = run.fannedOut !== true ? 'starting' : finished >= run.total ? 'completed' : 'running';
  return {
    period: run.period,
    status,
    total: run.total,
    done: run.done,
    skipped: run.skipped,
    failed: run.failed,
    pending: Math.max(0, run.total - finished),
    startedAt: run.startedAt,
  };
}

/** Starts (or resumes) the run of a closed period: one job per customer not yet invoiced. */
function checkClosed(deps: BillingDeps, period: Period): void {
  if (deps.clock.now().getTime() < period.end.getTime() + deps.graceMs) {
    throw new ConflictError(
      'period_not_closed',
      `period ${period.key} can be invoiced from ${new Date(period.end.getTime() + deps.graceMs).toISOString()} (its end plus the grace period)`,
    );
  }
}

export async function startInvoiceRun(deps: BillingDeps, period: Period) {
  checkClosed(deps, period);
  await deps.runs.ensure(period.key, deps.clock.now().toISOString());
  const ids = [...new Set([...(await deps.customers.allIds()), ...(await deps.ledger.customersWithUsage(period.key))])].sort();
  const statuses = await mapLimit(ids, 16, (customerId) => deps.runs.addMember(period.key, customerId));
  const jobs = ids.filter((_, i) => statuses[i] === 'pending' || statuses[i] === 'failed').map((customerId) => ({ period: period.key, customerId }));
  await deps.invoiceJobs.enqueue(jobs);
  await deps.runs.setFannedOut(period.key, true);
  return { ...runView((await deps.runs.get(period.key))!), enqueued: jobs.length };
}

export const invoiceRunInput = z.object({ period: z.string().regex(PERIOD_PATTERN, 'must be YYYY-MM') }).strict();

/**
 * POST /invoice-runs: checks the period, records the run and hands the fan-out to the invoice
 * queue (a `start_run` job), so that the API answers at once however many customers there are.
 */
export async function startInvoiceRunByHand(deps: BillingDeps, principal: Principal, periodText: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = Period.parse(periodText);
  checkClosed(deps, period);
  await deps.runs.ensure(period.key, deps.clock.now().toISOString());
  await deps.runs.setFannedOut(period.key, false);
  await deps.invoiceJobs.enqueue([{ period: period.key, action: 'start_run' }]);
  return { ...runView((await deps.runs.get(period.key))!), starting: true };
}

export async function getInvoiceRun(deps: BillingDeps, principal: Principal, periodText: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = parsePeriodInput(periodText);
  const run = await deps.runs.get(period.key);
  if (!run) throw new NotFoundError('invoice_run_not_found', `no invoice run for ${period.key}`);
  return runView(run);
}

export interface InvoiceOutcome {
  status: InvoiceRecord['status'];
  stripeCalls: number;
}

/** The invoice job: idempotent, resumable at every step. */
export async function invoiceCustomer(deps: BillingDeps & { billing: BillingProvider }, job: { customerId: string; period: string }): Promise<InvoiceOutcome> {
  const period = Period.parse(job.period);
  const now = () => deps.clock.now().toISOString();
  let record = await deps.invoices.get(job.customerId, period.key);
  if (!record) {
    const c = await compute(deps, job.customerId, period);
    const totalMinor = c.draft.lines.reduce((s, l) => s + l.amountMinor, 0);
    const status = totalMinor === 0 ? 'no_charge' : c.customer?.stripeCustomerId ? 'pending' : 'not_synced';
    const fresh: InvoiceRecord = {
      customerId: job.customerId,
      period: period.key,
      status,
      planId: c.plan.id,
      currency: c.draft.currency,
      lines: c.draft.lines,
      total: c.draft.total,
      totalMinor,
      quantities: c.quantities,
      invoicedQuantities: c.quantities,
      invoicedVersion: 1,
      corrections: c.baselines.map((b) => ({ period: b.period, quantities: b.quantities })),
      stripeCustomerId: c.customer?.stripeCustomerId,
      attempts: 1,
      createdAt: now(),
      updatedAt: now(),
    };
    // Losing the race means another attempt stored it: go on with what is there. If nothing is
    // there, an earlier period's baseline moved under us; the job fails and SQS retries it afresh.
    record = (await deps.invoices.create(fresh, c.baselines)) ? fresh : await deps.invoices.get(job.customerId, period.key);
    if (!record) throw new ConflictError('baseline_moved', `a correction baseline of ${job.customerId} moved while invoicing ${period.key}; retrying`);
  }

  let stripeCalls = 0;
  const key = (part: string) => `inv:${record!.customerId}:${record!.period}:${part}`;
  /** Records the next state; if another attempt moved the record first, continue from what it stored. */
  const advance = async (r: InvoiceRecord, from: InvoiceRecord['status'], changes: Partial<InvoiceRecord>): Promise<InvoiceRecord> =>
    (await deps.invoices.update(r.customerId, r.period, from, changes)) ?? (await deps.invoices.get(r.customerId, r.period))!;
  const billing = deps.billing;

  if (record.status === 'pending') {
    let invoiceId: string | undefined;
    if (record.draftRequested) {
      // An earlier attempt may have created the draft and died before recording it.
      stripeCalls++;
      invoiceId = (await billing.findInvoice(record.stripeCustomerId!, key('invoice')))?.id;
    } else {
      await deps.invoices.update(record.customerId, record.period, 'pending', { draftRequested: true, updatedAt: now() });
    }
    if (!invoiceId) {
      stripeCalls++;
      invoiceId = (
        await billing.createDraftInvoice({
          stripeCustomerId: record.stripeCustomerId!,
          currency: record.currency,
          description: `Usage for ${record.period}`,
          metadata: { invoice_key: key('invoice'), customer_id: record.customerId, period: record.period },
          idempotencyKey: key('invoice'),
        })
      ).id;
    }
    record = await advance(record, 'pending', { status: 'draft_created', stripeInvoiceId: invoiceId, updatedAt: now() });
  }

  if (record.status === 'draft_created') {
    let existing = new Set<string>();
    if (record.itemsRequested) {
      stripeCalls++;
      existing = new Set((await billing.listInvoiceItems(record.stripeInvoiceId!)).map((i) => i.metadata.line_key ?? ''));
    } else {
      await deps.invoices.update(record.customerId, record.period, 'draft_created', { itemsRequested: true, updatedAt: now() });
    }
    for (const line of record.lines) {
      if (existing.has(line.lineKey)) continue;
      stripeCalls++;
      await billing.addInvoiceItem({
        stripeCustomerId: record.stripeCustomerId!,
        invoiceId: record.stripeInvoiceId!,
        currency: record.currency,
        amountMinor: line.amountMinor,
        description: line.description,
        metadata: {
          customer_id: record.customerId,
          period: record.period,
          line_key: line.lineKey,
          meter: line.meter ?? '',
          tier: line.tier === undefined ? '' : String(line.tier),
          kind: line.kind,
        },
        idempotencyKey: key(line.lineKey),
      });
    }
    record = await advance(record, 'draft_created', { status: 'items_added', updatedAt: now() });
  }

  if (record.status === 'items_added') {
    stripeCalls++;
    const finalized = await billing.finalizeInvoice(record.stripeInvoiceId!, key('finalize'));
    if (finalized.totalMinor !== record.totalMinor) {
      throw new BillingProviderError(`Stripe invoice ${finalized.id} totals ${finalized.totalMinor}, the record ${record.totalMinor}`, false, 'total_mismatch');
    }
    record = await advance(record, 'items_added', {
      status: 'finalized',
      stripeStatus: finalized.status,
      stripeNumber: finalized.number ?? null,
      hostedInvoiceUrl: finalized.hostedInvoiceUrl ?? null,
      finalizedAt: now(),
      updatedAt: now(),
    });
  }

  if (TERMINAL_INVOICE_STATUSES.includes(record.status)) {
    await deps.runs.finish(record.period, record.customerId, record.status === 'no_charge' ? 'skipped' : 'done');
  }
  return { status: record.status, stripeCalls };
}

/** After the last SQS attempt: record why, and count the customer as failed in its run. */
export async function recordInvoiceFailure(deps: BillingDeps, job: { customerId: string; period: string }, error: string, final: boolean): Promise<void> {
  const record = await deps.invoices.get(job.customerId, job.period);
  if (record && !TERMINAL_INVOICE_STATUSES.includes(record.status)) {
    await deps.invoices.update(job.customerId, job.period, record.status, {
      lastError: error.slice(0, 500),
      attempts: record.attempts + 1,
      updatedAt: deps.clock.now().toISOString(),
    });
  }
  if (final) await deps.runs.finish(job.period, job.customerId, 'failed');
}
