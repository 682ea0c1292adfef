import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import Stripe from 'stripe';
import { Period } from '../lib/domain/period';
import { startStack } from '../local/stack';

/**
 * `npm run bench:invoices`: an invoice run for CUSTOMERS (default 2,000) customers on the local
 * stack, against the Stripe fake limited to STRIPE_LIMIT (default 100) requests/second, with the
 * worker pacing itself to STRIPE_MAX_RPS (default 90). Prints the run time and Stripe calls per
 * customer, and checks one finalized invoice per customer.
 */
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 2000);
const STRIPE_LIMIT = Number(process.env.STRIPE_LIMIT ?? 100);
const POLLERS = Number(process.env.POLLERS ?? 8);
process.env.STRIPE_MAX_RPS ??= '90';

async function main() {
  const stack = await startStack({ port: 0, pollerConcurrency: POLLERS, env: { INVOICE_GRACE_MINUTES: '0', CATALOG_FILE: '' } });
  const headers = { authorization: 'Bearer local-admin-key', 'content-type': 'application/json' };
  try {
    const stripe = new Stripe('sk_test_local', { host: '127.0.0.1', port: stack.stripe.port, protocol: 'http' });
    const period = Period.containing(new Date()).previous();
    const time = new Date(period.end.getTime() - 3600_000).toISOString();
    const ids = Array.from({ length: CUSTOMERS }, (_, i) => `cus_bi_${i}`);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id) => {
          const s = await stripe.customers.create({ name: id });
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
      { specversion: '1.0', id: `a-${i}`, source: 'bench', type: 'api_calls', subject: id, time, data: { value: 20000 + i } },
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
    for (let quiet = 0; quiet < 3;) {
      const attrs = await stack.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.resources.queues.UsageQueue!.url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      const depth = Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
      quiet = depth === 0 && stack.pollers.every((p) => p.idle) ? quiet + 1 : 0;
      await new Promise((r) => setTimeout(r, 500));
    }
    stack.stripe.setRateLimit(STRIPE_LIMIT);
    const before = stack.stripe.requests.length;

    const t0 = performance.now();
    const start = await fetch(`${stack.url}/api/v1/invoice-runs`, { method: 'POST', headers, body: JSON.stringify({ period: period.key }) });
    if (start.status !== 202) throw new Error(`run: ${start.status} ${await start.text()}`);
    const tEnqueued = performance.now();
    let run: { status: string; total: number; done: number; failed: number; skipped: number };
    for (;;) {
      run = (await (await fetch(`${stack.url}/api/v1/invoice-runs/${period.key}`, { headers })).json()) as typeof run;
      if (run.status === 'completed') break;
      // Progress counts every member; asking often would load DynamoDB Local more than the run.
      await new Promise((r) => setTimeout(r, 2000));
    }
    const tDone = performance.now();
    const calls = stack.stripe.requests.slice(before);
    const finalized = stack.stripe.invoices().filter((i) => i.status === 'open').length;
    const throttled = calls.filter((r) => r.status === 429).length;
    console.log(
      `\ninvoice run, local stack, Stripe fake limited to ${STRIPE_LIMIT} req/s, worker paced at ${process.env.STRIPE_MAX_RPS} req/s, ${POLLERS} workers, ${new Date().toISOString()}`,
    );
    console.log(`customers:   ${run.total} (done ${run.done}, skipped ${run.skipped}, failed ${run.failed}); finalized Stripe invoices: ${finalized}`);
    console.log(
      `time:        ${((tDone - t0) / 1000).toFixed(1)} s (enqueue ${((tEnqueued - t0) / 1000).toFixed(1)} s) -> ${(run.total / ((tDone - t0) / 1000)).toFixed(1)} customers/s`,
    );
    console.log(`Stripe:      ${calls.length} requests, ${(calls.length / run.total).toFixed(2)} per customer, ${throttled} answered 429`);
    if (finalized !== CUSTOMERS || run.failed !== 0) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
