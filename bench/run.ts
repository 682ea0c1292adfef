import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { loadDeployment } from '../local/runtime/deployment';
import { RECEIVE_WAIT_SECONDS } from '../local/runtime/poller';
import { startStack, type Stack } from '../local/runtime/stack';
import { queueDepth, waitQuiet } from './queues';
import { descendantCpuSeconds, selfTimes, startCpuProfile, type CpuProfiler } from './cpu-profile';

/**
 * `npm run bench:metering`: end-to-end throughput, DynamoDB write cost, the ratio to the store's
 * own ceiling and freshness of exactly-once counting on the local stack (DynamoDB Local + fauxqs +
 * the real handlers), single machine.
 *
 * Counting phase (defaults; override with env): EVENTS=100000 events, DUP_RATE=0.1 of them re-sent
 * in later requests (same source/id), CUSTOMERS=10, REQUEST_SIZE=1000 events per POST, SENDERS=4
 * concurrent clients, POLLERS=4 concurrent aggregator invocations, VISIBILITY=60 s. Every event is
 * an `api_calls` SUM event with a decimal value (alerts are evaluated and daily counters written,
 * as deployed).
 *
 * Store ceiling, right before and right after the counting phase, with the aggregator's client,
 * RAW_SECONDS=10 s each: conditional PutItems of new keys into the dedupe table from 960 concurrent
 * writers (4 pollers x 10 records x 24, the claims a message had in flight when each was a PutItem),
 * after RAW_WARMUP=20 s of the same, unreported, to warm DynamoDB Local's JVM; and INSERTs of new
 * keys 25 to a BatchExecuteStatement, the claims' own form, with as many requests in flight as the
 * counting path can have (after RAW_WARMUP/2 s of the same).
 *
 * Freshness: FRESH_SECONDS=20 s of open-loop load at 50% and at 90% of the end-to-end rate just
 * measured: background events for CUSTOMERS other customers in a request every FRESH_BACKGROUND_MS
 * (1000: the shape of request the end-to-end rate was measured with, about a second's worth), and
 * FRESH_PROBES=10 single-event probes per second, each for a customer of its own, each polling GET
 * usage every FRESH_POLL_MS=20 ms from its 202 until its counter shows it.
 *
 * PROFILE=1 profiles this process (HTTP API, pollers, handlers) during the counting phase.
 *
 * BACKLOG=1 stops the aggregator's pollers while the requests are sent and starts them once every
 * event is queued: ingest's CPU per event alone, then the aggregator counting a full queue alone
 * (the rate and ratio it prints are then that, not end to end).
 */
const EVENTS = Number(process.env.EVENTS ?? 100_000);
const DUP_RATE = Number(process.env.DUP_RATE ?? 0.1);
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 10);
const REQUEST_SIZE = Number(process.env.REQUEST_SIZE ?? 1000);
const SENDERS = Number(process.env.SENDERS ?? 4);
const POLLERS = Number(process.env.POLLERS ?? 4);
/** Seconds before SQS hands a message out again: on a loaded machine a message that outlasts it is counted by two invocations at once (exactly once still, but its claims and archive writes are paid twice). */
const VISIBILITY = Number(process.env.VISIBILITY ?? 60);
const RAW_SECONDS = Number(process.env.RAW_SECONDS ?? 10);
/** Seconds of unreported raw PutItems before the first measured ones. */
const RAW_WARMUP = Number(process.env.RAW_WARMUP ?? 20);
const FRESH_SECONDS = Number(process.env.FRESH_SECONDS ?? 20);
const FRESH_PROBES = Number(process.env.FRESH_PROBES ?? 10);
const FRESH_POLL_MS = Number(process.env.FRESH_POLL_MS ?? 20);
const FRESH_BACKGROUND_MS = Number(process.env.FRESH_BACKGROUND_MS ?? 1000);
const PROFILE = process.env.PROFILE === '1';
const BACKLOG = process.env.BACKLOG === '1';
const secs = (ms: number) => (ms / 1000).toFixed(1);
/** A probe not visible by then is reported as unseen. */
const PROBE_TIMEOUT_MS = 120_000;
/** The goals the figures are printed beside. */
const TARGET_RATIO = 0.9;
const TARGETS_P99_MS = { 50: 500, 90: 2000 } as const;

