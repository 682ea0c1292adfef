import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { queueDepth as depthOf, waitQuiet } from '../../local/runtime/queues';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Stripe from 'stripe';
import { startStack, type Stack } from '../../local/runtime/stack';
import { modelPrice, type ModelPlan } from '../model/reference';
import { newClientStats, SoakHttp, type ClientPolicy, type ClientStats } from './client';
import { AGGREGATOR_THROTTLE_STEPS, CRASH_STEPS, Faults, type FaultRates } from './faults';
import { DuplicateBounds, METERS, scaled, UsageModel } from './model';
import { sequence } from './random';
import { customerId, eventAt, RequestPlanner, type WorkloadShape } from './workload';

/**
 * The soak (`npm run soak`, and a smaller one in `npm test`): the real local stack under load and
 * every fault at once, then an exact account. See README "Tests" and docs/exactly-once.md.
 *
 * 1. setup: ingest keys for the clients, customers (most linked to Stripe customers in the fake,
 *    some not, some never created; a third with a budget);
 * 2. previous period: the clients send its events (with duplicates, retries, lost answers...);
 *    wait until counted;
 * 3. current period: the clients send its events while the previous period's invoice run goes,
 *    with Stripe failing 10% of requests;
 * 4. everything settles (queues drained, DLQs redriven, invoice failures re-run, alerts sent);
 * 5. the faults stop and the account is taken through the API: usage per customer, period and
 *    meter against the model; invoices against the model's prices and the Stripe fake; alerts
 *    claimed against thresholds and against what reached the alerts inbox.
 */
export interface SoakConfig extends FaultRates, ClientPolicy {
  /** Events sent in first attempts, duplicates included. */
  events: number;
  customers: number;
  clients: number;
  maxRequestEvents: number;
  duplicateRate: number;
  /** Share of the distinct events that belong to the previous period (sent first, then invoiced). */
  previousShare: number;
  /**
   * The phases in which every crash step and every aggregator throttle step is made to happen at
   * least once (on top of the rates), spread over the invocations.
   */
  everyStepIn: ('previous' | 'current')[];
  /** Stripe requests failing (500, 429, timeout after commit: a third each). */
  stripeFailureRate: number;
  seed: number;
  pollers: number;
  visibilityTimeoutSeconds: number;
  /**
   * The clients wait while the usage queue holds more visible messages than this: the aggregator
   * then gets batches of a few messages, which stay well under its 30 s timeout even when DynamoDB
   * Local shares 2 busy cores (a batch of ten 500-event messages may not).
   */
  maxQueuedMessages: number;
  /** Powertools log level of the functions (their error logs are the evidence when a check fails). */
  logLevel: string;
  /** Progress lines while the soak runs (none by default). */
  progress?: (line: string) => void;
}

export const DEFAULTS: SoakConfig = {
  events: 1_000_000,
  customers: 300,
  clients: 4,
  maxRequestEvents: 1000,
  duplicateRate: 0.1,
  previousShare: 0.2,
  everyStepIn: ['previous', 'current'],
  stripeFailureRate: 0.1,
  seed: 20261126,
  // Two concurrent invocations per queue, as `npm start` runs them.
  pollers: 2,
  // Above the aggregator's 30 s timeout (deployed: 6 times it), so no batch is redelivered while it runs.
  visibilityTimeoutSeconds: 60,
  maxQueuedMessages: 4,
  logLevel: 'SILENT',
  crashRate: 0.01,
  messageThrottleRate: 0.01,
  throttleRate: 0.01,
  deliverTwiceRate: 0.02,
  idempotencyKeyRate: 0.5,
  retrySameKeyRate: 0.6,
  networkErrorRate: 0.02,
  resendAfter202Rate: 0.02,
  maxAttempts: 30,
};

export interface SoakReport {
  ok: boolean;
  failures: string[];
  figures: [string, string][];
  seconds: number;
}

const ADMIN = 'local-admin-key';
const FIXTURE_CATALOG = join(__dirname, '..', 'fixtures', 'catalog.json');
const MONTH = (t: number) => new Date(t).toISOString().slice(0, 7);
const DAY = 86_400_000;

/** Half-open UTC months: the one containing `now` and the one before it. */
function periods(now: number) {
  const d = new Date(now);
  const currentStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const previousStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  return {
    // Ingest refuses events older than 35 days: keep a day of margin for a long run.
    previous: { key: MONTH(previousStart), from: Math.max(previousStart, now - 34 * DAY), to: currentStart - 1 },
    current: { key: MONTH(currentStart), from: currentStart, to: Math.max(currentStart, now - 60_000) },
  };
}

