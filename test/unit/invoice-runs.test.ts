import catalogJson from '../../catalog/catalog.json';
import { invoiceCustomer } from '../../lib/app/invoicing/job';
import { beginInvoiceRun, fanOutInvoiceRun, runView } from '../../lib/app/invoicing/runs';
import type { InvoiceJob } from '../../lib/app/messages';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { Period } from '../../lib/domain/period';
import { MemoryClock, memoryBilling } from '../support/memory';

/**
 * The fan-out of an invoice run as a chain of steps on the invoice queue, one page per step, on
 * in-memory adapters with pages of 2: every member once, every job enqueued, the run completes,
 * and the chain stays one chain however its steps are crashed, duplicated or redelivered.
 */
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const sep = Period.parse('2026-09');
const oct = Period.parse('2026-10');
const HOUR = 3_600_000;

type Step = Extract<InvoiceJob, { action: 'start_run' }>;
const isStep = (job: InvoiceJob): job is Step => 'action' in job;

function world() {
  const clock = new MemoryClock(new Date(oct.end.getTime() + HOUR));
  const deps = { ...memoryBilling(catalog, clock), fanOutPageSize: 2, sleep: () => new Promise<void>((r) => setImmediate(r)) };
  const { customers, ledger, runs, invoiceJobs: queue } = deps;
  // Seven customers; usage in October for two of them and for one nobody created; September usage
  // for one customer and for one more nobody created.
  for (let i = 0; i < 7; i++)
    customers.byId.set(`c${i}`, { id: `c${i}`, name: `c${i}`, planId: 'default', createdAt: sep.start.toISOString(), updatedAt: sep.start.toISOString() });
  ledger.set('c1', oct.key, { api_calls: '20000' });
  ledger.set('c4', oct.key, { api_calls: '30000' });
  ledger.set('x_unknown', oct.key, { api_calls: '40000' });
  ledger.set('c2', sep.key, { api_calls: '50000' });
  ledger.set('y_unknown', sep.key, { api_calls: '60000' });
  const members = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'x_unknown', 'y_unknown'];

  /** Every step's outcome, in order, and the customer jobs taken off the queue. */
  const steps: { job: Step; outcome: Awaited<ReturnType<typeof fanOutInvoiceRun>> | 'threw' }[] = [];
  const jobs: { period: string; customerId: string }[] = [];
  const take = (): InvoiceJob | undefined => queue.jobs.shift();
  /** Takes the first step off the queue, leaving customer jobs where they are. */
  const nextStep = (): Step => queue.jobs.splice(queue.jobs.findIndex(isStep), 1)[0] as Step;
  async function step(job: Step): Promise<void> {
    try {
      steps.push({ job, outcome: await fanOutInvoiceRun(deps, job) });
    } catch {
      steps.push({ job, outcome: 'threw' });
      queue.jobs.push(job); // SQS delivers it again after the visibility timeout
    }
  }
  /** Runs the chain to its end: steps as they come, customer jobs collected (not invoiced). */
  async function fanOut(onStep: (job: Step) => Promise<void> = step): Promise<void> {
    for (let job = take(), guard = 0; job !== undefined; job = take(), guard++) {
      if (guard > 500) throw new Error('the chain never ended');
      if (isStep(job)) await onStep(job);
      else jobs.push(job);
    }
  }
  const jobsFor = (period: string) =>
    jobs
      .filter((j) => j.period === period)
      .map((j) => j.customerId)
      .sort();
  const memberIds = (period: string) => [...(runs.members.get(period)?.keys() ?? [])].sort();
  const advanced = () => steps.filter((s) => s.outcome !== 'threw' && !s.outcome.stale).length;
  return { deps, runs, queue, steps, jobs, members, step, nextStep, fanOut, jobsFor, memberIds, advanced };
}

