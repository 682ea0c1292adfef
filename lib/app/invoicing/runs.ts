import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import { authorize, requireUnbound, type Principal } from '../../domain/apikey';
import { ConflictError, NotFoundError } from '../../domain/errors';
import { correctionLookback, PERIOD_PATTERN, Period } from '../../domain/period';
import { sleep } from '../../domain/concurrency';
import type { Clock } from '../ports/clock';
import type { CustomerRepository } from '../ports/customers';
import type { FanOutPosition, InvoiceJobQueue, InvoiceRun, InvoiceRunRepository } from '../ports/invoicing';
import type { IdPage, UsageEpoch, UsageIndex } from '../ports/usage';
import type { InvoiceJob, RunStepJob } from '../messages';
import { parsePeriodInput } from '../period-input';

/**
 * Invoice runs: a run enqueues one job per customer of a closed period. Starting a run again only
 * enqueues customers not yet done; a run also resumes the runs of the periods it may still
 * correct, so that late usage of a customer who was no member of them gets its own period's invoice.
 *
 * The fan-out is a chain of steps on the invoice queue, one page per step, so that it takes as
 * long as it must for any number of customers while every step stays short: the customers (a
 * scan), then the customers with usage in the period and in each period before it that the run may
 * correct (the byPeriod index). The run record keeps the position, and one step message at a time
 * holds it (its token); a step reads its page and pins it on the position, takes the page's
 * customers into the run, enqueues their jobs, SENDS the next step (a new token) and only then moves
 * the position to it with a conditional write. So:
 * - a crash before the position moved leaves the step's message to be delivered again: it takes
 *   the pinned page's customers again (taking a member is idempotent, and one this step took
 *   already gets its job again) and sends another next step; the one it sent before finds the
 *   position moved elsewhere and stops;
 * - a crash after it moved leaves the next step in the queue; the redelivered step finds the
 *   position moved and stops;
 * - two copies of a step (SQS delivers at least once) both read the page, but only one moves the
 *   position; the next step the other sent stops. There is never more than one chain.
 * A next step that arrives before its sender moved the position (its `after` still holds it) waits
 * a little for it, then goes back to the queue.
 */