const AUTH = { authorization: 'Bearer local-admin-key' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const cloudEvent = (id: string, subject: string, time: string) => ({
  specversion: '1.0',
  id,
  source: 'bench',
  type: 'api_calls',
  subject,
  time,
  data: { value: '1.5' },
});

/** POSTs events (one as application/cloudevents+json, several as a batch); the status. */
async function post(url: string, events: unknown[]): Promise<{ status: number; text: string }> {
  const single = events.length === 1;
  const res = await fetch(`${url}/api/v1/events`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': single ? 'application/cloudevents+json' : 'application/cloudevents-batch+json' },
    body: JSON.stringify(single ? events[0] : events),
  });
  return { status: res.status, text: await res.text() };
}

/** A customer's api_calls counter and duplicates dropped, or undefined when the read failed. */
async function usageOf(url: string, customer: string): Promise<{ value: string; duplicates: number } | undefined> {
  const res = await fetch(`${url}/api/v1/customers/${customer}/usage`, { headers: AUTH });
  // On a loaded machine a read can outlast the function's timeout while the aggregator works.
  if (res.status !== 200) {
    await res.arrayBuffer();
    return undefined;
  }
  const body = (await res.json()) as { meters: { meter: string; value: string }[]; duplicatesDropped: number };
  return { value: body.meters.find((m) => m.meter === 'api_calls')?.value ?? '0', duplicates: body.duplicatesDropped };
}

/**
 * Counts the DynamoDB requests sent through a client while `on`, by operation (PutItem split by
 * what it writes), with the items of transactions, and the most in flight at once (requests past
 * the SDK's 50 sockets wait in its queue, and count here).
 */
function tallyRequests(client: DynamoDBClient, tableNames: Record<string, string>) {
  const tally = { on: false, requests: new Map<string, number>(), transactItems: 0, statements: 0, inFlight: 0, peak: 0 };
  const logical = Object.fromEntries(Object.entries(tableNames).map(([name, physical]) => [physical, name.replace(/Table$/, '')]));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!tally.on) return next(args);
      const input = args.input as { TableName?: string; Item?: { pk?: unknown }; TransactItems?: unknown[]; Statements?: unknown[]; RequestItems?: object };
      const tables = input.TableName ? [input.TableName] : Object.keys(input.RequestItems ?? {});
      let name = `${context.commandName?.replace(/Command$/, '')} ${tables.map((t) => logical[t] ?? '').join('+')}`.trim();
      if (name === 'BatchExecuteStatement') name += ' (event claims)';
      if (name === 'PutItem Dedupe') {
        const pk = String(input.Item?.pk);
        if (pk.endsWith('|settled')) name += ' (message settled)';
      }
      tally.requests.set(name, (tally.requests.get(name) ?? 0) + 1);
      tally.transactItems += input.TransactItems?.length ?? 0;
      tally.statements += input.Statements?.length ?? 0;
      tally.peak = Math.max(tally.peak, ++tally.inFlight);
      try {
        return await next(args);
      } finally {
        tally.inFlight--;
      }
    },
    { step: 'initialize', name: 'benchRequestTally' },
  );
  return tally;
}