type Kind = 'linked' | 'unlinked' | 'uncreated';
interface CustomerSetup {
  id: string;
  kind: Kind;
  stripeId?: string;
  budgetCents?: bigint;
}
function customerSetup(n: number): CustomerSetup {
  const kind: Kind = n % 20 === 7 ? 'uncreated' : n % 20 === 13 ? 'unlinked' : 'linked';
  const budgets = [10n, 25n, 60n, 150n, 400n];
  return { id: customerId(n), kind, budgetCents: kind !== 'uncreated' && n % 3 === 0 ? budgets[(n / 3) % budgets.length]! * 100n : undefined };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const cents = (text: string) => scaled(text) / 10n ** 10n;
const money = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`;
const n = (x: number | bigint) => x.toLocaleString('en-US');

export async function runSoak(overrides: Partial<SoakConfig> = {}): Promise<SoakReport> {
  const cfg: SoakConfig = { ...DEFAULTS, ...overrides };
  const started = performance.now();
  // Poller errors go to the faults once they exist (the stack starts before them).
  const pollerErrors: { sink?: Faults; early: unknown[] } = { early: [] };
  const stack = await startStack({
    port: 0,
    visibilityTimeoutSeconds: cfg.visibilityTimeoutSeconds,
    pollerConcurrency: cfg.pollers,
    // The alert sweeper every 6 s instead of every minute.
    schedules: true,
    scheduleScale: 0.1,
    onPollerError: (err) => (pollerErrors.sink ? pollerErrors.sink.pollerError(err) : pollerErrors.early.push(err)),
    env: {
      CATALOG_FILE: FIXTURE_CATALOG,
      INVOICE_GRACE_MINUTES: '0',
      // Shorter than the fake's hold of a "timeout after commit", so the worker times out and retries.
      STRIPE_TIMEOUT_MS: '1000',
      POWERTOOLS_LOG_LEVEL: cfg.logLevel,
    },
  });
  try {
    return await soak(stack, cfg, started, pollerErrors);
  } finally {
    await stack.stop();
  }
}

async function soak(stack: Stack, cfg: SoakConfig, started: number, pollerErrors: { sink?: Faults; early: unknown[] }): Promise<SoakReport> {
  const log = cfg.progress ?? (() => undefined);
  const failures: string[] = [];
  const fail = (text: string) => {
    if (failures.length < 200) failures.push(text);
  };
  const runId = randomBytes(4).toString('hex');
  const random = sequence(cfg.seed, 1);
  const stats: ClientStats = newClientStats();
  const http = new SoakHttp(stack.url, stats, random);
  const window = periods(Date.now());
  const distinct = Math.round(cfg.events * (1 - cfg.duplicateRate));
  const shape: WorkloadShape = {
    seed: cfg.seed,
    runId,
    customers: cfg.customers,
    previousEvents: Math.round(distinct * cfg.previousShare),
    currentEvents: distinct - Math.round(distinct * cfg.previousShare),
    previous: window.previous,
    current: window.current,
  };
  const model = new UsageModel(distinct);
  const bounds = new DuplicateBounds();
  const queues = stack.resources.queues;
  const usageQueue = queues.UsageQueue!.url;
  const usageDlq = queues.UsageDLQ!.url;
  const invoiceQueue = queues.InvoiceQueue!.url;
  const invoiceDlq = queues.InvoiceDLQ!.url;
  const catalog = JSON.parse(readFileSync(FIXTURE_CATALOG, 'utf8')) as { plans: (ModelPlan & { charges: { meter: string; included?: string }[] })[] };
  const plan = catalog.plans.find((p) => p.id === 'default')!;

  // --- setup (before the faults: it is not what is tested) -----------------------------------
  const stripe = new Stripe('sk_test_local', { host: '127.0.0.1', port: stack.stripe.port, protocol: 'http' });
  const customers = Array.from({ length: cfg.customers }, (_, i) => customerSetup(i));
  const keys = await mapLimit(
    Array.from({ length: cfg.clients }, (_, i) => i),
    4,
    async (i) => (await http.api<{ key: string }>('POST', '/api/v1/api-keys', ADMIN, { name: `soak-client-${i}`, scopes: ['ingest'] })).key,
  );
  await mapLimit(customers, 8, async (c) => {
    if (c.kind === 'uncreated') return;
    if (c.kind === 'linked') c.stripeId = (await stripe.customers.create({ name: c.id })).id;
    const budget = c.budgetCents === undefined ? {} : { budget: { amount: money(c.budgetCents) } };
    await http.api('PUT', `/api/v1/customers/${c.id}`, ADMIN, { name: `Soak ${c.id}`, ...(c.stripeId ? { stripeCustomerId: c.stripeId } : {}), ...budget });
  });
  const setupSeconds = (performance.now() - started) / 1000;
  log(
    `setup done in ${setupSeconds.toFixed(1)} s: ${cfg.customers} customers, ${cfg.clients} ingest keys; periods ${window.previous.key} and ${window.current.key}`,
  );

  const faults = new Faults(stack, cfg, cfg.seed, cfg.customers);
  pollerErrors.sink = faults;
  for (const err of pollerErrors.early) faults.pollerError(err);
  faults.install();

  const queueDepth = (url: string) => depthOf(stack.sqs, url);
  const visibleMessages = async (url: string) =>
    Number(
      (await stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes
        ?.ApproximateNumberOfMessages ?? 0,
    );
  const pollerOf = (url: string) => stack.pollers.find((p) => p.queueUrl === url)!;
  const drain = (url: string, timeoutMs: number) => waitQuiet(stack.sqs, url, () => pollerOf(url).idle, { everyMs: 250, timeoutMs, orThrow: true });
  const takeAll = async (url: string): Promise<string[]> => {
    const bodies: string[] = [];
    for (;;) {
      const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) return bodies;
      bodies.push(...messages.map((m) => m.Body ?? ''));
      await stack.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
      );
    }
  };
  let usageDlqRedriven = 0;
  /** Drains the usage queue, then redrives whatever reached the DLQ (as an operator would) until nothing does. */
  const settleUsage = async (timeoutMs: number) => {
    for (let round = 0; round < 5; round++) {
      await drain(usageQueue, timeoutMs);
      const dead = await takeAll(usageDlq);
      if (dead.length === 0) return;
      usageDlqRedriven += dead.length;
      log(`redriving ${dead.length} messages from the usage DLQ`);
      for (const body of dead) await stack.sqs.send(new SendMessageCommand({ QueueUrl: usageQueue, MessageBody: body }));
    }
    fail('usage DLQ still receiving messages after 5 redrives');
  };

  const lastRun: { status?: RunStatus } = {};
  const progress = setInterval(() => {
    void Promise.all([queueDepth(usageQueue), queueDepth(usageDlq), queueDepth(invoiceQueue), queueDepth(invoiceDlq)]).then(
      ([depth, dlq, invoices, invoiceDead]) =>
        log(
          `${((performance.now() - started) / 1000).toFixed(0)} s: ${n(stats.requests)} requests, ${n(stats.eventsAccepted)} events accepted, ` +
            `usage queue ${depth}, DLQ ${dlq}; invoice queue ${invoices}, DLQ ${invoiceDead}, run ${lastRun.status ? JSON.stringify(lastRun.status) : '-'}; ` +
            `slowest invocation ${(faults.stats.aggregatorSlowest / 1000).toFixed(0)} s; 503s ${stats.retries.status503}, crashes ${faults.stats.crashedInvocations}, ` +
            `aggregator throttles ${Object.values(faults.stats.aggregatorThrottles).reduce((a, b) => a + b, 0)}, other throttles ${faults.stats.otherThrottles + faults.stats.invoiceWorkerThrottles}`,
        ),
      () => undefined,
    );
  }, 15_000);

  let sendingSeconds = 0;
  const sendAll = async (planner: RequestPlanner) => {
    const from = performance.now();
    await Promise.all(
      keys.map(async (bearer) => {
        for (let plan = planner.take(); plan; plan = planner.take()) {
          while ((await visibleMessages(usageQueue)) > cfg.maxQueuedMessages) await sleep(200);
          const events = plan.indices.map((i) => eventAt(shape, i));
          await http.sendEvents(plan, events, { bearer, runId: `${runId}-${planner.phase}`, policy: cfg, model, bounds });
        }
      }),
    );
    sendingSeconds += (performance.now() - from) / 1000;
  };
  const plannerOpts = { maxRequestEvents: cfg.maxRequestEvents, duplicateRate: cfg.duplicateRate, random };

  try {
    // --- phase 1: the previous period ---------------------------------------------------------
    if (cfg.everyStepIn.includes('previous')) faults.armEveryStep();
    const t1 = performance.now();
    await sendAll(new RequestPlanner(shape, 'previous', plannerOpts));
    await settleUsage(30 * 60_000);
    const phase1Seconds = (performance.now() - t1) / 1000;
    log(`previous period counted in ${phase1Seconds.toFixed(1)} s`);

    // --- phase 2: the current period, while the previous one is invoiced -----------------------
    const t2 = performance.now();
    const stripeFrom = stack.stripe.stats().requests;
    const third = cfg.stripeFailureRate / 3;
    (['500', '429', 'timeout_after_commit'] as const).forEach((mode, k) =>
      // Rules are tried in turn: each rate is a third of the total among the requests left.
      stack.stripe.injectFailure({ path: '/v1/', mode, rate: third / (1 - k * third), holdMs: 2500 }),
    );
    if (cfg.everyStepIn.includes('current')) faults.armEveryStep();
    const run = http.api('POST', '/api/v1/invoice-runs', ADMIN, { period: window.previous.key });
    const sending = sendAll(new RequestPlanner(shape, 'current', plannerOpts));
    await run;
    const invoiceDlqBodies: string[] = [];
    let reruns = 0;
    const runDone = (async () => {
      for (let round = 0; ; round++) {
        const status = await waitRun(http, window.previous.key, lastRun, async () => {
          const dead = await takeAll(invoiceDlq);
          invoiceDlqBodies.push(...dead);
          return dead.length;
        });
        await drain(invoiceQueue, 10 * 60_000);
        invoiceDlqBodies.push(...(await takeAll(invoiceDlq)));
        if (status.failed === 0 || round >= 3) return status;
        // As an operator would: run the period again, which retries the failed customers.
        reruns++;
        log(`invoice run: ${status.failed} failed, running the period again`);
        await http.api('POST', '/api/v1/invoice-runs', ADMIN, { period: window.previous.key });
      }
    })();
    await sending;
    await settleUsage(30 * 60_000);
    const runStatus = await runDone;
    const phase2Seconds = (performance.now() - t2) / 1000;
    log(`current period counted and previous period invoiced in ${phase2Seconds.toFixed(1)} s`);

    // --- settle: alerts claimed but not yet sent go out through the sweeper ----------------------
    // An operator redrives the invoice DLQ too: a job that died there after its invoice was made
    // must change nothing (still one Stripe invoice per customer and period).
    const invoiceDlqRedriven = invoiceDlqBodies.length;
    for (const body of invoiceDlqBodies) await stack.sqs.send(new SendMessageCommand({ QueueUrl: invoiceQueue, MessageBody: body }));
    await drain(invoiceQueue, 10 * 60_000);
    const invoiceDlqAfterRedrive = await takeAll(invoiceDlq);
    if (invoiceDlqAfterRedrive.length)
      fail(`${invoiceDlqAfterRedrive.length} invoice jobs back in the DLQ after a redrive: ${invoiceDlqAfterRedrive.join(' ')}`);
    const alertsPendingLeft = await waitAlertsSent(stack, 5 * 60_000);
    if (alertsPendingLeft > 0) fail(`${alertsPendingLeft} alerts still pending after 5 minutes`);
    await settleUsage(10 * 60_000);
    const countedSeconds = (performance.now() - started) / 1000;
    faults.uninstall();
    stack.stripe.clearFailures();

    // --- the account ------------------------------------------------------------------------------
    const verify = await verifyAll({ stack, http, cfg, shape, model, bounds, customers, plan, faults, fail, runStatus });

    // Client-side expectations: nothing but 503 service_busy, nothing refused, nothing lost.
    for (const u of stats.unexpected) fail(`client: ${u}`);
    for (const code of Object.keys(stats.codes503)) if (code !== 'service_busy') fail(`503 with code ${code} (only throttling is injected)`);
    for (const [name, count] of Object.entries(faults.stats.unexpectedPollerErrors)) {
      fail(
        `${count} aggregator/invoice worker invocations failed with ${name}, not injected by the soak (e.g. ${faults.stats.unexpectedPollerErrorSamples.find((t) => t.startsWith(name)) ?? ''})`,
      );
    }
    if (stats.eventsAccepted !== stats.eventsSent) fail(`events accepted ${stats.eventsAccepted} != events sent ${stats.eventsSent}`);
    if (model.distinct !== distinct) fail(`distinct events accepted ${model.distinct} != ${distinct} sent`);
    // A step that never fired proves nothing. One armed again late may find no more of its calls
    // (an alert step once every threshold of the period has been crossed): it fired before.
    const pending = faults.pending();
    const neverCrashed = pending.crashes.filter((step) => faults.stats.crashes[step] === 0);
    const neverThrottled = pending.throttles.filter((step) => (faults.stats.aggregatorThrottles as Record<string, number>)[step] === 0);
    if (cfg.everyStepIn.length && neverCrashed.length) fail(`crash steps armed but never reached: ${neverCrashed.join('; ')}`);
    if (cfg.everyStepIn.length && neverThrottled.length) fail(`throttle steps armed but never reached: ${neverThrottled.join('; ')}`);
    if (stats.retries.status503 === 0) fail('no 503 was answered: the throttling of ingest was not exercised');
    if (faults.stats.deliveredTwice.usage === 0) fail('no usage message was delivered twice');
    if (stats.networkErrorsInjected.abortedInFlight + stats.networkErrorsInjected.answerDropped === 0) fail('no network error was injected');

    const seconds = (performance.now() - started) / 1000;
    const fs = faults.stats;
    // The invoice run's Stripe requests (the setup's customer creations came before the failure rules).
    const stripeRequests = stack.stripe.stats().requests - stripeFrom;
    const stripeLog = stripeRequests > 0 ? stack.stripe.requests.slice(-stripeRequests) : [];
    const injected = (mode: string) => stripeLog.filter((r) => r.injected === mode).length;
    const aggThrottles = Object.entries(fs.aggregatorThrottles);
    const figures: [string, string][] = [
      ['seed, run', `${cfg.seed}, ${runId}`],
      [
        'customers (linked to Stripe / not linked / never created)',
        `${cfg.customers} (${customers.filter((c) => c.kind === 'linked').length} / ${customers.filter((c) => c.kind === 'unlinked').length} / ${customers.filter((c) => c.kind === 'uncreated').length}), ${customers.filter((c) => c.budgetCents !== undefined).length} with a budget`,
      ],
      ['periods', `${window.previous.key} (${n(shape.previousEvents)} distinct events, then invoiced), ${window.current.key} (${n(shape.currentEvents)})`],
      ['clients, requests (first sends)', `${cfg.clients} clients, ${n(stats.requests)} requests of up to ${cfg.maxRequestEvents} events`],
      ['events sent (first sends)', n(stats.eventsSent)],
      [
        '  of which duplicates (same source and id re-sent in another request)',
        `${n(stats.duplicatesSent)} (${((100 * stats.duplicatesSent) / Math.max(1, stats.eventsSent)).toFixed(1)}%)`,
      ],
      ['events accepted (202)', n(stats.eventsAccepted)],
      ['distinct events accepted = counted', `${n(model.distinct)} = ${verify.countedOk ? 'yes, every counter exact' : 'NO'}`],
      ['duplicatesDropped (read back; client-side bounds)', `${n(verify.duplicatesRead)} (bounds ${n(verify.duplicatesLower)}..${n(verify.duplicatesUpper)})`],
      [
        'HTTP attempts',
        `${n(stats.attempts)}; answers ${Object.entries(stats.byStatus)
          .map(([s, k]) => `${s}: ${n(k)}`)
          .join(', ')}`,
      ],
      [
        'client retries by cause',
        `network error ${n(stats.retries.networkError)}, 503 ${n(stats.retries.status503)}, other 5xx ${n(stats.retries.otherStatus5xx)}`,
      ],
      [
        '  network errors injected',
        `${n(stats.networkErrorsInjected.abortedInFlight)} aborted in flight, ${n(stats.networkErrorsInjected.answerDropped)} answers dropped`,
      ],
      ['  retries with the same Idempotency-Key / without', `${n(stats.retriesWithSameKey)} / ${n(stats.retriesWithoutKey)}`],
      [
        'requests re-sent after their 202 (same key: replayed / without key)',
        `${stats.resentAfter202.sameKey} / ${stats.resentAfter202.withoutKey}; replayed answers ${stats.replayed}`,
      ],
      [
        '503 answers (codes)',
        `${n(stats.retries.status503)} (${
          Object.entries(stats.codes503)
            .map(([c, k]) => `${c}: ${k}`)
            .join(', ') || 'none'
        })`,
      ],
      ['5xx other than 503', n(stats.retries.otherStatus5xx)],
      [
        'aggregator invocations, crashed, slowest; invocations that hit their timeout (aggregator 30 s)',
        `${n(fs.aggregatorInvocations)}, ${fs.crashedInvocations} crashed, slowest ${(fs.aggregatorSlowest / 1000).toFixed(1)} s; ${fs.timedOut} timed out (their messages went back to SQS)`,
      ],
      ...CRASH_STEPS.map((s): [string, string] => [`  crash ${s}`, String(fs.crashes[s])]),
      [
        'DynamoDB calls (aggregator / invoice worker / HTTP API and sweeper)',
        `${n(fs.dynamoCalls.aggregator)} / ${n(fs.dynamoCalls.invoiceWorker)} / ${n(fs.dynamoCalls.other)}`,
      ],
      [
        'throttles injected (aggregator / invoice worker / HTTP API and sweeper; per message / per job / per call)',
        `${aggThrottles.reduce((a, [, k]) => a + k, 0)} / ${fs.invoiceWorkerThrottles} / ${fs.otherThrottles}`,
      ],
      ...AGGREGATOR_THROTTLE_STEPS.map((s): [string, string] => [`  aggregator throttle on ${s}`, String(fs.aggregatorThrottles[s])]),
      ['messages delivered twice (usage / invoice queue)', `${fs.deliveredTwice.usage} / ${fs.deliveredTwice.invoice}`],
      ['usage DLQ: messages redriven', `${usageDlqRedriven} (then empty: ${verify.usageDlqEmpty ? 'yes' : 'NO'})`],
      [
        'invoice run',
        `${runStatus.status}: total ${runStatus.total}, done ${runStatus.done}, skipped ${runStatus.skipped}, waiting for a Stripe customer ${runStatus.waiting}, failed ${runStatus.failed}; re-runs ${reruns}`,
      ],
      [
        'invoice DLQ (jobs; redriven at the end)',
        `${invoiceDlqRedriven}${invoiceDlqRedriven ? `: ${invoiceDlqBodies.slice(0, 5).join(' ')}${invoiceDlqRedriven > 5 ? ' ...' : ''} (each job's invoice checked below; back in the DLQ after the redrive: ${invoiceDlqAfterRedrive.length})` : ''}`,
      ],
      [
        'invoices (finalized in Stripe / not synced / no charge)',
        `${verify.invoices.finalized} / ${verify.invoices.notSynced} / ${verify.invoices.noCharge}; Stripe invoices ${verify.invoices.stripe}, total ${verify.invoices.totalMoney}`,
      ],
      [
        'Stripe requests of the run, failures injected (500 / 429 / timeout after commit)',
        `${n(stripeRequests)}, ${injected('500')} / ${injected('429')} / ${injected('timeout_after_commit')}${stripeLog.length < stripeRequests ? ' (among the last 10,000)' : ''}`,
      ],
      [
        'alerts claimed (included / budget / forecast), superseded by a higher one sent',
        `${verify.alerts.claimed} (${verify.alerts.included} / ${verify.alerts.budget} / ${verify.alerts.forecast}), ${verify.alerts.superseded}`,
      ],
      ['alert messages in the inbox', `${verify.alerts.messages} (${verify.alerts.twiceDocumented} sent twice through the documented crash window)`],
      [
        'time',
        `${seconds.toFixed(0)} s (setup ${setupSeconds.toFixed(0)}, previous period ${phase1Seconds.toFixed(0)}, current period + invoicing ${phase2Seconds.toFixed(0)}, checks ${(seconds - countedSeconds).toFixed(0)})`,
      ],
      [
        'throughput',
        `${n(Math.round(stats.eventsSent / sendingSeconds))} events/s sent and accepted (${sendingSeconds.toFixed(0)} s of sending); ${n(Math.round(stats.eventsSent / (countedSeconds - setupSeconds)))} events/s end to end (all counted)`,
      ],
      ['checks', failures.length === 0 ? 'all passed' : `${failures.length} FAILED`],
    ];
    return { ok: failures.length === 0, failures, figures, seconds };
  } finally {
    clearInterval(progress);
    faults.uninstall();
  }
}

interface RunStatus {
  status: string;
  total: number;
  done: number;
  skipped: number;
  failed: number;
  /** Invoiced and recorded without a Stripe customer (the soak's unlinked customers). */
  waiting: number;
  pending: number;
}

async function waitRun(http: SoakHttp, period: string, last: { status?: RunStatus }, takeDead: () => Promise<number>): Promise<RunStatus> {
  // The run shares DynamoDB Local with the aggregator at full load: it may take a while.
  const deadline = Date.now() + 90 * 60_000;
  let seen = '';
  let since = Date.now();
  for (;;) {
    const s = await http.api<RunStatus>('GET', `/api/v1/invoice-runs/${period}`, ADMIN, undefined, [200, 404]);
    last.status = s;
    if (s?.status === 'completed') return s;
    const now = JSON.stringify(s);
    if (now !== seen) [seen, since] = [now, Date.now()];
    // A run stuck at "starting": its start_run job may have died; resuming is always allowed.
    if (Date.now() - since > 60_000 && (await takeDead()) > 0) {
      await http.api('POST', '/api/v1/invoice-runs', ADMIN, { period });
      since = Date.now();
    }
    if (Date.now() > deadline) throw new Error(`invoice run ${period} did not complete: ${now}`);
    await sleep(2000);
  }
}

async function waitAlertsSent(stack: Stack, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.env.ALERTS_TABLE,
        IndexName: 'pending',
        KeyConditionExpression: 'pendingShard = :p',
        ExpressionAttributeValues: { ':p': { S: 'pending' } },
        Select: 'COUNT',
      }),
    );
    const pending = out.Count ?? 0;
    if (pending === 0 || Date.now() > deadline) return pending;
    await sleep(2000);
  }
}

interface VerifyInput {
  stack: Stack;
  http: SoakHttp;
  cfg: SoakConfig;
  shape: WorkloadShape;
  model: UsageModel;
  bounds: DuplicateBounds;
  customers: CustomerSetup[];
  plan: ModelPlan & { charges: { meter: string; included?: string }[] };
  faults: Faults;
  fail: (text: string) => void;
  runStatus: RunStatus;
}

interface AlertView {
  kind: string;
  meter: string | null;
  threshold: number;
  status: string;
  supersededBy: string | null;
}

async function verifyAll(v: VerifyInput) {
  const { stack, http, shape, model, customers, plan, fail } = v;
  const periodsToCheck = [shape.previous.key, shape.current.key];
  const out = {
    countedOk: true,
    duplicatesRead: 0,
    duplicatesLower: 0,
    duplicatesUpper: 0,
    usageDlqEmpty: true,
    invoices: { finalized: 0, notSynced: 0, noCharge: 0, stripe: 0, totalMoney: '0.00' },
    alerts: { claimed: 0, included: 0, budget: 0, forecast: 0, superseded: 0, messages: 0, twiceDocumented: 0 },
  };

  // Usage, exactly, per customer, period and meter; duplicates within what the clients allow.
  const dupBounds = v.bounds.bounds((c, p) => model.distinctIn(c, p));
  let mismatches = 0;
  await mapLimit(
    customers.flatMap((c) => periodsToCheck.map((p) => ({ c, p }))),
    8,
    async ({ c, p }) => {
      const body = await http.api<{ meters: { meter: string; value: string }[]; duplicatesDropped: number }>(
        'GET',
        `/api/v1/customers/${c.id}/usage?period=${p}`,
        ADMIN,
      );
      const expected = model.expected(c.id, p);
      for (const meter of METERS) {
        const got = body.meters.find((m) => m.meter === meter)?.value;
        if (got !== expected[meter]) {
          out.countedOk = false;
          if (mismatches++ < 30) fail(`usage ${c.id} ${p} ${meter}: read ${got}, expected ${expected[meter]}`);
        }
      }
      const b = dupBounds.get(`${c.id}|${p}`) ?? { lower: 0, upper: 0 };
      out.duplicatesRead += body.duplicatesDropped;
      out.duplicatesLower += b.lower;
      out.duplicatesUpper += b.upper;
      if (body.duplicatesDropped < b.lower || body.duplicatesDropped > b.upper) {
        fail(`duplicatesDropped ${c.id} ${p}: ${body.duplicatesDropped}, outside ${b.lower}..${b.upper}`);
      }
    },
  );
  const usageDepth = await stack.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: stack.resources.queues.UsageDLQ!.url, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  out.usageDlqEmpty = Number(usageDepth.Attributes?.ApproximateNumberOfMessages ?? 0) === 0;
  if (!out.usageDlqEmpty) fail('usage DLQ not empty at the end');

  // Invoices of the previous period: one record per member, at the model's price; one Stripe invoice per billable one.
  const prev = shape.previous.key;
  const stripeInvoices = stack.stripe.invoices();
  const stripeItems = stack.stripe.invoiceItems();
  let totalCents = 0n;
  const members = customers.filter((c) => c.kind !== 'uncreated' || model.has(c.id, prev)).length;
  if (v.runStatus.total !== members) fail(`invoice run has ${v.runStatus.total} members, expected ${members}`);
  if (v.runStatus.failed !== 0) fail(`invoice run: ${v.runStatus.failed} customers failed`);
  await mapLimit(customers, 8, async (c) => {
    const { invoices } = await http.api<{ invoices: any[] }>('GET', `/api/v1/customers/${c.id}/invoices`, ADMIN);
    const mine = c.stripeId ? stripeInvoices.filter((i) => i.customer === c.stripeId) : [];
    if (c.kind === 'uncreated' && !model.has(c.id, prev)) {
      if (invoices.length) fail(`invoices of ${c.id} (never created, no usage): ${invoices.length}, expected none`);
      return;
    }
    const expectedCents = modelPrice(plan, model.expected(c.id, prev), true);
    totalCents += expectedCents;
    const own = invoices.filter((i) => i.period === prev && i.kind === 'period');
    const others = invoices.filter((i) => !(i.period === prev && i.kind === 'period'));
    if (own.length !== 1 || others.length) {
      fail(
        `invoice records of ${c.id}: ${own.length} for ${prev}, ${others.length} others (${others.map((o) => `${o.key}:${o.status}`).join(',')}); expected exactly one`,
      );
      return;
    }
    const record = own[0];
    if (cents(record.total) !== expectedCents) fail(`invoice ${c.id} ${prev}: total ${record.total}, model ${money(expectedCents)}`);
    const status = expectedCents === 0n ? 'no_charge' : c.kind === 'linked' ? 'finalized' : 'not_synced';
    if (record.status !== status) fail(`invoice ${c.id} ${prev}: status ${record.status} (${record.lastError ?? ''}), expected ${status}`);
    if (record.status === 'finalized') out.invoices.finalized++;
    if (record.status === 'not_synced') out.invoices.notSynced++;
    if (record.status === 'no_charge') out.invoices.noCharge++;
    if (status !== 'finalized') {
      if (mine.length) fail(`${c.id}: ${mine.length} Stripe invoices for a ${status} record`);
      return;
    }
    out.invoices.stripe += mine.length;
    if (mine.length !== 1) {
      fail(`${c.id}: ${mine.length} Stripe invoices, expected 1 (${mine.map((i) => `${i.id}:${i.status}:${i.total}`).join(', ')})`);
      return;
    }
    const inv = mine[0]!;
    const itemsTotal = stripeItems.filter((i) => i.invoice === inv.id).reduce((s, i) => s + BigInt(i.amount), 0n);
    if (inv.id !== record.stripeInvoiceId || inv.status !== 'open' || BigInt(inv.total) !== cents(record.total) || itemsTotal !== BigInt(inv.total)) {
      fail(`${c.id}: Stripe invoice ${inv.id} ${inv.status} total ${inv.total} (items ${itemsTotal}) vs record ${record.stripeInvoiceId} ${record.total}`);
    }
  });
  out.invoices.totalMoney = money(totalCents);

  // Alerts (docs/alerts.md): in the open period every threshold the model reaches is claimed; the
  // highest of a jump is sent exactly once and the lower ones are superseded by it (never sent). A
  // period that had ended when its events came (the previous one) sends none.
  const inbox = new Map<string, number>();
  for (const body of await drainInbox(stack)) {
    const env = JSON.parse(body) as { Message: string; MessageAttributes: Record<string, { Value: string }> };
    const a = env.MessageAttributes;
    const period = (JSON.parse(env.Message) as { period: string }).period;
    const key = `${a.customerId!.Value}|${period}|${a.kind!.Value}#${a.meter!.Value}#${a.threshold!.Value}`;
    inbox.set(key, (inbox.get(key) ?? 0) + 1);
    out.alerts.messages++;
  }
  const claimedKeys = new Set<string>();
  await mapLimit(
    customers.flatMap((c) => periodsToCheck.map((p) => ({ c, p }))),
    8,
    async ({ c, p }) => {
      const { alerts } = await http.api<{ alerts: AlertView[] }>('GET', `/api/v1/customers/${c.id}/alerts?period=${p}`, ADMIN);
      // The alert's key, as supersededBy names it.
      const keyOf = (a: AlertView) => `${a.kind}#${a.meter ?? '-'}#${a.threshold}`;
      const claimed = new Set(alerts.map(keyOf));
      if (p !== shape.current.key) {
        for (const a of alerts) fail(`alert ${c.id} ${p} ${keyOf(a)}: claimed for a period that had ended`);
        return;
      }
      const byKey = new Map(alerts.map((a) => [keyOf(a), a]));
      // A superseded alert points at the one claimed instead; that one may be superseded in turn (a
      // crash between the claims of one jump, then a bigger jump): the chain ends at a sent alert.
      const sentInstead = (a: AlertView): AlertView | undefined => {
        let at = a;
        for (let hops = 0; at.status === 'superseded' && hops < 10; hops++) {
          const next = at.supersededBy === null ? undefined : byKey.get(at.supersededBy);
          if (!next || next.kind !== at.kind || next.meter !== at.meter || next.threshold <= at.threshold) return undefined;
          at = next;
        }
        return at.status === 'sent' ? at : undefined;
      };
      for (const a of alerts) {
        out.alerts.claimed++;
        out.alerts[a.kind as 'included' | 'budget' | 'forecast']++;
        if (a.status === 'superseded') {
          out.alerts.superseded++;
          if (!sentInstead(a))
            fail(`alert ${c.id} ${p} ${keyOf(a)}: superseded by ${a.supersededBy}, which leads to no higher sent alert of its kind and meter`);
        } else if (a.status !== 'sent') fail(`alert ${c.id} ${p} ${keyOf(a)}: status ${a.status}`);
      }
      const { required, optional } = expectedAlerts(plan, c, model.has(c.id, p) ? model.expected(c.id, p) : undefined);
      for (const k of required) if (!claimed.has(k)) fail(`alert ${c.id} ${p} ${k}: threshold reached but no alert claimed`);
      for (const k of claimed) if (!required.has(k) && !optional.has(k)) fail(`alert ${c.id} ${p} ${k}: claimed but the threshold is not reached`);
      for (const a of alerts) {
        const k = keyOf(a);
        const full = `${c.id}|${p}|${k}`;
        claimedKeys.add(full);
        const sent = inbox.get(full) ?? 0;
        if (a.status === 'superseded') {
          if (sent !== 0) fail(`alert ${c.id} ${p} ${k}: superseded, yet ${sent} messages in the inbox`);
        } else if (sent === 2 && v.faults.stats.markSentCrashed.has(full)) out.alerts.twiceDocumented++;
        else if (sent !== 1) {
          const why = v.faults.stats.markSentThrottled.has(full) ? '; its mark-sent write was throttled' : '';
          const by = (v.faults.stats.publishes.get(full) ?? []).join(', ');
          fail(`alert ${c.id} ${p} ${k}: ${sent} messages in the inbox, expected 1 (published by ${by || 'nobody'}${why})`);
        }
      }
    },
  );
  for (const key of inbox.keys()) if (!claimedKeys.has(key)) fail(`alert message ${key} in the inbox but not claimed`);
  return out;
}