describe('the fan-out of an invoice run', () => {
  it("walks the customers, then each period's usage, one page per step: every member once, one job each, then the run is running and completes", async () => {
    const w = world();
    await beginInvoiceRun(w.deps, oct);
    expect(runView((await w.runs.get(oct.key))!).status).toBe('starting');

    await w.fanOut();

    expect(w.memberIds(oct.key)).toEqual(w.members);
    expect(w.jobsFor(oct.key)).toEqual(w.members);
    // Customers: 4 pages of 2; October's usage: 2 pages; September and August: 1 page each.
    expect(w.steps.map((s) => s.outcome !== 'threw' && !s.outcome.stale && [s.outcome.source, s.outcome.members])).toEqual([
      ['customers', 2],
      ['customers', 2],
      ['customers', 2],
      ['customers', 1],
      [`usage:${oct.key}`, 2],
      [`usage:${oct.key}`, 1],
      [`usage:${sep.key}`, 2],
      ['usage:2026-08', 0],
    ]);
    const run = runView((await w.runs.get(oct.key))!);
    expect(run).toMatchObject({ status: 'running', total: 9, pending: 9 });

    for (const job of w.jobs) await invoiceCustomer(w.deps, job);
    expect(runView((await w.runs.get(oct.key))!)).toMatchObject({ status: 'completed', total: 9, pending: 0, failed: 0 });
  });

  it('resumes the earlier runs: a customer whose usage there came after their fan-out gets its own job, members are not asked again', async () => {
    const w = world();
    w.deps.clock.at = new Date(sep.end.getTime() + HOUR);
    w.deps.ledger.counters.get('y_unknown')!.delete(sep.key); // not there yet when September fanned out
    await beginInvoiceRun(w.deps, sep);
    await w.fanOut();
    expect(w.jobsFor(sep.key)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    w.jobs.length = 0;
    w.deps.ledger.set('y_unknown', sep.key, { api_calls: '60000' }); // late usage for September

    w.deps.clock.at = new Date(oct.end.getTime() + HOUR);
    await beginInvoiceRun(w.deps, oct);
    await w.fanOut();

    expect(w.jobsFor(sep.key)).toEqual(['y_unknown']);
    expect(w.memberIds(sep.key)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'y_unknown']);
    expect(w.jobsFor(oct.key)).toEqual(w.members);
  });

  it('survives a crash between pages (the next step sent, the position not moved): the page is done again, the orphaned step stops', async () => {
    const w = world();
    const advance = w.runs.advanceFanOut.bind(w.runs);
    let calls = 0;
    jest.spyOn(w.runs, 'advanceFanOut').mockImplementation(async (...args) => {
      if (++calls === 3) throw new Error('injected: the worker died before moving the position');
      return advance(...args);
    });
    await beginInvoiceRun(w.deps, oct);

    await w.fanOut();

    expect(w.memberIds(oct.key)).toEqual(w.members);
    expect(new Set(w.jobsFor(oct.key))).toEqual(new Set(w.members));
    // Only the crashed page's two customers were enqueued twice (at least once is what SQS promises anyway).
    expect(w.jobsFor(oct.key).length).toBe(w.members.length + 2);
    const orphan = w.steps.find((s) => s.outcome !== 'threw' && s.outcome.stale)!;
    expect(orphan.job.after).toBe(w.steps.find((s) => s.outcome === 'threw')!.job.token);
    expect(w.advanced()).toBe(8);
    expect((await w.runs.get(oct.key))!.fannedOut).toBe(true);
  });

  it('takes the same customers in every attempt of a step, however the table changed in between: none is left without its job', async () => {
    const w = world();
    const enqueue = w.queue.enqueue.bind(w.queue);
    let failed = false;
    jest.spyOn(w.queue, 'enqueue').mockImplementation(async (jobs) => {
      if (!failed && jobs.some((j) => 'customerId' in j)) {
        failed = true;
        // The step took c0 and c1, then died; a customer that sorts first is created before it is delivered again.
        w.deps.customers.byId.set('a0', { ...w.deps.customers.byId.get('c0')!, id: 'a0' });
        throw new Error('injected: the worker died before enqueueing the jobs');
      }
      return enqueue(jobs);
    });
    await beginInvoiceRun(w.deps, oct);

    await w.fanOut();

    expect(failed).toBe(true);
    expect(w.memberIds(oct.key)).toEqual(w.members);
    expect(w.jobsFor(oct.key)).toEqual(w.members);
  });

  it('survives a crash after the position moved: the redelivered step finds it moved and stops, adding and enqueueing nothing', async () => {
    const w = world();
    const advance = w.runs.advanceFanOut.bind(w.runs);
    let calls = 0;
    jest.spyOn(w.runs, 'advanceFanOut').mockImplementation(async (...args) => {
      const moved = await advance(...args);
      if (++calls === 2) throw new Error('injected: the worker died after moving the position');
      return moved;
    });
    await beginInvoiceRun(w.deps, oct);

    await w.fanOut();

    expect(w.jobsFor(oct.key)).toEqual(w.members);
    expect(w.steps.filter((s) => s.outcome !== 'threw' && s.outcome.stale)).toHaveLength(1);
    // Eight pages: seven steps ended well, one died after moving on (its redelivery stopped).
    expect(w.steps.filter((s) => s.outcome === 'threw')).toHaveLength(1);
    expect(w.advanced()).toBe(7);
  });

  it('keeps one chain when every step is delivered twice at once: one of each pair moves on, the other stops', async () => {
    const w = world();
    await beginInvoiceRun(w.deps, oct);

    await w.fanOut((job) => Promise.all([w.step(job), w.step({ ...job })]).then(() => undefined));

    expect(w.memberIds(oct.key)).toEqual(w.members);
    expect(new Set(w.jobsFor(oct.key))).toEqual(new Set(w.members));
    // Both copies of a step read its page; only one moved the position on, so every page was
    // continued once: the other copy's next step found the position moved and stopped.
    const proceeded = w.steps.filter((s) => s.outcome !== 'threw' && !s.outcome.stale);
    expect(new Set(proceeded.map((s) => s.job.token)).size).toBe(8);
    expect(w.steps.filter((s) => s.outcome !== 'threw' && s.outcome.stale).length).toBeGreaterThan(0);
    expect((await w.runs.get(oct.key))!.fannedOut).toBe(true);
  });

  it('ignores a step delivered again after the chain moved on: no member added, no job, no next step', async () => {
    const w = world();
    await beginInvoiceRun(w.deps, oct);
    const first = w.queue.jobs[0] as Step;
    await w.fanOut();
    const before = { jobs: w.jobs.length, steps: w.steps.length };

    await w.step(first);

    expect(w.steps[before.steps]!.outcome).toMatchObject({ stale: true });
    expect(w.queue.jobs).toEqual([]);
    expect(w.memberIds(oct.key)).toEqual(w.members);
  });

  it('lets a step that arrives before its sender recorded it wait for the position, then go on', async () => {
    const w = world();
    const advance = w.runs.advanceFanOut.bind(w.runs);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let calls = 0;
    jest.spyOn(w.runs, 'advanceFanOut').mockImplementation(async (...args) => {
      if (++calls === 1) await held; // the sender is slow to record the position
      return advance(...args);
    });
    await beginInvoiceRun(w.deps, oct);
    const sending = w.step(w.nextStep());
    await new Promise((r) => setImmediate(r));
    const next = w.queue.jobs.pop() as Step;
    expect(next.after).toBeDefined();

    const early = w.step(next); // looks for the position while the sender still holds it
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([sending, early]);
    await w.fanOut();

    expect(w.steps.filter((s) => s.outcome === 'threw')).toEqual([]);
    expect(w.jobsFor(oct.key)).toEqual(w.members);
    expect(w.advanced()).toBe(8);
  });

  it('restarts the fan-out when the run is started again: the old chain stops, members stay single, pending ones get a job per start', async () => {
    const w = world();
    await beginInvoiceRun(w.deps, oct);
    for (let i = 0; i < 3; i++) await w.step(w.nextStep());
    const oldStep = w.queue.jobs.find(isStep)!;

    await beginInvoiceRun(w.deps, oct);
    await w.fanOut();

    expect(w.steps.find((s) => s.job.token === oldStep.token)!.outcome).toMatchObject({ stale: true });
    expect(w.memberIds(oct.key)).toEqual(w.members);
    // c0..c5 were taken by the first chain (still pending) and again by the second.
    expect(w.jobsFor(oct.key)).toEqual([...w.members, 'c0', 'c1', 'c2', 'c3', 'c4', 'c5'].sort());
    expect((await w.runs.get(oct.key))!.fannedOut).toBe(true);
  });

  it('gives its job to a customer that a step added to an earlier run and died before enqueueing, when the run is started again', async () => {
    const w = world();
    w.deps.clock.at = new Date(sep.end.getTime() + HOUR);
    w.deps.ledger.counters.get('y_unknown')!.delete(sep.key);
    await beginInvoiceRun(w.deps, sep);
    await w.fanOut();
    w.jobs.length = 0;
    w.deps.ledger.set('y_unknown', sep.key, { api_calls: '60000' });
    w.deps.clock.at = new Date(oct.end.getTime() + HOUR);
    const enqueue = w.queue.enqueue.bind(w.queue);
    jest.spyOn(w.queue, 'enqueue').mockImplementation(async (jobs) => {
      if (jobs.some((j) => j.period === sep.key)) throw new Error('injected: the worker died before enqueueing the jobs');
      return enqueue(jobs);
    });
    await beginInvoiceRun(w.deps, oct);
    await w.fanOut(async (job) => {
      await w.step(job);
      // The step died; before SQS delivers it again, someone starts the run again.
      if (w.steps.at(-1)!.outcome === 'threw') {
        jest.mocked(w.queue.enqueue).mockImplementation(enqueue);
        await beginInvoiceRun(w.deps, oct);
      }
    });

    expect(w.memberIds(sep.key)).toContain('y_unknown');
    expect(w.jobsFor(sep.key)).toEqual(['y_unknown']);
    expect((await w.runs.get(oct.key))!.fannedOut).toBe(true);
  });
  it('puts a failed member back to pending when the run is started again: the run is running, not completed, until its job ends', async () => {
    const w = world();
    await beginInvoiceRun(w.deps, oct);
    await w.fanOut();
    for (const job of w.jobs) {
      if (job.customerId === 'c3') await w.runs.finish(oct.key, 'c3', 'failed', 'injected: Stripe was down');
      else await invoiceCustomer(w.deps, job);
    }
    // c1, c4 and x_unknown have no Stripe customer: invoiced, recorded not_synced, waiting for one.
    expect(runView((await w.runs.get(oct.key))!)).toMatchObject({ status: 'completed', failed: 1, waiting: 3, pending: 0 });

    w.jobs.length = 0;
    await beginInvoiceRun(w.deps, oct);
    await w.fanOut();
    // The failed member is asked again, and so are the waiting ones (the run sends them once linked).
    expect(w.jobsFor(oct.key)).toEqual(['c1', 'c3', 'c4', 'x_unknown']);
    expect(runView((await w.runs.get(oct.key))!)).toMatchObject({ status: 'running', failed: 0, waiting: 0, pending: 4 });

    for (const job of w.jobs) await invoiceCustomer(w.deps, job);
    expect(runView((await w.runs.get(oct.key))!)).toMatchObject({ status: 'completed', failed: 0, waiting: 3, pending: 0, total: 9 });
  });
});
