import { randomUUID } from 'node:crypto';
import { BatchWriteItemCommand, GetItemCommand, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import Stripe from 'stripe';
import { Period } from '../lib/domain/period';
import { loadHandler, readYaml } from '../local/runtime/deployment';
import { toRecord } from '../local/runtime/poller';
import { startStack, type Stack } from '../local/runtime/stack';
import type { FakeStats, RateLimitSetting } from '../local/stripe-fake/server';
import { queueDepth, waitQuiet } from './queues';

/**
 * `npm run bench:invoices`: an invoice run on the local stack against the Stripe fake enforcing
 * Stripe's live limits (100 requests/s overall, 25/s per endpoint).
 *
 * - Default: CUSTOMERS (2,000) customers with two invoice lines each. The worker runs POLLERS
 *   invocations at once (default: the deployed worker's reserved concurrency); locally they share
 *   one process and so one pacer, which gets the deployed fleet's totals from serverless.yml:
 *   reserved concurrency x stripeMaxRps and x stripeMaxEndpointRps (STRIPE_MAX_RPS and
 *   STRIPE_MAX_ENDPOINT_RPS override them). Prints the run time, customers/s, Stripe requests per
 *   customer and per endpoint and the 429s the fake answered, and checks one finalized Stripe
 *   invoice per customer with the right total (exit code 1 otherwise).
 * - FANOUT_ONLY=1: CUSTOMERS (100,000) customers written straight into DynamoDB Local, no Stripe.
 *   Times the chain of fan-out steps (run by the real worker handler, a page of
 *   INVOICE_FAN_OUT_PAGE_SIZE customers each) and counts the jobs it enqueues, which are taken off
 *   the queue as they come, not invoiced; checks one job per customer.
 *
 * STRIPE_LIMIT: the fake's limits, `live` (default), `sandbox` or a number (overall).
 */
const FANOUT_ONLY = process.env.FANOUT_ONLY === '1';
const CUSTOMERS = Number(process.env.CUSTOMERS ?? (FANOUT_ONLY ? 100_000 : 2000));
const STRIPE_LIMIT: RateLimitSetting = /^\d+$/.test(process.env.STRIPE_LIMIT ?? '')
  ? Number(process.env.STRIPE_LIMIT)
  : ((process.env.STRIPE_LIMIT ?? 'live') as 'live');
const deployed = readYaml<{ params: { default: Record<string, string> }; functions: Record<string, { reservedConcurrency: number }> }>('serverless.yml');
const INSTANCES = deployed.functions.invoiceWorker!.reservedConcurrency;
const POLLERS = Number(process.env.POLLERS ?? INSTANCES);
const fleet = (perInstance: string) => String(Number((INSTANCES * Number(perInstance)).toFixed(6)));
process.env.STRIPE_MAX_RPS ??= fleet(deployed.params.default.stripeMaxRps!);
process.env.STRIPE_MAX_ENDPOINT_RPS ??= fleet(deployed.params.default.stripeMaxEndpointRps!);

const headers = { authorization: 'Bearer local-admin-key', 'content-type': 'application/json' };
const period = Period.containing(new Date()).previous();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function table(title: string, rows: [string, string | number][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\n${title}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${typeof v === 'number' ? v.toLocaleString('en-US') : v}`);
}

async function startRun(stack: Stack, force = false): Promise<void> {
  const res = await fetch(`${stack.url}/api/v1/invoice-runs`, { method: 'POST', headers, body: JSON.stringify({ period: period.key, force }) });
  if (res.status !== 202) throw new Error(`run: ${res.status} ${await res.text()}`);
}

/** The default plan: API calls above 10,000 at $0.001, storage above 5 GB at $0.25 (half-up to cents per line). */
function expectedTotalCents(i: number): number {
  const apiCalls = 20_000 + i;
  const storageGb = 10 + (i % 50);
  return Math.floor((apiCalls - 10_000 + 5) / 10) + (storageGb - 5) * 25;
}

async function stripeRun(): Promise<void> {
  const stack = await startStack({
    port: 0,
    pollerConcurrency: POLLERS,
    stripeRateLimit: STRIPE_LIMIT,
    env: { INVOICE_GRACE_MINUTES: '0', CATALOG_FILE: '' },
  });
  try {
    const limits = stack.stripe.state().rateLimit;
    // Setting up is not what is measured: 2,000 Stripe customers at 25/s would take 80 s.
    stack.stripe.setRateLimit(null);
    const stripe = new Stripe('sk_test_local', { host: '127.0.0.1', port: stack.stripe.port, protocol: 'http' });
    const time = new Date(period.end.getTime() - 3600_000).toISOString();
    const ids = Array.from({ length: CUSTOMERS }, (_, i) => `cus_bi_${i}`);
    const stripeIds = new Map<string, number>();
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id, j) => {
          const s = await stripe.customers.create({ name: id });
          stripeIds.set(s.id, i + j);
          const res = await fetch(`${stack.url}/api/v1/customers/${id}`, {
            method: 'PUT',
            headers,
            body: JSON.stringify({ name: id, stripeCustomerId: s.id }),
          });
          if (res.status !== 201) throw new Error(`PUT customer: ${res.status}`);
        }),
      );
    }
    // Usage: every customer above the free tiers of two meters (two invoice lines each).
    const events = ids.flatMap((id, i) => [
      { specversion: '1.0', id: `a-${i}`, source: 'bench', type: 'api_calls', subject: id, time, data: { value: 20_000 + i } },
      { specversion: '1.0', id: `s-${i}`, source: 'bench', type: 'storage_gb', subject: id, time, data: { value: 10 + (i % 50) } },
    ]);
    for (let i = 0; i < events.length; i += 1000) {
      const res = await fetch(`${stack.url}/api/v1/events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(events.slice(i, i + 1000)),
      });
      if (res.status !== 202) throw new Error(`ingest: ${res.status}`);
    }
    // Wait until every usage message (and the alerts it triggers) is done, so that only the run is timed.
    await waitQuiet(stack, 'UsageQueue', { everyMs: 500, timeoutMs: Infinity });
    stack.stripe.setRateLimit(limits); // every window starts afresh
    const before = stack.stripe.stats();

    const t0 = performance.now();
    await startRun(stack);
    // Asking for progress counts every member (a query of 2,000 items on DynamoDB Local): ask every
    // 2 s, and often only once the fake has finalized an invoice per customer.
    const finalized = () =>
      (stack.stripe.stats().endpoints['POST /v1/invoices/:id/finalize']?.requests ?? 0) - (before.endpoints['POST /v1/invoices/:id/finalize']?.requests ?? 0);
    let run: { status: string; total: number; done: number; failed: number; skipped: number };
    for (let tick = 0; ; tick++) {
      if (finalized() >= CUSTOMERS || tick % 40 === 0) {
        run = (await (await fetch(`${stack.url}/api/v1/invoice-runs/${period.key}`, { headers })).json()) as typeof run;
        if (run.status === 'completed') break;
      }
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    const stats = stack.stripe.stats();

    // One finalized Stripe invoice per customer, with the right total and two lines.
    const invoices = stack.stripe.invoices();
    const perCustomer = new Map<number, typeof invoices>();
    for (const inv of invoices) {
      const i = stripeIds.get(inv.customer as string);
      if (i !== undefined) perCustomer.set(i, [...(perCustomer.get(i) ?? []), inv]);
    }
    const items = new Map<string, number>();
    for (const item of stack.stripe.invoiceItems()) items.set(item.invoice as string, (items.get(item.invoice as string) ?? 0) + 1);
    const wrong = ids
      .map((_, i) => ({ i, invs: perCustomer.get(i) ?? [] }))
      .filter(({ i, invs }) => invs.length !== 1 || invs[0]!.status !== 'open' || invs[0]!.total !== expectedTotalCents(i) || items.get(invs[0]!.id) !== 2);

    const requests = stats.requests - before.requests;
    const rateLimited = stats.rateLimited - before.rateLimited;
    table(`invoice run of ${period.key}, local stack, ${new Date().toISOString()}`, [
      ['Stripe fake limits', `${limits.global ?? 'none'}/s overall, ${limits.perEndpoint ?? 'none'}/s per endpoint (${String(STRIPE_LIMIT)})`],
      ['worker', `${POLLERS} invocations at once, one pacer: ${process.env.STRIPE_MAX_RPS}/s overall, ${process.env.STRIPE_MAX_ENDPOINT_RPS}/s per endpoint`],
      ['customers', `${run.total} (done ${run.done}, skipped ${run.skipped}, failed ${run.failed})`],
      ['run time', `${seconds.toFixed(1)} s (POST /invoice-runs to completed)`],
      ['customers/s', `${(run.total / seconds).toFixed(1)} (target >= 22.5)`],
      ['Stripe requests', `${requests.toLocaleString('en-US')}, ${(requests / run.total).toFixed(2)} per customer, ${(requests / seconds).toFixed(1)}/s`],
      ...endpointRows(before, stats, seconds),
      ['answered 429', `${rateLimited} (target 0)`],
      [
        'check',
        wrong.length === 0
          ? `one open Stripe invoice per customer, 2 lines, right total: ${CUSTOMERS} of ${CUSTOMERS}`
          : `${wrong.length} customers WRONG, e.g. ${JSON.stringify(wrong[0])}`,
      ],
    ]);
    if (wrong.length > 0 || run.failed !== 0) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

function endpointRows(before: FakeStats, after: FakeStats, seconds: number): [string, string][] {
  return Object.entries(after.endpoints)
    .map(([name, s]) => [name, s.requests - (before.endpoints[name]?.requests ?? 0), s.rateLimited - (before.endpoints[name]?.rateLimited ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([name, n, limited]) => [`  ${name}`, `${n.toLocaleString('en-US')} (${(n / seconds).toFixed(1)}/s, ${limited} answered 429)`]);
}

/** Writes customers straight into DynamoDB Local, 25 per BatchWriteItem, 16 requests at once. */
async function createCustomers(stack: Stack, count: number): Promise<void> {
  const createdAt = period.start.toISOString();
  const requests: WriteRequest[][] = [];
  for (let i = 0; i < count; i += 25) {
    requests.push(
      Array.from({ length: Math.min(25, count - i) }, (_, j) => ({
        PutRequest: {
          Item: marshall({
            id: `cus_fo_${i + j}`,
            name: `cus_fo_${i + j}`,
            planId: 'default',
            plans: [{ from: period.key, planId: 'default' }],
            createdAt,
            updatedAt: createdAt,
          }),
        },
      })),
    );
  }
  const table = stack.resources.tables.CustomersTable!;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < requests.length) {
        let items: WriteRequest[] | undefined = requests[next++];
        while (items && items.length > 0) {
          const out = await stack.dynamo.send(new BatchWriteItemCommand({ RequestItems: { [table]: items } }));
          items = out.UnprocessedItems?.[table];
        }
      }
    }),
  );
}

