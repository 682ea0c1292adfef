import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { Command } from 'commander';
import { join, resolve } from 'node:path';
import { ROOT } from '../runtime/deployment';
import { portIsFree } from '../runtime/emulators';
import { startStack, type Stack } from '../runtime/stack';
import { removeStackFile, writeStackFile } from '../../tools/stack-file';
import { CatalogError } from '../../lib/domain/catalog';
import { loadCatalog } from '../../lib/platform/catalog';
import { liveStatus, StatusLine } from './status-line';

/**
 * The whole system on emulators for a person, ready for curl, until Ctrl-C: what `npm start`
 * (start.ts) and `npm run demo` with no stack running (demo.ts) both run. `--persist` (or
 * LOCAL_PERSIST=1) keeps DynamoDB Local's data in .local/dynamodb across restarts.
 */
/** Where --persist keeps DynamoDB Local's data (LOCAL_DATA_DIR: elsewhere, e.g. one per test). */
const DATA_DIR = resolve(process.env.LOCAL_DATA_DIR || join(ROOT, '.local', 'dynamodb'));
const DEFAULT_ADMIN_KEY = 'local-admin-key';

export interface LocalOptions {
  demo: boolean;
  persist: boolean;
}

/** The running stack as a loader of data (the demo) uses it: its API, admin key, environment, and where to print. */
export interface LocalTarget {
  url: string;
  key: string;
  env: Record<string, string>;
  say: (line: string) => void;
}

/** A problem with how the stack was asked to start: one line, no stack trace, exit code 1. */
class StartError extends Error {}

/**
 * CATALOG_FILE (and PUBLISHED_CATALOG_FILE) replace the bundled catalog: read and checked here, as
 * every function would at its start, so a broken one refuses to start the stack (naming each
 * problem) instead of a stack that answers 500 to every request.
 */
function checkCatalogFiles(): void {
  const file = process.env.CATALOG_FILE;
  if (!file) return;
  try {
    loadCatalog(file, process.env.PUBLISHED_CATALOG_FILE);
  } catch (err) {
    const problems = err instanceof CatalogError ? err.problems : [(err as Error).message];
    const shown = problems.slice(0, 10).map((p) => `  ${p}`);
    if (problems.length > shown.length) shown.push(`  and ${problems.length - shown.length} more`);
    throw new StartError([`CATALOG_FILE ${file} cannot be used:`, ...shown].join('\n'));
  }
}

function portFromEnv(): number {
  const text = process.env.PORT ?? '3000';
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65_535) throw new StartError(`PORT must be a port number from 1 to 65535; got "${text}"`);
  return port;
}

/** Starts the stack; once it is ready, `load` (the demo, with --demo) puts data into it. */
export async function runLocal(opts: LocalOptions, load?: (target: LocalTarget) => Promise<unknown>): Promise<void> {
  const port = portFromEnv();
  const key = process.env.LOCAL_ADMIN_KEY || DEFAULT_ADMIN_KEY;
  if (key.length < 8) throw new StartError('LOCAL_ADMIN_KEY must be at least 8 characters');
  checkCatalogFiles();
  // Before anything starts: a taken port would otherwise fail only after the emulators are up.
  if (!(await portIsFree(port))) {
    throw new StartError(`port ${port} is already in use (another \`npm start\`?): stop what uses it, or start on another port: PORT=${port + 1} npm start`);
  }
  console.log(`starting DynamoDB Local${opts.persist ? ` (data kept in ${DATA_DIR})` : ''}, fauxqs, the HTTP API and the SQS pollers...`);
  let status: StatusLine | undefined;
  // The alert sweeper's "every minute" runs every 6 s locally.
  const stack = await startStack({
    port,
    schedules: true,
    scheduleScale: 0.1,
    dataDir: opts.persist ? DATA_DIR : undefined,
    env: { LOCAL_ADMIN_KEY: key },
    onPollerError: (err) => (status ? status.print(`poller: ${String(err)}`, process.stderr) : console.error('poller:', err)),
  }).catch((err: unknown) => {
    // Someone took the port between the check and the listen.
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new StartError(`port ${port} is already in use: start on another port: PORT=${port + 1} npm start`);
    throw err;
  });
  // The CLI (npm run cli) finds this running stack here.
  writeStackFile(stack.env, { LOCAL_API_URL: stack.url, LOCAL_STACK_PID: String(process.pid), LOCAL_STACK_STARTED_AT: new Date().toISOString() });
  console.log(banner(stack, key, opts));

  const live = liveStatus(stack);
  status = new StatusLine(process.stdout, live.render);
  const say = (line: string) => status!.print(line);
  const printer = printAlerts(stack, say);
  status.start();

  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    status!.stop();
    live.stop();
    console.log(`\n${reason}: stopping...`);
    removeStackFile();
    // The printer and every function stop before the emulators they call (Stack.stop).
    await printer.stop();
    await stack.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
  // Whoever started us (npm, a shell, an IDE) was killed without passing a signal on: we are
  // re-parented. Stop, rather than keep the port and the emulators for nobody.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void shutdown('parent process gone'), 1000).unref();

  if (load) await load({ url: stack.url, key, env: stack.env, say }).catch((err: unknown) => say(`demo: ${err instanceof Error ? err.message : String(err)}`));
}

