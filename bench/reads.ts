import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import catalogJson from '../catalog/catalog.json';
import { Period } from '../lib/domain/period';
import { startStack } from '../local/runtime/stack';
import { descendantCpuSeconds, selfTimes, startCpuProfile } from './cpu-profile';

/**
 * `npm run bench:reads`: latency of the read endpoints at a fixed request rate on the local stack.
 *
 * A catalog of 10 meters, one customer with 3 months of history (usage in each month, the two
 * closed months invoiced, so the preview has earlier invoices and corrections to look at), then for
 * each endpoint WARMUP seconds (default 10) of unmeasured requests and RATE requests/s (default 200)
 * for DURATION seconds (default 15), both open loop: requests
 * leave on schedule whether or not earlier ones came back, so a slow server shows as latency, not as
 * a lower rate. Prints p50/p95/p99/max per endpoint and the CPU this process (client, API and
 * handlers together) and DynamoDB Local's JVM used in each endpoint's phase; exits non-zero on any
 * non-200. PROFILE=1 also profiles this process per endpoint and prints where its CPU went.
 */
const RATE = Number(process.env.RATE ?? 200);
const SECONDS = Number(process.env.DURATION ?? 15);
/** Only the endpoints whose name contains this (e.g. ONLY=upcoming). */
const ONLY = process.env.ONLY ?? '';
const PROFILE = process.env.PROFILE === '1';
/** Seconds of unmeasured requests at RATE before each endpoint's measured ones. */
const WARMUP = Number(process.env.WARMUP ?? 10);
const HOUR = 3_600_000;