/** The Lambda context the handler's middleware reads, as the local poller gives it. */
const benchContext = () => ({ awsRequestId: randomUUID(), functionName: 'bench', getRemainingTimeInMillis: () => 60_000 });

async function fanOutRun(): Promise<void> {
  // No pollers: the bench takes the invoice queue's messages itself, runs the fan-out steps with
  // the worker's handler and only counts the customers' jobs.
  const stack = await startStack({ port: 0, pollers: false, visibilityTimeoutSeconds: 60, env: { INVOICE_GRACE_MINUTES: '0', CATALOG_FILE: '' } });
  const worker = loadHandler<(event: SQSEvent, context: unknown) => Promise<unknown>>('functions/invoice-worker/handler.handler');
  const queue = stack.resources.queues.InvoiceQueue!;
  try {
    const tCreate = performance.now();
    await createCustomers(stack, CUSTOMERS);
    const createSeconds = (performance.now() - tCreate) / 1000;

    const jobs = new Map<string, number>();
    let steps = 0;
    let fannedOutAt: number | undefined;
    const t0 = performance.now();
    await startRun(stack, true); // customers written directly have no usage epoch: force the new run
    const fannedOut = async () => {
      const out = await stack.dynamo.send(
        new GetItemCommand({ TableName: stack.resources.tables.InvoicesTable!, Key: marshall({ pk: `run#${period.key}`, sk: '#run' }), ConsistentRead: true }),
      );
      return out.Item?.fannedOut?.BOOL === true;
    };
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (fannedOutAt === undefined || (await queueDepth(stack, 'InvoiceQueue')) > 0) {
          const out = await stack.sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
          );
          const done: string[] = [];
          for (const m of out.Messages ?? []) {
            const body = JSON.parse(m.Body ?? '{}') as { customerId?: string; action?: string };
            if (body.action === 'start_run') {
              const response = (await worker({ Records: [toRecord(m, queue.arn, 'us-east-1')] }, benchContext())) as { batchItemFailures: unknown[] };
              if (response.batchItemFailures.length > 0) continue; // back on the queue after the visibility timeout
              steps++;
              if (fannedOutAt === undefined && (await fannedOut())) fannedOutAt = performance.now();
            } else if (body.customerId) jobs.set(body.customerId, (jobs.get(body.customerId) ?? 0) + 1);
            done.push(m.ReceiptHandle!);
          }
          if (done.length > 0) {
            await stack.sqs.send(
              new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries: done.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })) }),
            );
          }
        }
      }),
    );
    const seconds = ((fannedOutAt ?? performance.now()) - t0) / 1000;
    const enqueued = [...jobs.values()].reduce((s, n) => s + n, 0);
    const twice = [...jobs.values()].filter((n) => n > 1).length;
    const ok = jobs.size === CUSTOMERS && twice === 0 && fannedOutAt !== undefined;
    table(`fan-out of the ${period.key} run, local stack, ${new Date().toISOString()}`, [
      ['customers', `${CUSTOMERS.toLocaleString('en-US')} (written to DynamoDB Local in ${createSeconds.toFixed(1)} s, not part of the run)`],
      ['page size', process.env.INVOICE_FAN_OUT_PAGE_SIZE ?? '1000 (default)'],
      ['fan-out steps', `${steps} (customer pages, then one per period of usage)`],
      ['fan-out time', `${seconds.toFixed(1)} s (POST /invoice-runs to the last step)`],
      ['jobs enqueued', `${enqueued.toLocaleString('en-US')}, ${(enqueued / seconds).toFixed(0)} jobs/s`],
      [
        'check',
        ok
          ? `one job per customer: ${jobs.size} of ${CUSTOMERS}, none twice`
          : `WRONG: ${jobs.size} customers with a job, ${twice} twice, fanned out: ${fannedOutAt !== undefined}`,
      ],
    ]);
    if (!ok) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

(FANOUT_ONLY ? fanOutRun() : stripeRun()).catch((err) => {
  console.error(err);
  process.exit(1);
});
