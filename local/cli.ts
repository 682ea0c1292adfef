import './node-support';
import { Presets, SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCOPES, type Principal, type Scope } from '../lib/domain/apikey';
import { DomainError } from '../lib/domain/errors';
import { Period } from '../lib/domain/period';
import { ROOT } from './deployment';

/**
 * Operator CLI: `npm run cli -- <command>`. It runs the same use cases as the API, straight against
 * the tables: locally against the stack `npm start` runs (it reads .local/stack.json), on AWS with
 * the environment of the deployed functions (API_KEYS_TABLE, ... and AWS credentials).
 */
export const STACK_FILE = join(ROOT, '.local', 'stack.json');

function loadEnvironment(): void {
  if (process.env.API_KEYS_TABLE) return;
  if (!existsSync(STACK_FILE)) {
    throw new Error('no stack found: run `npm start` first, or set API_KEYS_TABLE and the other function environment variables for a deployed stage');
  }
  Object.assign(process.env, JSON.parse(readFileSync(STACK_FILE, 'utf8')) as Record<string, string>);
}

/** The CLI acts as an operator with every scope (it holds the table credentials anyway). */
const operator: Principal = { keyId: 'cli', scopes: [...SCOPES] };

function scopes(value: string): Scope[] {
  const list = value.split(',').map((s) => s.trim());
  const bad = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (bad.length || list.length === 0) throw new InvalidArgumentError(`scopes must be a comma-separated list of ${SCOPES.join(', ')}; got "${value}"`);
  return list as Scope[];
}

async function withContainer<T>(fn: (c: import('../lib/platform/container').Container) => Promise<T>): Promise<void> {
  loadEnvironment();
  const { container } = await import('../lib/platform/container');
  const out = await fn(container());
  console.log(JSON.stringify(out, null, 2));
}

export function program(): Command {
  const cli = new Command('usage-metering').description('operator commands for the usage metering service');
  const keys = cli.command('keys').description('API keys (stored hashed; the plain key is shown once)');
  keys
    .command('create')
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(',')}`, scopes)
    .option('--customer <id>', 'bind the key to one customer')
    .action((o: { name: string; scopes: Scope[]; customer?: string }) =>
      withContainer(async (c) => {
        const { apiKeyInput, createApiKey } = await import('../lib/app/apikeys');
        return createApiKey(c, operator, apiKeyInput.parse({ name: o.name, scopes: o.scopes, customerId: o.customer }));
      }),
    );
  keys.command('list').action(() => withContainer(async (c) => (await import('../lib/app/apikeys')).listApiKeys(c, operator)));
  keys.command('revoke <keyId>').action((keyId: string) => withContainer(async (c) => (await import('../lib/app/apikeys')).revokeApiKey(c, operator, keyId)));

  const invoices = cli.command('invoices').description('monthly invoicing');
  invoices
    .command('run')
    .description('start (or resume) the invoice run of a closed period; the invoice workers do the rest')
    .requiredOption('--period <YYYY-MM>', 'the period to invoice', period)
    .option('--force', 'start a new run of a period older than the late-event window or before the first usage')
    .action((o: { period: string; force?: boolean }) =>
      withContainer(async (c) => (await import('../lib/app/invoicing/runs')).startInvoiceRunByHand(c, operator, { period: o.period, force: o.force })),
    );
  invoices
    .command('status')
    .requiredOption('--period <YYYY-MM>', 'the run', period)
    .action((o: { period: string }) => withContainer(async (c) => (await import('../lib/app/invoicing/runs')).getInvoiceRun(c, operator, o.period)));
  invoices
    .command('preview')
    .description("the invoice a customer's period would produce now")
    .requiredOption('--customer <id>', 'customer id')
    .option('--period <YYYY-MM>', 'default: the current period', period)
    .action((o: { customer: string; period?: string }) =>
      withContainer(async (c) => (await import('../lib/app/invoicing/views')).previewInvoice(c, operator, o.customer, o.period)),
    );
  invoices
    .command('list')
    .requiredOption('--customer <id>', 'customer id')
    .action((o: { customer: string }) => withContainer(async (c) => (await import('../lib/app/invoicing/views')).listInvoices(c, operator, o.customer)));
  cli
    .command('reconcile')
    .description("recompute a period's counters from the event archive (minus voids) and compare them with the store; exit 3 on drift")
    .requiredOption('--period <YYYY-MM>', 'the period', period)
    .option('--customer <id>', 'only this customer')
    .option('--fix', "write the archive's value over each drifting counter (compare-and-set) and keep an audit entry")
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { period: string; customer?: string; fix?: boolean; json?: boolean }) => {
      loadEnvironment();
      const { container } = await import('../lib/platform/container');
      const { reconcile } = await import('../lib/app/audit');
      const bar = o.json
        ? undefined
        : new SingleBar({ format: 'reconciling {bar} {value}/{total} customers', clearOnComplete: true, stream: process.stderr }, Presets.shades_classic);
      let started = false;
      const out = await reconcile(container(), {
        period: o.period,
        customerId: o.customer,
        fix: o.fix ? { by: `cli:${process.env.USER ?? 'operator'}` } : undefined,
        onProgress: (done, total) => {
          if (!started) bar?.start(total, 0);
          started = true;
          bar?.update(done);
        },
      });
      bar?.stop();
      if (o.json) console.log(JSON.stringify(out, null, 2));
      else {
        const table = new Table({ head: ['customer', 'meter', 'counter', 'archive', 'drift', ...(o.fix ? ['fixed'] : [])] });
        for (const d of out.drifts)
          table.push([d.customerId, d.meter, d.counter, d.archive, d.drift, ...(o.fix ? [d.fixed ? 'yes' : 'no (it moved; run again)'] : [])]);
        console.log(
          `${o.period}: ${out.customers} customers, ${out.events} archived events, ${out.drifts.length} drifting counter${out.drifts.length === 1 ? '' : 's'}`,
        );
        if (out.drifts.length > 0) console.log(table.toString());
      }
      // Drift found (even when fixed now): exit 3, so a scheduled job notices.
      process.exitCode = out.drifts.length > 0 ? 3 : 0;
    });
  return cli;
}

function period(value: string): string {
  if (!Period.isValidKey(value)) throw new InvalidArgumentError(`period must be YYYY-MM; got "${value}"`);
  return value;
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(err instanceof DomainError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : err);
      process.exit(2);
    });
}