function tenMeterCatalog() {
  const extra = Array.from({ length: 6 }, (_, i) => ({
    slug: `feature_${i}`,
    displayName: `Feature ${i}`,
    unit: 'calls',
    eventType: `feature_${i}`,
    aggregation: 'SUM',
    valueProperty: '$.value',
  }));
  const meters = [...catalogJson.meters.filter((m) => m.slug !== 'active_users'), ...extra];
  const plans = catalogJson.plans.map((p) =>
    p.id === 'default'
      ? {
          ...p,
          charges: [
            ...p.charges,
            ...extra.map((m) => ({
              meter: m.slug,
              model: 'graduated',
              included: '100',
              tiers: [
                { upTo: '100', unitPrice: '0' },
                { upTo: null, unitPrice: '0.01' },
              ],
            })),
          ],
        }
      : p,
  );
  const file = join(tmpdir(), `bench-catalog-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ meters, plans }));
  return { file, meters: meters.map((m) => m.slug) };
}

/**
 * A GET over a pool of kept-alive connections: an open loop at a rate the server cannot keep up
 * with would otherwise open a connection per waiting request. Resolves with the status; a network
 * error rejects (counted as a non-200).
 */
const pool = new Agent({ keepAlive: true, maxSockets: 128 });
const errors = new Set<string>();
function get(url: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: pool, headers: { authorization } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main() {
  const catalog = tenMeterCatalog();
  const stack = await startStack({ port: 0, env: { CATALOG_FILE: catalog.file, INVOICE_GRACE_MINUTES: '0' } });
  const { container } = require('../lib/platform/container') as typeof import('../lib/platform/container');
  const c = container();
  const realClock = c.clock;
  const at = (d: Date) => (c.clock = { now: () => d });
  const headers = { authorization: 'Bearer local-admin-key', 'content-type': 'application/json' };
  const id = 'cus_reads';
  try {
    const now = Period.containing(new Date());
    const months = [now.previous().previous(), now.previous(), now];
    // Three months of history: the customer exists from the first month, usage every month on
    // every meter, the two closed months invoiced (then a late event for the last closed one).
    at(new Date(months[0]!.start.getTime() + HOUR));
    await fetch(`${stack.url}/api/v1/customers/${id}`, { method: 'PUT', headers, body: JSON.stringify({ name: 'Reads', budget: { amount: '500.00' } }) });
    for (const [n, month] of months.entries()) {
      const time = n === 2 ? new Date(Date.now() - 60_000) : new Date(month.start.getTime() + 2 * HOUR);
      at(new Date(time.getTime() + 60_000));
      const events = catalog.meters.flatMap((meter, i) =>
        Array.from({ length: 20 }, (_, k) => ({
          specversion: '1.0',
          id: `${month.key}-${meter}-${k}`,
          source: 'bench-reads',
          type: catalogJson.meters.find((m) => m.slug === meter)?.eventType ?? meter,
          subject: id,
          time: time.toISOString(),
          data: { value: 1000 * (i + 1) + k },
        })),
      );
      const res = await fetch(`${stack.url}/api/v1/events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(events),
      });
      if (res.status !== 202) throw new Error(`ingest ${res.status}: ${await res.text()}`);
      await new Promise((r) => setTimeout(r, 3000));
      if (n < 2) {
        at(new Date(month.end.getTime() + HOUR));
        await fetch(`${stack.url}/api/v1/invoice-runs`, { method: 'POST', headers, body: JSON.stringify({ period: month.key, force: true }) });
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    c.clock = realClock;

    const endpoints = [
      ['GET usage', `/api/v1/customers/${id}/usage`],
      ['GET invoices/upcoming', `/api/v1/customers/${id}/invoices/upcoming`],
      ['GET entitlements', `/api/v1/customers/${id}/entitlements`],
      ['GET entitlements/{meter}', `/api/v1/customers/${id}/entitlements/api_calls`],
    ] as const;
    const shoot = async (path: string, rate: number, seconds: number) => {
      const latencies: number[] = [];
      let failures = 0;
      const total = Math.round(rate * seconds);
      const start = performance.now();
      await Promise.all(
        Array.from({ length: total }, async (_, i) => {
          const due = start + (i * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const t0 = performance.now();
          const status = await get(`${stack.url}${path}`, headers['authorization']).catch((err: Error) => {
            errors.add(`${err.name}: ${err.message}`);
            return 0;
          });
          latencies.push(performance.now() - t0);
          if (status !== 200) failures++;
        }),
      );
      return { latencies: latencies.sort((a, b) => a - b), failures };
    };

    console.log(
      `\nread latency, local stack, ${RATE} requests/s for ${SECONDS} s per endpoint after ${WARMUP} s of warm-up at that rate, 10 meters, 3 months of history (${new Date().toISOString()})`,
    );
    console.log('endpoint                    requests  p50 ms  p95 ms  p99 ms  max ms  non-200  CPU % of a core: this process / DynamoDB Local');
    let bad = 0;
    const profiles: string[] = [];
    for (const [name, path] of endpoints.filter(([name]) => name.includes(ONLY))) {
      // Warm-up at the same rate, not measured: the handlers' first calls and the JIT of DynamoDB Local's JVM.
      if (WARMUP > 0) await shoot(path, RATE, WARMUP);
      const profiler = PROFILE ? await startCpuProfile() : undefined;
      const cpu0 = { self: process.cpuUsage(), children: descendantCpuSeconds(), at: performance.now() };
      const { latencies, failures } = await shoot(path, RATE, SECONDS);
      const wall = (performance.now() - cpu0.at) / 1000;
      const self = process.cpuUsage(cpu0.self);
      const java = (descendantCpuSeconds().get('DynamoDB Local (java)') ?? 0) - (cpu0.children.get('DynamoDB Local (java)') ?? 0);
      bad += failures;
      const f = (n: number) => n.toFixed(1).padStart(7);
      const share = (s: number) => `${Math.round((100 * s) / wall)}%`;
      console.log(
        `${name.padEnd(26)} ${String(latencies.length).padStart(9)} ${f(percentile(latencies, 50))} ${f(percentile(latencies, 95))} ${f(percentile(latencies, 99))} ${f(latencies.at(-1)!)} ${String(failures).padStart(8)}  ${share((self.user + self.system) / 1e6)} / ${share(java)}`,
      );
      const profiled = await profiler?.stop(`bench-reads-${name.replace(/\W+/g, '-')}`);
      if (profiled) {
        const { total, functions, categories } = selfTimes(profiled.profile, join(__dirname, '..'));
        const line = (t: { name: string; ms: number; share: number }) =>
          `    ${(t.ms / 1000).toFixed(2).padStart(6)} s ${(100 * t.share).toFixed(1).padStart(5)}%  ${t.name}`;
        profiles.push(
          `  ${name}: ${profiled.file} (${(total / 1000).toFixed(1)} s sampled)`,
          ...categories.map(line),
          '  top 12 functions:',
          ...functions.slice(0, 12).map(line),
        );
      }
    }
    if (profiles.length > 0) console.log(`\nCPU profiles of this process (load client, HTTP API and handlers), self time:\n${profiles.join('\n')}`);
    for (const e of errors) console.log(`network error: ${e}`);
    if (bad > 0) process.exitCode = 1;
  } finally {
    c.clock = realClock;
    pool.destroy();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
