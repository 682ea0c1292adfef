import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Table from 'cli-table3';
import { bundleProblems, packageService, readBundles, type Bundle } from '../tools/bundles';

/**
 * `npm run bench:bundles`: what each function ships and how long its handler module takes to load.
 *
 * Packages the service offline (`osls package --stage prod`), reads each function's zip, and prints
 * per function: the zip, handler.js and its source map in KB, the Stripe SDK modules in the bundle,
 * and the time to `require` handler.js in a fresh `node` process (a cold-start proxy: the median of
 * RUNS processes, default 5), with the Lambda environment's NODE_OPTIONS (--enable-source-maps) and
 * the AWS SDK resolved from node_modules as the nodejs22.x runtime provides it. Exits non-zero when
 * ingest or aggregate reaches 400 KB or a function other than the invoice worker bundles Stripe.
 */
const RUNS = Number(process.env.RUNS ?? 5);
const root = join(__dirname, '..');

/** Enough of the deployed environment for config() to accept it (serverless.yml provider.environment). */
const LAMBDA_ENV = {
  STAGE: 'prod',
  AWS_REGION: 'us-east-1',
  NODE_OPTIONS: '--enable-source-maps',
  USAGE_TABLE: 'usage',
  DEDUPE_TABLE: 'dedupe',
  CUSTOMERS_TABLE: 'customers',
  API_KEYS_TABLE: 'api-keys',
  USAGE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/usage',
  INVOICES_TABLE: 'invoices',
  ALERTS_TABLE: 'alerts',
  RATE_LIMITS_TABLE: 'rate-limits',
  INVOICE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/invoices',
  INVOICE_GRACE_MINUTES: '60',
  INVOICE_MAX_RECEIVES: '3',
  ALERTS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:alerts',
  ARCHIVE_BUCKET: 'archive',
  CURSOR_SECRET: 'bench-cursor-secret-of-at-least-32-characters',
  PUBLIC_URL: '',
  DEDUPE_WINDOW_DAYS: '35',
  POWERTOOLS_SERVICE_NAME: 'usage-metering',
  POWERTOOLS_METRICS_NAMESPACE: 'UsageMetering',
  STRIPE_MAX_RPS: '3.68',
  STRIPE_MAX_ENDPOINT_RPS: '0.92',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

const LOAD = 'const t = process.hrtime.bigint(); require(process.argv[1]); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));';

/** Milliseconds to require the bundle in a fresh node process, median of RUNS. */
function importMs(dir: string, b: Bundle): number {
  const file = join(dir, b.file);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, b.js);
  if (b.map) writeFileSync(`${file}.map`, b.map);
  const env = { PATH: process.env.PATH ?? '', NODE_PATH: join(root, 'node_modules'), ...LAMBDA_ENV };
  const times = Array.from({ length: RUNS }, () => Number(execFileSync(process.execPath, ['-e', LOAD, file], { env, encoding: 'utf8' })));
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

function main() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-bundles-'));
  try {
    const started = Date.now();
    packageService(join(dir, 'package'));
    console.log(`packaged in ${((Date.now() - started) / 1000).toFixed(1)} s; timing each distinct handler.js ${RUNS} times`);
    const bundles = readBundles(join(dir, 'package'));
    // Functions sharing a handler file ship the same bundle: time it once.
    const timed = new Map<string, number>();
    const table = new Table({
      head: ['function', 'zip KB', 'handler.js KB', 'map KB', 'Stripe modules', `import ms (median of ${RUNS})`],
      style: { head: [], border: [], compact: true },
    });
    const kb = (n: number) => (n / 1024).toFixed(0);
    for (const b of bundles) {
      const hash = createHash('sha256').update(b.js).digest('hex');
      if (!timed.has(hash)) timed.set(hash, importMs(join(dir, hash.slice(0, 12)), b));
      const zip = statSync(join(dir, 'package', `${b.fn}.zip`)).size;
      table.push([b.fn, kb(zip), kb(b.js.length), b.map ? kb(b.map.length) : '-', b.stripeModules, timed.get(hash)!.toFixed(0)]);
    }
    console.log(table.toString());
    const problems = bundleProblems(bundles);
    for (const p of problems) console.error(`FAIL: ${p}`);
    if (problems.length > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