function banner(stack: Stack, key: string, opts: LocalOptions): string {
  const now = new Date().toISOString();
  return `
Usage metering is running (stage local).
  HTTP API        ${stack.url}        (GET /health)
  DynamoDB Local  ${stack.env.DYNAMODB_ENDPOINT}   (${opts.persist ? `data kept in ${DATA_DIR}` : 'in memory: npm start -- --persist keeps it'})
  SQS/SNS fauxqs  ${stack.env.SQS_ENDPOINT}
  usage queue     ${stack.resources.queues.UsageQueue?.url}
  usage DLQ       ${stack.resources.queues.UsageDLQ?.url}
  event archive   s3://${stack.env.ARCHIVE_BUCKET} on ${stack.env.S3_ENDPOINT}   (every counted event, gzipped NDJSON)
  Stripe (fake)   ${stack.stripe.url}   (GET /_fake/state shows what it was sent)
  alerts inbox    ${stack.alertsInbox.url}   (every alert is also printed below as it is sent)
  admin key       ${key}   (stage local only)
  real keys       npm run cli -- keys create --name my-app --scopes ingest,read [--customer cus_42]

Try:
  curl -s -X PUT ${stack.url}/api/v1/customers/cus_42 -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/json' -d '{"name":"Acme","planId":"default"}'
  curl -s -X POST ${stack.url}/api/v1/events -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/cloudevents+json' \\
    -d '{"specversion":"1.0","id":"req_1","source":"curl","type":"api_calls","subject":"cus_42","time":"${now}","data":{"value":1500}}'
  curl -s ${stack.url}/api/v1/customers/cus_42/usage -H 'Authorization: Bearer ${key}'
  curl -s ${stack.url}/api/v1/customers/cus_42/events -H 'Authorization: Bearer ${key}'
  curl -s -X POST ${stack.url}/api/v1/customers/cus_42/portal-links -H 'Authorization: Bearer ${key}'   # open its url in a browser
  curl -s -X POST ${stack.url}/api/v1/events/void -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/json' -d '{"customerId":"cus_42","source":"curl","id":"req_1","reason":"sent twice by mistake"}'
  npm run cli -- usage --customer cus_42
  npm run cli -- reconcile --period ${now.slice(0, 7)}
${opts.demo ? '' : '  npm run demo        (a realistic month: customers on every plan, last month invoiced, alerts)\n'}
Ctrl-C stops everything.`;
}

/** Shows each alert the topic delivers to the local inbox queue: subject and customer. */
function printAlerts(stack: Stack, say: (line: string) => void): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.alertsInbox.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        for (const m of out.Messages ?? []) {
          const envelope = JSON.parse(m.Body ?? '{}') as { Subject?: string; MessageAttributes?: Record<string, { Value: string }> };
          say(`ALERT  ${envelope.Subject ?? '(no subject)'}  [customer ${envelope.MessageAttributes?.customerId?.Value ?? '?'}]`);
          await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.alertsInbox.url, ReceiptHandle: m.ReceiptHandle! }));
        }
      } catch (err) {
        say(`alerts inbox: ${err instanceof Error ? err.message : String(err)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  return {
    stop: async () => {
      running = false; // the receive in flight waits at most 1 s
      await loop;
    },
  };
}

/** What `npm start -- <options>` accepts. */
export function parseStartOptions(argv: string[], name = 'npm start --'): LocalOptions {
  const cmd = new Command(name)
    .description('the whole system on emulators (DynamoDB Local, fauxqs, a Stripe fake) on http://127.0.0.1:$PORT (default 3000)')
    .option('--demo', 'load a realistic month: customers on every plan linked to Stripe, last month invoiced, an alert or two')
    .option(
      '--persist',
      "keep DynamoDB Local's data in .local/dynamodb across restarts (also LOCAL_PERSIST=1); queues, the event archive and the Stripe fake stay in memory",
    )
    .addHelpText('after', '\nEnvironment: PORT (3000), LOCAL_ADMIN_KEY (local-admin-key), LOCAL_PERSIST=1 (as --persist).')
    .allowExcessArguments(false)
    .parse(argv);
  const o = cmd.opts<{ demo?: boolean; persist?: boolean }>();
  return { demo: o.demo === true, persist: o.persist === true || process.env.LOCAL_PERSIST === '1' };
}