async function main() {
  const load = loadavg().map((l) => l.toFixed(2));
  const stack = await startStack({ port: 0, visibilityTimeoutSeconds: VISIBILITY, pollerConcurrency: POLLERS, env: { CATALOG_FILE: '' } });
  const { capacity } = require('../lib/adapters/dynamo/capacity') as typeof import('../lib/adapters/dynamo/capacity');
  const { archiveWrites } = require('../lib/adapters/s3/archive') as typeof import('../lib/adapters/s3/archive');
  const { limitWrites } = require('../lib/adapters/dynamo/rate-limits') as typeof import('../lib/adapters/dynamo/rate-limits');
  const { dynamoClient } = require('../lib/platform/clients') as typeof import('../lib/platform/clients');
  const { claimStatement, DEFAULT_CLAIM_REQUESTS, DEFAULT_WRITE_CONCURRENCY } =
    require('../lib/adapters/dynamo/ledger') as typeof import('../lib/adapters/dynamo/ledger');
  const { claimPk } = require('../lib/adapters/dynamo/usage-keys') as typeof import('../lib/adapters/dynamo/usage-keys');
  const { BatchExecuteStatementCommand } = require('@aws-sdk/client-dynamodb') as typeof import('@aws-sdk/client-dynamodb');
  const { documents } = require('../lib/adapters/dynamo/documents') as typeof import('../lib/adapters/dynamo/documents');
  const { PutCommand } = require('@aws-sdk/lib-dynamodb') as typeof import('@aws-sdk/lib-dynamodb');
  const rows: [string, string, string][] = [];
  try {
    // The aggregator's own client (one per process, as per Lambda instance), so the raw writes
    // below share its settings, retries and socket pool.
    const client = dynamoClient();
    const tally = tallyRequests(client, stack.resources.tables);
    const aggregate = loadDeployment().queueTriggers.find((t) => t.fn.name === 'aggregate')!;
    const recordsPerInvocation = Math.min(10, aggregate.batchSize);
    /** Claim requests (of 25) the counting path can have in flight. */
    const claimRequests = POLLERS * recordsPerInvocation * DEFAULT_CLAIM_REQUESTS;
    /** PutItems in flight for the PutItem ceiling: as when each claim was one (24 per message), comparable with earlier runs. */
    const writers = POLLERS * recordsPerInvocation * DEFAULT_WRITE_CONCURRENCY;

    /**
     * The store's ceiling, two ways, from `loops` concurrent loops for RAW_SECONDS: conditional
     * PutItems of new keys into the dedupe table (one write per request), and the claims' own form,
     * BatchExecuteStatement of 25 INSERTs of new keys. Writes per second; CPU of this process per write.
     */
    const rawCpuMsPerPut = new Map<string, number>();
    const rawWrites = async (kind: 'put' | 'insert', tag: string, seconds = RAW_SECONDS): Promise<number> => {
      const docs = documents(client);
      const source = `bench-raw-${randomUUID().slice(0, 8)}-${tag}`;
      const expiresAt = Math.floor(Date.now() / 1000) + 86_400;
      const statement = claimStatement(stack.env.DEDUPE_TABLE!);
      let n = 0;
      let writes = 0;
      let failed = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      const one = async () => {
        if (kind === 'put') {
          const id = String(n++);
          await docs.send(
            new PutCommand({
              TableName: stack.env.DEDUPE_TABLE!,
              Item: { pk: claimPk({ customerId: 'cus_raw', source, id }), claimedBy: source, expiresAt, c: 'cus_raw', p: '2000-01', g: 0 },
              ConditionExpression: 'attribute_not_exists(pk)',
              ReturnConsumedCapacity: 'TOTAL',
            }),
          );
          return 1;
        }
        const Statements = Array.from({ length: 25 }, () => ({
          Statement: statement,
          Parameters: [
            { S: claimPk({ customerId: 'cus_raw', source, id: String(n++) }) },
            { S: source },
            { N: String(expiresAt) },
            { S: 'cus_raw' },
            { S: '2000-01' },
            { N: '0' },
          ],
        }));
        const out = await client.send(new BatchExecuteStatementCommand({ Statements, ReturnConsumedCapacity: 'TOTAL' }));
        return (out.Responses ?? []).filter((r) => !r.Error).length;
      };
      await Promise.all(
        Array.from({ length: kind === 'put' ? writers : claimRequests }, async () => {
          while (performance.now() < end) {
            try {
              const done = await one();
              writes += done;
            } catch {
              failed++;
            }
          }
        }),
      );
      if (failed > 0) console.error(`raw ${kind} (${tag}): ${failed} requests failed`);
      const cpu = process.cpuUsage(cpu0);
      rawCpuMsPerPut.set(`${kind} ${tag}`, (cpu.user + cpu.system) / 1000 / writes);
      return writes / ((performance.now() - t0) / 1000);
    };
    const rawPuts = (tag: string, seconds?: number) => rawWrites('put', tag, seconds);
    const rawInserts = (tag: string, seconds?: number) => rawWrites('insert', tag, seconds);

    const unique = Math.round(EVENTS * (1 - DUP_RATE));
    const time = new Date(Date.now() - 60_000).toISOString();
    const run = randomUUID().slice(0, 8);
    const events = Array.from({ length: unique }, (_, i) => cloudEvent(`${run}-${i}`, `cus_bench_${i % CUSTOMERS}`, time));
    // Duplicates: earlier events sent again inside later requests.
    const dups = Array.from({ length: EVENTS - unique }, (_, i) => events[(i * 7919) % unique]!);
    const all = [...events];
    dups.forEach((d, i) => all.splice(Math.min(all.length, Math.floor(((i + 1) * all.length) / (dups.length + 1)) + REQUEST_SIZE), 0, d));
    const requests: unknown[][] = [];
    for (let i = 0; i < all.length; i += REQUEST_SIZE) requests.push(all.slice(i, i + REQUEST_SIZE));

    // The JVM behind DynamoDB Local writes about half as fast until it has compiled its write path:
    // warm it first, so that the ceiling before counting is not a cold figure.
    if (RAW_WARMUP > 0) await rawPuts('warm-up', RAW_WARMUP);
    const rawBefore = await rawPuts('before');
    if (RAW_WARMUP > 0) await rawInserts('warm-up', RAW_WARMUP / 2);
    const insertsBefore = await rawInserts('before');

    capacity.reset();
    archiveWrites.puts = 0;
    archiveWrites.events = 0;
    limitWrites.count = 0;
    tally.on = true;
    // BACKLOG=1: the aggregator waits until every request is queued, then counts the backlog alone.
    const usagePollers = stack.pollers.filter((p) => p.queueUrl === stack.resources.queues['UsageQueue']!.url);
    if (BACKLOG) await Promise.all(usagePollers.map((p) => p.stop()));
    let profiler: CpuProfiler | undefined = PROFILE && !BACKLOG ? await startCpuProfile() : undefined;
    let cpuBefore = { self: process.cpuUsage(), children: descendantCpuSeconds() };
    let t0 = performance.now();
    const tSend = t0;
    let next = 0;
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (next < requests.length) {
          const res = await post(stack.url, requests[next++]!);
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${res.text}`);
        }
      }),
    );
    const tIngested = performance.now();
    if (BACKLOG) {
      const cpu = process.cpuUsage(cpuBefore.self);
      console.log(
        `ingest alone: ${EVENTS} events queued in ${secs(tIngested - tSend)} s, ${((cpu.user + cpu.system) / 1000 / EVENTS).toFixed(3)} ms of this process's CPU per event`,
      );
      profiler = PROFILE ? await startCpuProfile() : undefined;
      cpuBefore = { self: process.cpuUsage(), children: descendantCpuSeconds() };
      t0 = performance.now();
      usagePollers.forEach((p) => p.start());
    }

    const expectedValue = (c: number) => (Math.floor(unique / CUSTOMERS) + (c < unique % CUSTOMERS ? 1 : 0)) * 1.5;
    const readTotals = async (): Promise<{ total: number; duplicates: number; values: string[] }> => {
      let total = 0;
      let duplicates = 0;
      const values: string[] = [];
      for (let c = 0; c < CUSTOMERS; c++) {
        const usage = await usageOf(stack.url, `cus_bench_${c}`);
        if (!usage) return { total: 0, duplicates: 0, values: [] };
        values.push(usage.value);
        total += Number(usage.value) / 1.5;
        duplicates += usage.duplicates;
      }
      return { total, duplicates, values };
    };
    // Done when the usage API shows every event. Until the queue is empty that cannot be, so the
    // bench watches the queue (one small request) instead of loading the API it measures.
    let totals = { total: 0, duplicates: 0, values: [] as string[] };
    while (totals.total + totals.duplicates < EVENTS) {
      while ((await queueDepth(stack, 'UsageQueue')) > 0) await sleep(100);
      totals = await readTotals();
      if (totals.total + totals.duplicates < EVENTS) await sleep(100);
    }
    const tCounted = performance.now();
    tally.on = false;
    const cpuSelf = process.cpuUsage(cpuBefore.self);
    const cpuChildren = [...descendantCpuSeconds()].map(([name, s]) => [name, s - (cpuBefore.children.get(name) ?? 0)] as const);
    const profiled = await profiler?.stop('bench-metering-counting');
    const priced = capacity.pricedUnits;
    const reported = capacity.reportedUnits;
    const archive = { ...archiveWrites };
    const keyLimitWrites = limitWrites.count;
    const rawProfiler: CpuProfiler | undefined = PROFILE ? await startCpuProfile() : undefined;
    const rawAfter = await rawPuts('after');
    const rawProfiled = await rawProfiler?.stop('bench-metering-raw');
    const insertsAfter = await rawInserts('after');
    const exact = totals.values.every((v, c) => v === String(expectedValue(c)));

    const endToEnd = EVENTS / ((tCounted - t0) / 1000);
    console.log(`\nexactly-once counting, local stack (DynamoDB Local ${'3.x'}, fauxqs, ${POLLERS} pollers), ${new Date().toISOString()}`);
    console.log(
      `machine:     ${cpus().length} cores, load average ${load.join(' ')} at start${PROFILE ? '; PROFILE=1: the counting phase ran under the CPU profiler' : ''}`,
    );
    console.log(
      `workload: ${EVENTS} events (${unique} unique + ${EVENTS - unique} duplicates), ${CUSTOMERS} customers, ${requests.length} requests of <= ${REQUEST_SIZE}, ${SENDERS} senders`,
    );
    console.log(`ingest:      ${secs(tIngested - tSend)} s  -> ${Math.round(EVENTS / ((tIngested - tSend) / 1000))} events/s accepted (202)`);
    console.log(
      `${BACKLOG ? 'backlog:    ' : 'end to end: '} ${secs(tCounted - t0)} s  -> ${Math.round(endToEnd)} events/s counted${BACKLOG ? ' (the aggregator alone, from a full queue)' : ''}`,
    );
    console.log(
      `read back:   counted ${totals.total} unique events (expected ${unique}), duplicatesDropped ${totals.duplicates} (expected ${EVENTS - unique}), values exact: ${exact}`,
    );
    const per1000 = (u: number) => ((u / EVENTS) * 1000).toFixed(1);
    console.log(`DynamoDB:    ${priced} write units by AWS pricing rules -> ${per1000(priced)} per 1,000 events`);
    console.log(
      `             ${reported} reported by DynamoDB Local (ReturnConsumedCapacity; it reports nothing for PartiQL batches, the claims, and bills transactional items at 1, AWS at 2) -> ${per1000(reported)} per 1,000 events`,
    );
    console.log(
      `key limits:  ${keyLimitWrites} write units beside them (1 per request and 1 per ingest request's events, docs/scaling.md "Limits") -> ${per1000(keyLimitWrites)} per 1,000 events at ${REQUEST_SIZE} events per request`,
    );
    // Archived events beyond the unique ones were written by a message counted twice (a redelivery): their writes inflate the figures above.
    console.log(
      `S3 archive:  ${archive.puts} PUTs for ${archive.events} archived events -> ${per1000(archive.puts)} PUTs per 1,000 events ($${((archive.puts / EVENTS) * 1e6 * 0.000005).toFixed(2)} per million events at $0.005 per 1,000 PUTs)`,
    );

    // What one event costs in DynamoDB requests.
    const count = (name: string) => tally.requests.get(name) ?? 0;
    const claimRequestsSent = count('BatchExecuteStatement (event claims)');
    const messages = count('PutItem Dedupe (message settled)');
    const transactions = count('TransactWriteItems');
    const total = (kind: RegExp) => [...tally.requests].filter(([n]) => kind.test(n)).reduce((s, [, v]) => s + v, 0);
    const writeRequests = total(/^(Put|Update|Delete|TransactWrite|BatchWrite|BatchExecuteStatement)/);
    const readRequests = total(/^(Get|Query|Scan|BatchGet)/);
    console.log(
      `requests:    ${[...tally.requests]
        .sort((a, b) => b[1] - a[1])
        .map(([n, v]) => `${n} ${v}`)
        .join(', ')}; most in flight at once ${tally.peak} (the SDK sends 50 at a time per client)`,
    );
    console.log(
      `per event:   ${(tally.statements / EVENTS).toFixed(2)} claim INSERT in ${(claimRequestsSent / EVENTS).toFixed(3)} requests (${(tally.statements / Math.max(1, claimRequestsSent)).toFixed(1)} claims each) + per message (${messages} messages settled, ${(EVENTS / Math.max(1, messages)).toFixed(0)} events each): ` +
        `${(transactions / Math.max(1, messages)).toFixed(2)} transactions of ${(tally.transactItems / Math.max(1, transactions)).toFixed(1)} items (marker + period, duplicates and daily counters) + 1 settled PutItem ` +
        `-> ${(writeRequests / EVENTS).toFixed(3)} write requests per event (reads, the bench's read-back polls included: ${(readRequests / EVENTS).toFixed(3)} per event)`,
    );

    const rawMean = (rawBefore + rawAfter) / 2;
    const ratio = endToEnd / rawMean;
    const insertsMean = (insertsBefore + insertsAfter) / 2;
    console.log(
      `ceiling:     raw conditional PutItems (new keys, dedupe table, the aggregator's client, ${writers} concurrent writers = ${POLLERS} pollers x ${recordsPerInvocation} records x ${DEFAULT_WRITE_CONCURRENCY}), ${RAW_SECONDS} s each: ` +
        `${Math.round(rawBefore)}/s before counting (after ${RAW_WARMUP} s of the same to warm the JVM), ${Math.round(rawAfter)}/s after, mean ${Math.round(rawMean)}/s`,
    );
    console.log(
      `             raw INSERTs of new keys, 25 to a BatchExecuteStatement as the claims are sent, ${claimRequests} requests in flight = ${POLLERS} pollers x ${recordsPerInvocation} records x ${DEFAULT_CLAIM_REQUESTS}: ` +
        `${Math.round(insertsBefore)}/s before counting (after ${RAW_WARMUP / 2} s of the same), ${Math.round(insertsAfter)}/s after, mean ${Math.round(insertsMean)}/s`,
    );
    console.log(
      `ratio:       end-to-end ${Math.round(endToEnd)} events/s / raw ${Math.round(rawMean)} PutItems/s = ${ratio.toFixed(3)} (against the figure before alone: ${(endToEnd / rawBefore).toFixed(3)}, after alone: ${(endToEnd / rawAfter).toFixed(3)}; goal >= ${TARGET_RATIO})`,
    );
    console.log(
      `             end-to-end / raw ${Math.round(insertsMean)} batched INSERTs/s = ${(endToEnd / insertsMean).toFixed(3)}: against the store's ceiling for the claims' own form of write, where each event's claim is 1/25 of a request and the rest of the work shows`,
    );
    const wall = (tCounted - t0) / 1000;
    const cpuLine = [['this process (HTTP API, pollers, handlers)', (cpuSelf.user + cpuSelf.system) / 1e6] as const, ...cpuChildren]
      .filter(([, s]) => s >= 0.1)
      .map(([name, s]) => `${name} ${s.toFixed(1)} s (${((100 * s) / wall).toFixed(0)}% of a core)`)
      .join(', ');
    console.log(`CPU:         during the counting phase (${wall.toFixed(1)} s): ${cpuLine}`);
    const perPut = (tag: string) => (rawCpuMsPerPut.get(tag) ?? 0).toFixed(3);
    console.log(
      `             this process per event counted: ${((cpuSelf.user + cpuSelf.system) / 1000 / EVENTS).toFixed(3)} ms of CPU; per raw PutItem: ${perPut('put before')} ms before, ${perPut('put after')} ms after; per raw batched INSERT: ${perPut('insert before')} / ${perPut('insert after')} ms`,
    );

    // Reconciliation: every counter of the period recomputed from the archive and compared (before
    // the freshness phases add events to the same period).
    const { container } = require('../lib/platform/container') as typeof import('../lib/platform/container');
    const { tapMetrics } = require('../local/dev/metrics-tap') as typeof import('../local/dev/metrics-tap');
    const { reconcile } = require('../lib/app/audit') as typeof import('../lib/app/audit');
    const tr = performance.now();
    const rec = await reconcile(container(), { period: time.slice(0, 7) });
    console.log(
      `reconcile:   ${rec.events} archived events of ${rec.customers} customers in ${secs(performance.now() - tr)} s, ${rec.drifts.length} drifting counters`,
    );
    if (rec.drifts.length > 0 || rec.events !== unique) process.exitCode = 1;
    console.log(`memory:      rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (this process: HTTP API + aggregator + pollers)`);
    if (!exact || totals.total !== unique || totals.duplicates !== EVENTS - unique) process.exitCode = 1;

    if (profiled) {
      const { total, functions, groups, categories } = selfTimes(profiled.profile, join(__dirname, '..'));
      const line = (t: { name: string; ms: number; share: number }) =>
        `  ${(t.ms / 1000).toFixed(2).padStart(7)} s ${(100 * t.share).toFixed(1).padStart(5)}%  ${t.name}`;
      console.log(`\nCPU profile of the counting phase: ${profiled.file} (${(total / 1000).toFixed(1)} s sampled in this process)`);
      console.log('self time by kind of code:');
      categories.forEach((c) => console.log(line(c)));
      console.log('top 15 by self time, per package or file:');
      groups.slice(0, 15).forEach((g) => console.log(line(g)));
      console.log('top 15 functions by self time:');
      functions.slice(0, 15).forEach((f) => console.log(line(f)));
      if (rawProfiled) {
        // Per operation: an event counted end to end against one raw PutItem, by kind of code.
        const raw = selfTimes(rawProfiled.profile, join(__dirname, '..'));
        const puts = rawAfter * RAW_SECONDS;
        const rawBy = new Map(raw.groups.map((g) => [g.name, g.ms]));
        console.log(
          `\nper operation, ms of this process's CPU by package: an event counted (${EVENTS}) / a raw PutItem (${Math.round(puts)}, ${rawProfiled.file})`,
        );
        const names = [...new Set([...groups.slice(0, 25).map((g) => g.name), ...raw.groups.slice(0, 10).map((g) => g.name)])];
        const rows = names.map((name) => ({ name, e: (groups.find((g) => g.name === name)?.ms ?? 0) / EVENTS, r: (rawBy.get(name) ?? 0) / puts }));
        rows.sort((a, b) => b.e - b.r - (a.e - a.r));
        for (const r of rows)
          console.log(`  ${r.e.toFixed(4).padStart(8)} ${r.r.toFixed(4).padStart(8)} ${(r.e - r.r >= 0 ? '+' : '') + (r.e - r.r).toFixed(4)}  ${r.name}`);
      }
    }

    rows.push(
      [BACKLOG ? 'counting a full queue' : 'end to end', `${Math.round(endToEnd)} events/s`, `${EVENTS} events, ${REQUEST_SIZE} per request`],
      ['raw conditional PutItem', `${Math.round(rawBefore)} / ${Math.round(rawAfter)} per s`, `before / after counting, ${writers} writers`],
      ['ratio to the ceiling', ratio.toFixed(3), `end to end / raw PutItems; goal >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'missed'}`],
      ['raw batched INSERT', `${Math.round(insertsBefore)} / ${Math.round(insertsAfter)} per s`, `25 per request, ${claimRequests} requests in flight`],
      ['ratio to batched INSERTs', (endToEnd / insertsMean).toFixed(3), 'end to end / raw INSERTs in the claims own form'],
      ['write requests per event', (writeRequests / EVENTS).toFixed(3), `${(claimRequestsSent / EVENTS).toFixed(3)} claim requests + per-message writes`],
      ['write units per 1,000 events', per1000(priced), 'AWS pricing rules'],
      ['counts exact', String(process.exitCode !== 1), 'read back and reconcile'],
    );

    // Freshness: open loop at 50% and 90% of the rate just measured.
    console.log(
      `\nfreshness: 202 -> visible in GET usage; ${FRESH_SECONDS} s per phase, background in a request every ${FRESH_BACKGROUND_MS} ms for ${CUSTOMERS} customers, ` +
        `${FRESH_PROBES} single-event probes/s each polling every ${FRESH_POLL_MS} ms; local poller: long poll ${RECEIVE_WAIT_SECONDS} s, up to ${recordsPerInvocation} messages per invocation, no batching window (serverless.yml's maximumBatchingWindow is not emulated)`,
    );
    for (const share of [50, 90] as const) {
      // From an empty queue: a message of the counting phase redelivered (it outlasted VISIBILITY) would be counted again now.
      if (!(await waitQuiet(stack, 'UsageQueue'))) console.log('the usage queue did not empty within 5 minutes; the phase starts anyway');
      const f = await freshness(stack, (share / 100) * endToEnd, `f${share}-${run}`, tapMetrics);
      const target = TARGETS_P99_MS[share];
      const ms = (v: number | undefined) => (v === undefined ? 'n/a' : `${Math.round(v)} ms`);
      const p = (q: number) => (f.latencies.length ? percentile(f.latencies, q) : undefined);
      console.log(
        `at ${share}% (${Math.round(f.offered)} events/s offered, ${Math.round(f.sentRate)} sent, ${Math.round(f.countedRate)} counted while sending; ${f.backlog} messages queued or in flight when sending stopped): ` +
          `${f.latencies.length} probes p50 ${ms(p(50))} p95 ${ms(p(95))} p99 ${ms(p(99))} max ${ms(f.latencies.at(-1))}` +
          `${f.unseen ? `, ${f.unseen} not visible within ${PROBE_TIMEOUT_MS / 1000} s` : ''}${f.failures ? `, ${f.failures} requests not answered 202` : ''} (target p99 <= ${target} ms); ` +
          `the aggregator's lag (message received -> counters written) p50 ${ms(f.lags.length ? percentile(f.lags, 50) : undefined)} p99 ${ms(f.lags.length ? percentile(f.lags, 99) : undefined)}; ` +
          `${Math.round(f.getRate)} GET usage/s from the probes, ${Math.round(f.getMs)} ms each on average`,
      );
      const met = f.unseen === 0 && f.latencies.length > 0 && p(99)! <= target;
      rows.push(
        [`freshness at ${share}% p50 / p95 / p99`, `${ms(p(50))} / ${ms(p(95))} / ${ms(p(99))}`, `target p99 <= ${target} ms: ${met ? 'met' : 'missed'}`],
        [`freshness at ${share}% max`, ms(f.latencies.at(-1)), `${Math.round(f.offered)} events/s offered${f.unseen ? `, ${f.unseen} probes unseen` : ''}`],
      );
    }

    const width = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    console.log(`\nsummary (machine under load: ${cpus().length} cores, load average ${load.join(' ')} at start)`);
    for (const r of rows) console.log(`  ${r[0].padEnd(width[0]!)}  ${r[1].padStart(width[1]!)}  ${r[2]}`);
  } finally {
    await stack.stop();
  }
}

