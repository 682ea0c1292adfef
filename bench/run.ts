import { randomUUID } from 'node:crypto';
import { startStack } from '../local/stack';

/**
 * `npm run bench`: end-to-end throughput and DynamoDB write cost of exactly-once counting on the
 * local stack (DynamoDB Local + fauxqs + the real handlers), single laptop.
 *
 * Workload (defaults; override with env): EVENTS=100000 events, DUP_RATE=0.1 of them re-sent in
 * later requests (same source/id), CUSTOMERS=10, REQUEST_SIZE=1000 events per POST, SENDERS=4
 * concurrent clients. Every event is an `api_calls` SUM event with a decimal value.
 */
const EVENTS = Number(process.env.EVENTS ?? 100_000);
const DUP_RATE = Number(process.env.DUP_RATE ?? 0.1);
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 10);
const REQUEST_SIZE = Number(process.env.REQUEST_SIZE ?? 1000);
const SENDERS = Number(process.env.SENDERS ?? 4);
const POLLERS = Number(process.env.POLLERS ?? 4);
/** Seconds before SQS hands a message out again: on a loaded machine a message that outlasts it is counted by two invocations at once (exactly once still, but its claims and archive writes are paid twice). */
const VISIBILITY = Number(process.env.VISIBILITY ?? 60);

async function main() {
  const stack = await startStack({ port: 0, visibilityTimeoutSeconds: VISIBILITY, pollerConcurrency: POLLERS, env: { CATALOG_FILE: '' } });
  const { capacity } = require('../lib/adapters/dynamo/capacity') as typeof import('../lib/adapters/dynamo/capacity');
  const { archiveWrites } = require('../lib/adapters/s3/archive') as typeof import('../lib/adapters/s3/archive');
  try {
    const unique = Math.round(EVENTS * (1 - DUP_RATE));
    const time = new Date(Date.now() - 60_000).toISOString();
    const run = randomUUID().slice(0, 8);
    const events = Array.from({ length: unique }, (_, i) => ({
      specversion: '1.0',
      id: `${run}-${i}`,
      source: 'bench',
      type: 'api_calls',
      subject: `cus_bench_${i % CUSTOMERS}`,
      time,
      data: { value: '1.5' },
    }));
    // Duplicates: earlier events sent again inside later requests.
    const dups = Array.from({ length: EVENTS - unique }, (_, i) => events[(i * 7919) % unique]!);
    const all = [...events];
    dups.forEach((d, i) => all.splice(Math.min(all.length, Math.floor(((i + 1) * all.length) / (dups.length + 1)) + REQUEST_SIZE), 0, d));
    const requests: unknown[][] = [];
    for (let i = 0; i < all.length; i += REQUEST_SIZE) requests.push(all.slice(i, i + REQUEST_SIZE));

    capacity.reset();
    archiveWrites.puts = 0;
    archiveWrites.events = 0;
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (next < requests.length) {
          const body = JSON.stringify(requests[next++]);
          const res = await fetch(`${stack.url}/api/v1/events`, {
            method: 'POST',
            headers: { authorization: 'Bearer local-admin-key', 'content-type': 'application/cloudevents-batch+json' },
            body,
          });
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
    const tIngested = performance.now();

    const expectedValue = (c: number) => (Math.floor(unique / CUSTOMERS) + (c < unique % CUSTOMERS ? 1 : 0)) * 1.5;
    const readTotals = async (): Promise<{ total: number; duplicates: number; values: string[] }> => {
      let total = 0;
      let duplicates = 0;
      const values: string[] = [];
      for (let c = 0; c < CUSTOMERS; c++) {
        const res = await fetch(`${stack.url}/api/v1/customers/cus_bench_${c}/usage`, { headers: { authorization: 'Bearer local-admin-key' } });
        // On a loaded machine a read can outlast the function's timeout while the aggregator works: ask again.
        if (res.status !== 200) return { total: 0, duplicates: 0, values: [] };
        const body = (await res.json()) as { meters: { meter: string; value: string }[]; duplicatesDropped: number };
        const v = body.meters.find((m) => m.meter === 'api_calls')!.value;
        values.push(v);
        total += Number(v) / 1.5;
        duplicates += body.duplicatesDropped;
      }
      return { total, duplicates, values };
    };
    let totals = await readTotals();
    while (totals.total + totals.duplicates < EVENTS) {
      await new Promise((r) => setTimeout(r, 250));
      totals = await readTotals();
    }
    const tCounted = performance.now();
    const exact = totals.values.every((v, c) => v === String(expectedValue(c)));

    const secs = (ms: number) => (ms / 1000).toFixed(1);
    console.log(`\nexactly-once counting, local stack (DynamoDB Local ${'3.x'}, fauxqs, ${POLLERS} pollers), ${new Date().toISOString()}`);
    console.log(
      `workload: ${EVENTS} events (${unique} unique + ${EVENTS - unique} duplicates), ${CUSTOMERS} customers, ${requests.length} requests of <= ${REQUEST_SIZE}, ${SENDERS} senders`,
    );
    console.log(`ingest:      ${secs(tIngested - t0)} s  -> ${Math.round(EVENTS / ((tIngested - t0) / 1000))} events/s accepted (202)`);
    console.log(`end to end:  ${secs(tCounted - t0)} s  -> ${Math.round(EVENTS / ((tCounted - t0) / 1000))} events/s counted`);
    console.log(
      `read back:   counted ${totals.total} unique events (expected ${unique}), duplicatesDropped ${totals.duplicates} (expected ${EVENTS - unique}), values exact: ${exact}`,
    );
    const per1000 = (u: number) => ((u / EVENTS) * 1000).toFixed(1);
    console.log(`DynamoDB:    ${capacity.pricedUnits} write units by AWS pricing rules -> ${per1000(capacity.pricedUnits)} per 1,000 events`);
    console.log(
      `             ${capacity.reportedUnits} reported by DynamoDB Local (ReturnConsumedCapacity; it bills transactional items at 1, AWS at 2) -> ${per1000(capacity.reportedUnits)} per 1,000 events`,
    );
    // Archived events beyond the unique ones were written by a message counted twice (a redelivery): their writes inflate the figures above.
    console.log(
      `S3 archive:  ${archiveWrites.puts} PUTs for ${archiveWrites.events} archived events -> ${per1000(archiveWrites.puts)} PUTs per 1,000 events ($${((archiveWrites.puts / EVENTS) * 1e6 * 0.000005).toFixed(2)} per million events at $0.005 per 1,000 PUTs)`,
    );
    // Reconciliation: every counter of the period recomputed from the archive and compared.
    const { container } = require('../lib/platform/container') as typeof import('../lib/platform/container');
    const { reconcile } = require('../lib/app/audit') as typeof import('../lib/app/audit');
    const tr = performance.now();
    const rec = await reconcile(container(), { period: time.slice(0, 7) });
    console.log(
      `reconcile:   ${rec.events} archived events of ${rec.customers} customers in ${secs(performance.now() - tr)} s, ${rec.drifts.length} drifting counters`,
    );
    if (rec.drifts.length > 0 || rec.events !== unique) process.exitCode = 1;
    console.log(`memory:      rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (this process: HTTP API + aggregator + pollers)`);
    if (!exact || totals.total !== unique || totals.duplicates !== EVENTS - unique) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
