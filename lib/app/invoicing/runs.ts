import { z } from 'zod';
import { authorize, requireUnbound, type Principal } from '../../domain/apikey';
import { ConflictError, NotFoundError } from '../../domain/errors';
import { CORRECTION_LOOKBACK } from '../../domain/invoicing';
import { PERIOD_PATTERN, Period } from '../../domain/period';
import { mapLimit } from '../../platform/concurrency';
import type { Clock, CustomerRepository, InvoiceJobQueue, InvoiceRun, InvoiceRunRepository, UsageEpoch, UsageLedger } from '../ports';
import { parsePeriodInput } from '../usage';

/**
 * Invoice runs: a run enqueues one job per customer of a closed period. Starting a run
 * again only enqueues customers not yet done; starting a run also resumes the runs of the periods
 * it may still correct, so that late usage of a customer who was no member of them gets its own
 * period's invoice.
 */
export interface RunDeps {
  ledger: Pick<UsageLedger, 'customersWithUsage'>;
  customers: Pick<CustomerRepository, 'allIds'>;
  runs: InvoiceRunRepository;
  invoiceJobs: InvoiceJobQueue;
  epoch: Pick<UsageEpoch, 'earliest'>;
  clock: Clock;
  /** A period is invoiced only this long after it ends (default 1 hour). */
  graceMs: number;
  /** Late events are accepted this long (the de-duplication window); after it a period is final. */
  correctionWindowMs: number;
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

function checkClosed(deps: RunDeps, period: Period): void {
  if (deps.clock.now().getTime() < period.end.getTime() + deps.graceMs) {
    throw new ConflictError(
      'period_not_closed',
      `period ${period.key} can be invoiced from ${new Date(period.end.getTime() + deps.graceMs).toISOString()} (its end plus the grace period)`,
    );
  }
}

/**
 * A new run is where a typo bills everyone: a period whose late-event window has passed, or one
 * from before the system saw any usage or customer, is refused unless forced. Resuming a run that
 * exists is always allowed.
 */
async function checkNewRun(deps: RunDeps, period: Period): Promise<void> {
  if (deps.clock.now().getTime() >= period.end.getTime() + deps.correctionWindowMs) {
    const days = Math.round(deps.correctionWindowMs / 86_400_000);
    throw new ConflictError(
      'period_too_old',
      `period ${period.key} ended more than ${days} days ago (the late-event window) and was never run; send "force": true if it really must be invoiced now`,
    );
  }
  const earliest = await deps.epoch.earliest();
  if (earliest === undefined || period.key < earliest) {
    throw new ConflictError(
      'period_before_first_usage',
      `period ${period.key} is before the first usage or customer this system has seen (${earliest ?? 'none yet'}); send "force": true if it really must be invoiced`,
    );
  }
}

/** Adds members and enqueues their jobs; returns how many jobs it enqueued. */
async function fanOut(deps: RunDeps, period: string, ids: string[], enqueue: (status: string) => boolean): Promise<number> {
  const statuses = await mapLimit(ids, 16, (customerId) => deps.runs.addMember(period, customerId));
  const jobs = ids.filter((_, i) => enqueue(statuses[i]!)).map((customerId) => ({ period, customerId }));
  // A failed member tried again is pending again: the run is not completed until its job ends.
  await mapLimit(
    ids.filter((_, i) => statuses[i] === 'failed' && enqueue('failed')),
    16,
    (customerId) => deps.runs.reopen(period, customerId),
  );
  await deps.invoiceJobs.enqueue(jobs);
  return jobs.length;
}

/**
 * The fan-out (the scheduler's run and the worker's `start_run` job): one job per customer not yet
 * done. Members are every customer, every customer with usage in the period, and every customer
 * with usage in the periods this run may still correct: a customer nobody created whose late usage
 * came after its period's invoice gets the correction on this run's invoice. The runs of those
 * earlier periods are resumed too, for customers whose usage there came after their fan-out.
 */
export async function startInvoiceRun(deps: RunDeps, period: Period) {
  checkClosed(deps, period);
  await deps.runs.ensure(period.key, deps.clock.now().toISOString());
  const earlier: Period[] = [];
  for (let p = period.previous(), i = 0; i < CORRECTION_LOOKBACK; i++, p = p.previous()) earlier.push(p);
  const usageOf = new Map(await Promise.all([period, ...earlier].map(async (p) => [p.key, await deps.ledger.customersWithUsage(p.key)] as const)));
  const ids = [...new Set([...(await deps.customers.allIds()), ...[...usageOf.values()].flat()])].sort();
  let enqueued = await fanOut(deps, period.key, ids, (s) => s === 'added' || s === 'pending' || s === 'failed');
  for (const p of earlier) {
    if (await deps.runs.exists(p.key)) enqueued += await fanOut(deps, p.key, usageOf.get(p.key)!, (s) => s === 'added');
  }
  await deps.runs.setFannedOut(period.key, true);
  return { ...runView((await deps.runs.get(period.key))!), enqueued };
}

export const invoiceRunInput = z.object({ period: z.string().regex(PERIOD_PATTERN, 'must be YYYY-MM'), force: z.boolean().optional() }).strict();

/**
 * POST /invoice-runs: checks the period, records the run and hands the fan-out to the invoice
 * queue (a `start_run` job), so that the API answers at once however many customers there are.
 */
export async function startInvoiceRunByHand(deps: RunDeps, principal: Principal, input: z.infer<typeof invoiceRunInput>) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = Period.parse(input.period);
  checkClosed(deps, period);
  if (input.force !== true && !(await deps.runs.exists(period.key))) await checkNewRun(deps, period);
  await deps.runs.ensure(period.key, deps.clock.now().toISOString());
  await deps.runs.setFannedOut(period.key, false);
  await deps.invoiceJobs.enqueue([{ period: period.key, action: 'start_run' }]);
  return { ...runView((await deps.runs.get(period.key))!), starting: true };
}

export async function getInvoiceRun(deps: RunDeps, principal: Principal, periodText: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = parsePeriodInput(periodText);
  const run = await deps.runs.get(period.key);
  if (!run) throw new NotFoundError('invoice_run_not_found', `no invoice run for ${period.key}`);
  return runView(run);
}