/** Every alert message the inbox queue got (the stack subscribes it to the alerts topic without a filter). */
async function drainInbox(stack: Stack): Promise<string[]> {
  const bodies: string[] = [];
  for (let empty = 0; empty < 2;) {
    const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.alertsInbox.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    bodies.push(...messages.map((m) => m.Body ?? ''));
    await stack.sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: stack.alertsInbox.url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
  }
  return bodies;
}

/** Thresholds of the default plan (80/90/100% of included; 50/80/100% of the budget) reached by the final usage. */
function expectedAlerts(plan: ModelPlan & { charges: { meter: string; included?: string }[] }, c: CustomerSetup, usage: Record<string, string> | undefined) {
  const required = new Set<string>();
  const optional = new Set<string>();
  if (!usage) return { required, optional };
  for (const charge of plan.charges) {
    if (!charge.included || scaled(charge.included) <= 0n) continue;
    for (const t of [80, 90, 100]) {
      if (scaled(usage[charge.meter] ?? '0') * 100n >= BigInt(t) * scaled(charge.included)) required.add(`included#${charge.meter}#${t}`);
    }
  }
  if (c.budgetCents !== undefined) {
    const cost = modelPrice(plan, usage, true);
    for (const t of [50, 80, 100]) if (cost * 100n >= BigInt(t) * c.budgetCents) required.add(`budget#-#${t}`);
    // The projection is never below the cost so far; below the budget it depends on the hour.
    (cost > c.budgetCents ? required : optional).add('forecast#-#100');
  }
  return { required, optional };
}

/** The figures as a two-column table. */
export function formatReport(report: SoakReport): string {
  const width = Math.max(...report.figures.map(([k]) => k.length));
  const lines = report.figures.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  if (report.failures.length) lines.push('', 'FAILED CHECKS:', ...report.failures.map((f) => `  - ${f}`));
  return lines.join('\n');
}