export interface RunDeps {
  customers: Pick<CustomerRepository, 'list'>;
  usageIndex: UsageIndex;
  runs: InvoiceRunRepository;
  invoiceJobs: InvoiceJobQueue;
  epoch: Pick<UsageEpoch, 'earliest'>;
  clock: Clock;
  /** A period is invoiced only this long after it ends (default 1 hour). */
  graceMs: number;
  /** Late events are accepted this long (the de-duplication window); after it a period is final. */
  correctionWindowMs: number;
  /** Customers per fan-out step (default 1,000). */
  fanOutPageSize?: number;
  /** How a step waits for a position its sender has not recorded yet (tests pass a quicker one). */
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_FAN_OUT_PAGE_SIZE = 1000;
/** Customers of a page whose jobs are enqueued together. */
const JOB_SLICE = 100;
/** Looks at a position its sender has not recorded yet: after 50, 100, ... 1,600 ms (3.1 s in all). */
const POSITION_WAITS_MS = [50, 100, 200, 400, 800, 1600];

type RunStatus = 'starting' | 'running' | 'completed';

export function runView(run: InvoiceRun) {
  const finished = run.done + run.skipped + run.failed + run.waiting;
  const status: RunStatus = run.fannedOut !== true ? 'starting' : finished >= run.total ? 'completed' : 'running';
  return {
    period: run.period,
    status,
    total: run.total,
    done: run.done,
    skipped: run.skipped,
    failed: run.failed,
    waiting: run.waiting,
    corrections: run.corrections,
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

/** The pages a run's fan-out walks: every customer, then those with usage in the period and each one it may correct. */
function fanOutSources(deps: RunDeps, period: Period): string[] {
  const sources = ['customers', `usage:${period.key}`];
  const lookback = correctionLookback(deps.correctionWindowMs, deps.graceMs);
  for (let p = period.previous(), i = 0; i < lookback; i++, p = p.previous()) sources.push(`usage:${p.key}`);
  return sources;
}

/**
 * Starts (or restarts) a run's fan-out: records the run with its position at the first page and
 * enqueues the first step. What the monthly schedule and POST /invoice-runs do; it takes two
 * writes, however many customers there are.
 */
export async function beginInvoiceRun(deps: RunDeps, period: Period): Promise<{ period: string; chain: string }> {
  checkClosed(deps, period);
  const token = randomUUID();
  const chain = `${period.key}:${token}`;
  // Recorded before the step is sent, so the step always finds it; if the send fails the caller
  // retries and a new start replaces this one.
  await deps.runs.beginFanOut(period.key, deps.clock.now().toISOString(), { token, chain, source: 'customers', page: 0 });
  await deps.invoiceJobs.enqueue([{ v: 1, period: period.key, action: 'start_run', token }]);
  return { period: period.key, chain };
}

/**
 * What the schedule does when it fires (hourly in the first days of a month): start the run of the
 * month that ended before it fired, once that month has closed (its end plus the grace). A run that
 * exists already (started by an earlier firing or by hand, finished or not) is left alone: the
 * schedule never restarts a finished run, and never reaches back to the month before last, whatever
 * the grace. A month whose run the schedule did not start by the last firing of the days it fires
 * on stays for an operator (POST /invoice-runs); the alarm on runs that failed says so.
 */
export async function scheduledInvoiceRun(deps: RunDeps, firedAt: Date): Promise<{ period: string; started: boolean; reason?: string }> {
  const period = Period.containing(firedAt).previous();
  const closes = period.end.getTime() + deps.graceMs;
  if (firedAt.getTime() < closes) return { period: period.key, started: false, reason: `not closed until ${new Date(closes).toISOString()}` };
  if (await deps.runs.exists(period.key)) return { period: period.key, started: false, reason: 'its run exists already' };
  await beginInvoiceRun(deps, period);
  return { period: period.key, started: true };
}

export type FanOutOutcome =
  { period: string; stale: true } | { period: string; stale?: false; source: string; page: number; members: number; enqueued: number; fannedOut: boolean };

/** One step of a run's fan-out (a `start_run` job from the invoice queue); a job without a token starts the fan-out. */
export async function fanOutInvoiceRun(deps: RunDeps, job: RunStepJob): Promise<FanOutOutcome> {
  const period = Period.parse(job.period);
  if (job.token === undefined) {
    await beginInvoiceRun(deps, period);
    return { period: period.key, source: 'customers', page: 0, members: 0, enqueued: 0, fannedOut: false };
  }
  const at = await positionOf(deps, period.key, job.token, job.after);
  if (!at) return { period: period.key, stale: true };

  const page = at.pinned ?? (await deps.runs.pinFanOutPage(period.key, at.token, await readPage(deps, at, deps.fanOutPageSize ?? DEFAULT_FAN_OUT_PAGE_SIZE)));
  if (!page) return { period: period.key, stale: true };
  const take = { chain: at.chain, step: at.token };
  const usageOf = at.source.startsWith('usage:') ? at.source.slice('usage:'.length) : undefined;
  const resumes = usageOf !== undefined && usageOf !== period.key && (await deps.runs.exists(usageOf)) ? usageOf : undefined;
  let enqueued = 0;
  // A slice at a time, so that the first invoices start while the rest of the page is taken.
  for (let i = 0; i < page.ids.length; i += JOB_SLICE) {
    const ids = page.ids.slice(i, i + JOB_SLICE);
    const own = await deps.runs.takeMembers(period.key, ids, { ...take, again: ['pending', 'failed', 'waiting'] });
    const jobs: InvoiceJob[] = own.map((customerId) => ({ v: 1, period: period.key, customerId }));
    if (resumes !== undefined) {
      // Resume that earlier run: customers whose usage there came after its fan-out become members.
      // A pending member is asked again only if a chain of this run took it (a restarted run whose
      // earlier step died between adding it and enqueueing its job); the earlier run owns the rest.
      const again = await deps.runs.takeMembers(resumes, ids, { ...take, again: ['pending'], againIfTakenBy: `${period.key}:` });
      jobs.push(...again.map((customerId) => ({ v: 1 as const, period: resumes, customerId })));
    }
    await deps.invoiceJobs.enqueue(jobs);
    enqueued += jobs.length;
  }

  const sources = fanOutSources(deps, period);
  const source = page.cursor !== undefined ? at.source : sources[sources.indexOf(at.source) + 1];
  const outcome = { period: period.key, source: at.source, page: at.page, members: page.ids.length, enqueued };
  if (source === undefined) {
    await deps.runs.endFanOut(period.key, at.token);
    return { ...outcome, fannedOut: true };
  }
  const token = randomUUID();
  await deps.invoiceJobs.enqueue([{ v: 1, period: period.key, action: 'start_run', token, after: at.token }]);
  const next: FanOutPosition = { token, after: at.token, chain: at.chain, source, page: at.page + 1 };
  if (source === at.source) next.cursor = page.cursor;
  // False: a copy of this step moved it first, and the step just sent will stop.
  await deps.runs.advanceFanOut(period.key, at.token, next);
  return { ...outcome, fannedOut: false };
}

/** The position if it is this step's; undefined if the chain moved on without it. */
async function positionOf(deps: RunDeps, period: string, token: string, after: string | undefined): Promise<FanOutPosition | undefined> {
  for (const waitMs of [...POSITION_WAITS_MS, undefined]) {
    const at = await deps.runs.fanOutPosition(period);
    if (at?.token === token) return at;
    // Still the sender's: it sent this step and has not moved the position yet (or died first).
    if (after === undefined || at?.token !== after) return undefined;
    if (waitMs === undefined) throw new Error(`fan-out step ${token} of ${period}: its sender ${after} has not recorded it yet; trying again later`);
    await (deps.sleep ?? sleep)(waitMs);
  }
  return undefined;
}

async function readPage(deps: RunDeps, at: FanOutPosition, limit: number): Promise<IdPage> {
  if (at.source === 'customers') {
    const page = await deps.customers.list(limit, at.cursor);
    return { ids: page.items.map((c) => c.id), cursor: page.lastId };
  }
  return deps.usageIndex.customersWithUsage(at.source.slice('usage:'.length), { cursor: at.cursor, limit });
}

export const invoiceRunInput = z.object({ period: z.string().regex(PERIOD_PATTERN, 'must be YYYY-MM'), force: z.boolean().optional() }).strict();

/**
 * POST /invoice-runs: checks the period and starts the fan-out (its steps run on the invoice
 * queue), so that the API answers at once however many customers there are.
 */
export async function startInvoiceRunByHand(deps: RunDeps, principal: Principal, input: z.infer<typeof invoiceRunInput>) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = Period.parse(input.period);
  checkClosed(deps, period);
  if (input.force !== true && !(await deps.runs.exists(period.key))) await checkNewRun(deps, period);
  await beginInvoiceRun(deps, period);
  return { ...runView((await deps.runs.get(period.key))!), starting: true as const };
}

export async function getInvoiceRun(deps: RunDeps, principal: Principal, periodText: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const period = parsePeriodInput(periodText);
  const run = await deps.runs.get(period.key);
  if (!run) throw new NotFoundError('invoice_run_not_found', `no invoice run for ${period.key}`);
  return runView(run);
}