interface Freshness {
  offered: number;
  sentRate: number;
  countedRate: number;
  /** Usage messages waiting or being processed when the phase stopped sending. */
  backlog: number;
  /** Probe latencies from the 202 to the GET that showed the event, sorted. */
  latencies: number[];
  unseen: number;
  failures: number;
  getRate: number;
  /** Mean time of one GET usage: the probes' resolution. */
  getMs: number;
  /** The aggregator's ProcessingLag metric (enqueued -> counters written) of every message, sorted. */
  lags: number[];
}

/**
 * One open-loop phase: whatever happens to earlier requests, every FRESH_BACKGROUND_MS a request of
 * the background events of the next interval, and every 100 ms the probes due, are sent; each probe
 * then polls its customer's usage.
 */
async function freshness(stack: Stack, rate: number, run: string, tapMetrics: (tap: (name: string, value: number) => void) => () => void): Promise<Freshness> {
  const tickMs = 100;
  const probeRate = Math.min(FRESH_PROBES, rate);
  const backgroundRate = rate - probeRate;
  const time = new Date().toISOString();
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  let background = 0;
  let probes = 0;
  let unseen = 0;
  let failures = 0;
  let gets = 0;
  let getMs = 0;
  const lags: number[] = [];
  let eventsCounted = 0;
  const untap = tapMetrics((name, value) => {
    if (name === 'ProcessingLag') lags.push(value);
    else if (name === 'EventsCounted') eventsCounted += value;
  });
  const send = (events: unknown[]) =>
    post(stack.url, events).then(
      (r) => r.status === 202,
      () => false,
    );
  const probe = async (customer: string) => {
    if (!(await send([cloudEvent(`${run}-${customer}`, customer, time)]))) return void failures++;
    const accepted = performance.now();
    while (performance.now() - accepted < PROBE_TIMEOUT_MS) {
      const polled = performance.now();
      gets++;
      const usage = await usageOf(stack.url, customer).catch(() => undefined);
      getMs += performance.now() - polled;
      if (usage && Number(usage.value) > 0) return void latencies.push(performance.now() - accepted);
      await sleep(Math.max(0, FRESH_POLL_MS - (performance.now() - polled)));
    }
    unseen++;
  };
  const counted0 = eventsCounted;
  const t0 = performance.now();
  for (let k = 0; k * tickMs < FRESH_SECONDS * 1000; k++) {
    await sleep(t0 + k * tickMs - performance.now());
    const due = (r: number) => Math.floor((r * (k + 1) * tickMs) / 1000);
    // The background in requests every FRESH_BACKGROUND_MS, the shape the end-to-end rate was measured with.
    const ticksPerBackground = Math.max(1, Math.round(FRESH_BACKGROUND_MS / tickMs));
    const backgroundDue = k % ticksPerBackground === 0 ? Math.floor((backgroundRate * (k + ticksPerBackground) * tickMs) / 1000) : background;
    const batch = Array.from({ length: Math.max(0, backgroundDue - background) }, (_, i) => {
      const n = background + i;
      return cloudEvent(`${run}-b${n}`, `cus_fresh_${n % CUSTOMERS}`, time);
    });
    background += batch.length;
    // A request takes at most REQUEST_SIZE events (the API's limit is 1,000): a second's worth above that is several requests.
    for (let i = 0; i < batch.length; i += REQUEST_SIZE) inFlight.push(send(batch.slice(i, i + REQUEST_SIZE)).then((ok) => void (ok || failures++)));
    for (; probes < due(probeRate); probes++) inFlight.push(probe(`cus_probe_${run}_${probes}`));
  }
  const sendingSeconds = (performance.now() - t0) / 1000;
  const counted = eventsCounted - counted0;
  const backlog = await queueDepth(stack, 'UsageQueue');
  await Promise.all(inFlight);
  const seconds = (performance.now() - t0) / 1000;
  untap();
  return {
    offered: rate,
    sentRate: (background + probes) / sendingSeconds,
    countedRate: counted / sendingSeconds,
    backlog,
    latencies: latencies.sort((a, b) => a - b),
    unseen,
    failures,
    getRate: gets / seconds,
    getMs: getMs / Math.max(1, gets),
    lags: lags.sort((a, b) => a - b),
  };
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  // The stack has stopped (main's finally); nothing left should keep the process up.
  .finally(() => process.exit());
