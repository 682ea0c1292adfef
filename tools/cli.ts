import './node-support';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { SCOPES, type Principal, type Scope } from '../lib/domain/apikey';
import { NotFoundError } from '../lib/domain/errors';
import { formatMoney, formatQuantity } from '../lib/domain/money';
import { Period } from '../lib/domain/period';
import { planIdFor } from '../lib/domain/plan-schedule';
import type { Container } from '../lib/platform/container';
import { describeFailure, EXIT, EXIT_CODES_HELP, invalidInput, output, record, table, UsageError, type Cell } from './cli-output';
import { readRunningStack } from './stack-file';

/**
 * Operator CLI: `npm run cli -- <command>`. It runs the same use cases as the API, straight against
 * the tables: locally against the stack `npm start` runs (found through .local/stack.json), on AWS
 * with the environment of the deployed functions (API_KEYS_TABLE, ... and AWS credentials). Tables
 * for people, `--json` for scripts; exit codes in cli-output.ts and `--help`.
 */

async function loadEnvironment(): Promise<void> {
  if (process.env.API_KEYS_TABLE) return;
  Object.assign(process.env, await readRunningStack());
}

async function container(): Promise<Container> {
  await loadEnvironment();
  return (await import('../lib/platform/container')).container();
}

/** The CLI acts as an operator with every scope (it holds the table credentials anyway). */
const operator: Principal = { keyId: 'cli', scopes: [...SCOPES] };

interface Json {
  json?: boolean;
}
const jsonOption = () => new Option('--json', 'print the result as JSON instead of a table');

/** Validates input the way the API does: a ValidationError naming each field, not zod's issue list. */
function parse<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw invalidInput(result.error.issues);
  return result.data;
}

function scopes(value: string): Scope[] {
  const list = value.split(',').map((s) => s.trim());
  const bad = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (bad.length || list.length === 0) throw new InvalidArgumentError(`scopes must be a comma-separated list of ${SCOPES.join(', ')}; got "${value}"`);
  return list as Scope[];
}

function period(value: string): string {
  if (!Period.isValidKey(value)) throw new InvalidArgumentError(`period must be YYYY-MM; got "${value}"`);
  return value;
}

const dash = (v: Cell) => (v === null || v === undefined || v === '' ? '-' : v);
/** A budget with its currency ("$500.00"); one stored before budgets had a currency shows its amount alone. */
const budgetText = (b: { amount: string; currency?: string }) => (b.currency ? formatMoney(b.amount, b.currency) : b.amount);

// ---------------------------------------------------------------------------------------------
// keys

type KeyView = {
  keyId: string;
  name: string;
  scopes: string[];
  customerId: string | null;
  createdAt: string;
  revokedAt: string | null;
  limits: { requestsPerSecond: number; eventsPerMinute: number };
  customLimits: { requestsPerSecond?: number; eventsPerMinute?: number };
};
/** A limit, marked `*` when it is the key's own (not the deployment's default). */
const limitText = (k: KeyView, name: 'requestsPerSecond' | 'eventsPerMinute') => `${k.limits[name]}${k.customLimits[name] === undefined ? '' : '*'}`;
const keyRow = (k: KeyView): Cell[] => [
  k.keyId,
  k.name,
  k.scopes.join(','),
  dash(k.customerId),
  limitText(k, 'requestsPerSecond'),
  limitText(k, 'eventsPerMinute'),
  k.createdAt,
  dash(k.revokedAt),
];
const KEY_HEAD = ['key id', 'name', 'scopes', 'customer', 'requests/s', 'events/min', 'created', 'revoked'];
const KEY_FOOT = "* the key's own limit; the others are the deployment's defaults";
const keysTable = (rows: KeyView[]) =>
  [table(KEY_HEAD, rows.map(keyRow), [4, 5]), ...(rows.some((k) => Object.keys(k.customLimits).length > 0) ? [KEY_FOOT] : [])].join('\n');

/** A limit option: a whole number, or (`keys limits`) "default" to return to the deployment's (commander turns a parsed null into ''). */
function limitValue(value: string): number | 'default' {
  if (value === 'default') return value;
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`a limit is a whole number (or "default"); got "${value}"`);
  return Number(value);
}

function keysCommands(cli: Command): void {
  const keys = cli.command('keys').description('API keys (stored hashed; the plain key is shown once)');
  keys
    .command('create')
    .description('create a key; its plain value is printed once')
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(',')} (admin cannot be bound to a customer)`, scopes)
    .option('--customer <id>', 'bind the key to one customer')
    .option('--requests-per-second <n>', "the key's own limit of requests in one second (default: the deployment's)", limitValue)
    .option('--events-per-minute <n>', "the key's own limit of events ingested in one minute (default: the deployment's)", limitValue)
    .addOption(jsonOption())
    .action(
      async (o: { name: string; scopes: Scope[]; customer?: string; requestsPerSecond?: number | 'default'; eventsPerMinute?: number | 'default' } & Json) => {
        const { apiKeyInput, createApiKey } = await import('../lib/app/apikeys');
        const own = (v: number | 'default' | undefined) => (v === 'default' ? undefined : v);
        const limits = { requestsPerSecond: own(o.requestsPerSecond), eventsPerMinute: own(o.eventsPerMinute) };
        const input = parse(apiKeyInput, { name: o.name, scopes: o.scopes, customerId: o.customer, limits });
        output(o.json, await createApiKey(await container(), operator, input), (k) =>
          [keysTable([k]), `key: ${k.key}`, 'Store it now: it is not shown again (only its hash is kept).'].join('\n'),
        );
      },
    );
  keys
    .command('list')
    .description('every key, revoked ones included (no secrets), with its limits')
    .addOption(jsonOption())
    .action(async (o: Json) => {
      const { listApiKeys } = await import('../lib/app/apikeys');
      output(o.json, await listApiKeys(await container(), operator), (r) => (r.apiKeys.length ? keysTable(r.apiKeys) : 'no API keys yet'));
    });
  keys
    .command('limits <keyId>')
    .description('change a key\'s limits from its next request; "default" returns one to the deployment\'s')
    .option('--requests-per-second <n|default>', 'requests in one second, 1..1000', limitValue)
    .option('--events-per-minute <n|default>', 'events ingested in one minute, 1000..60000000', limitValue)
    .addOption(jsonOption())
    .action(async (keyId: string, o: { requestsPerSecond?: number | 'default'; eventsPerMinute?: number | 'default' } & Json) => {
      const { apiKeyPatch, updateApiKey } = await import('../lib/app/apikeys');
      if (o.requestsPerSecond === undefined && o.eventsPerMinute === undefined)
        throw new UsageError('give --requests-per-second or --events-per-minute (a number or "default")');
      const change = (v: number | 'default' | undefined) => (v === 'default' ? null : v);
      const patch = parse(apiKeyPatch, { limits: { requestsPerSecond: change(o.requestsPerSecond), eventsPerMinute: change(o.eventsPerMinute) } });
      output(o.json, await updateApiKey(await container(), operator, keyId, patch), (k) => keysTable([k]));
    });
  keys
    .command('revoke <keyId>')
    .description('revoke a key: it stops working at once')
    .addOption(jsonOption())
    .action(async (keyId: string, o: Json) => {
      const { revokeApiKey } = await import('../lib/app/apikeys');
      output(o.json, await revokeApiKey(await container(), operator, keyId), (k) => `revoked ${k.keyId} (${k.name}) at ${k.revokedAt}`);
    });
}

// ---------------------------------------------------------------------------------------------
// customers

type CustomerView = import('../lib/domain/customer').Customer;

function customerFields(c: CustomerView, now: Date): [string, Cell][] {
  const current = Period.containing(now).key;
  const inForce = planIdFor(c.plans, current) ?? 'default';
  const plan = inForce === c.planId ? c.planId : `${inForce} now; ${c.planId} from ${Period.containing(now).next().key}`;
  return [
    ['id', c.id],
    ['name', c.name],
    ['plan', plan],
    ['stripe customer', dash(c.stripeCustomerId)],
    ['alert email', dash(c.alertEmail)],
    ['budget', c.budget ? budgetText(c.budget) : '-'],
    ['created', c.createdAt],
    ['updated', c.updatedAt],
  ];
}

function customersCommands(cli: Command): void {
  const customers = cli.command('customers').description('customers: plan, Stripe customer, alert e-mail, budget');
  customers
    .command('list')
    .description('every customer')
    .addOption(jsonOption())
    .action(async (o: Json) => {
      const c = await container();
      const { listCustomers } = await import('../lib/app/customers');
      const all: CustomerView[] = [];
      let cursor: string | undefined;
      do {
        const page = await listCustomers(c, operator, '200', cursor);
        all.push(...page.customers);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      output(o.json, { customers: all }, (r) =>
        r.customers.length
          ? table(
              ['id', 'name', 'plan', 'stripe customer', 'alert email', 'budget'],
              r.customers.map((x) => [x.id, x.name, x.planId, dash(x.stripeCustomerId), dash(x.alertEmail), x.budget ? budgetText(x.budget) : '-']),
              [5],
            )
          : 'no customers yet',
      );
    });
  customers
    .command('get <id>')
    .description('one customer')
    .addOption(jsonOption())
    .action(async (id: string, o: Json) => {
      const c = await container();
      const { getCustomer } = await import('../lib/app/customers');
      output(o.json, await getCustomer(c, operator, id), (x) => record(customerFields(x, c.clock.now())));
    });
  customers
    .command('put <id>')
    .description('create a customer, or change the fields given (the others stay as they are: PATCH)')
    .option('--name <name>', 'display name (required for a new customer)')
    .option('--plan <planId>', 'catalog plan; a change applies from the next period (in the month of creation, from creation)')
    .option('--stripe-customer <id>', 'the Stripe customer (cus_...) invoices go to')
    .option('--no-stripe-customer', 'unlink the Stripe customer (invoices are then recorded, not sent; refused while one is on its way to Stripe)')
    .option('--alert-email <address>', 'where alerts are e-mailed (an SNS subscription filtered to this customer)')
    .option('--no-alert-email', 'stop e-mailing alerts')
    .option('--budget <amount>', 'monthly budget, e.g. 500.00, in the currency of the plan in force (or --budget-currency)')
    .option('--budget-currency <currency>', "the budget's currency: that of the plan in force or of a plan scheduled")
    .option('--no-budget', 'remove the budget')
    .addOption(jsonOption())
    .action(
      async (
        id: string,
        o: {
          name?: string;
          plan?: string;
          stripeCustomer?: string | false;
          alertEmail?: string | false;
          budget?: string | false;
          budgetCurrency?: string;
        } & Json,
      ) => {
        const c = await container();
        const { customerInput, customerPatch, getCustomer, patchCustomer, putCustomer } = await import('../lib/app/customers');
        const existing = await getCustomer(c, operator, id).catch((err: unknown) => {
          if (err instanceof NotFoundError) return undefined;
          throw err;
        });
        if (!existing && !o.name) throw new UsageError(`${id} is a new customer: give it a name with --name "..."`);
        if (o.budgetCurrency !== undefined && (o.budget === undefined || o.budget === false))
          throw new UsageError('--budget-currency goes with --budget <amount>');
        // commander sets a --no-x flag's value to false and leaves it undefined when neither form is given: false removes (null), undefined keeps.
        const given = <T>(v: T | false | undefined) => (v === false ? null : v);
        const fields = {
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.plan !== undefined ? { planId: o.plan } : {}),
          ...(o.stripeCustomer !== undefined ? { stripeCustomerId: given(o.stripeCustomer) } : {}),
          ...(o.alertEmail !== undefined ? { alertEmail: given(o.alertEmail) } : {}),
          ...(o.budget !== undefined
            ? { budget: o.budget === false ? null : { amount: o.budget, ...(o.budgetCurrency ? { currency: o.budgetCurrency } : {}) } }
            : {}),
        };
        const out = existing
          ? { created: false, customer: await patchCustomer(c, operator, id, parse(customerPatch, fields)) }
          : await putCustomer(c, operator, id, parse(customerInput, fields));
        if (typeof o.stripeCustomer === 'string') await warnUnlessStripeKnows(o.stripeCustomer);
        output(o.json, out, (r) => [`${r.created ? 'created' : 'updated'} ${r.customer.id}`, record(customerFields(r.customer, c.clock.now()))].join('\n'));
      },
    );
}

/**
 * A Stripe customer the account does not have is linked all the same (the API cannot ask Stripe:
 * only the invoice worker holds its key), but every invoice to it would fail: say so now. Stripe
 * not answering is said too, never taken for a yes.
 */
async function warnUnlessStripeKnows(stripeCustomerId: string): Promise<void> {
  const { billingProvider } = await import('../lib/platform/wiring/stripe');
  const known = await billingProvider()
    .customerExists(stripeCustomerId)
    .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (known === true) return;
  console.error(
    known === false
      ? `warning: Stripe has no customer ${stripeCustomerId} (or it was deleted): invoices to it will fail until it exists; link another with --stripe-customer`
      : `warning: could not ask Stripe whether ${stripeCustomerId} exists (${known.message}); linked all the same`,
  );
}

// ---------------------------------------------------------------------------------------------
// usage

function usageCommand(cli: Command): void {
  cli
    .command('usage')
    .description(
      "a customer's period: per meter the value, what the plan includes, % used and the amount; subtotal and projection (or, once invoiced, what was invoiced and the correction pending), budget",
    )
    .requiredOption('--customer <id>', 'customer id')
    .option('--period <YYYY-MM>', 'default: the current period', period)
    .addOption(jsonOption())
    .action(async (o: { customer: string; period?: string } & Json) => {
      const { readUsage } = await import('../lib/app/usage');
      output(o.json, await readUsage(await container(), operator, o.customer, o.period), (u) => {
        const money = (m: string) => formatMoney(m, u.currency);
        const meters = table(
          ['meter', 'value', 'included', '% used', 'amount'],
          u.meters.map((m) => [
            m.displayName,
            `${formatQuantity(m.value)} ${m.unit}`,
            m.included === '0' ? '-' : formatQuantity(m.included),
            m.percentUsed ?? '-',
            money(m.amount),
          ]),
          [1, 2, 3, 4],
        );
        const budget = !u.budget
          ? 'none (customers put --budget sets one)'
          : u.budget.percentUsed === null
            ? `${formatMoney(u.budget.amount, u.budget.currency)}: does not apply to a period billed in ${u.currency.toUpperCase()}`
            : `${money(u.budget.amount)}: ${u.budget.percentUsed}% used, ${u.budget.projectedPercent}% projected`;
        // A closed period is not "so far" and has nothing to project; once invoiced, it is what was invoiced plus what is pending.
        const amounts: [string, Cell][] = u.invoice
          ? [
              [`invoiced (${u.invoice.status})`, money(u.invoice.billed)],
              [
                'correction pending',
                u.pendingCorrection
                  ? `${money(u.pendingCorrection.total)}${u.pendingCorrection.carriedBy ? ` (on the ${u.pendingCorrection.carriedBy} invoice)` : ''}`
                  : 'none',
              ],
            ]
          : u.closed
            ? [['subtotal (not invoiced yet)', money(u.subtotal)]]
            : [
                ['subtotal so far', money(u.subtotal)],
                ['projected at period end', money(u.projection.subtotal)],
              ];
        return [
          `${u.customerId}, ${u.period} (plan ${u.planId} v${u.planVersion}, ${u.currency.toUpperCase()})${u.closed ? ', closed' : ''}, as of ${u.asOf}`,
          meters,
          record([['base fee', money(u.baseFee)], ...amounts, ['budget', budget], ['duplicates dropped', formatQuantity(String(u.duplicatesDropped))]]),
        ].join('\n');
      });
    });
}

// ---------------------------------------------------------------------------------------------
// invoices

type RunView = ReturnType<typeof import('../lib/app/invoicing/runs').runView>;
const runRecord = (r: RunView) =>
  record([
    ['period', r.period],
    ['status', r.status],
    ['customers', r.total],
    ['done', r.done],
    ['skipped (nothing to bill)', r.skipped],
    ['failed', r.failed],
    ['waiting for a Stripe customer', r.waiting],
    ['pending', r.pending],
    ['corrections of earlier periods', r.corrections],
  ]);

/** Polls the run until it completes, with a progress bar on a terminal (stderr, so --json stays clean). */
async function waitForRun(c: Container, periodKey: string, json: boolean | undefined): Promise<RunView> {
  const { getInvoiceRun } = await import('../lib/app/invoicing/runs');
  const bar =
    json || !process.stderr.isTTY
      ? undefined
      : new SingleBar(
          {
            format: `invoicing ${periodKey} {bar} {value}/{total} | done {done} skipped {skipped} failed {failed} pending {pending} | {rate}/s | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
            etaBuffer: 20,
          },
          Presets.shades_classic,
        );
  const started = Date.now();
  let first: number | undefined;
  let run: RunView;
  for (;;) {
    run = await getInvoiceRun(c, operator, periodKey);
    const finished = run.done + run.skipped + run.failed + run.waiting;
    first ??= finished;
    const seconds = (Date.now() - started) / 1000;
    const payload = {
      done: run.done,
      skipped: run.skipped,
      failed: run.failed,
      pending: run.pending,
      rate: seconds > 0 ? ((finished - first) / seconds).toFixed(1) : '0.0',
    };
    if (bar) {
      if (!bar.isActive) bar.start(Math.max(run.total, 1), finished, payload);
      bar.setTotal(Math.max(run.total, 1));
      bar.update(finished, payload);
    }
    if (run.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  bar?.stop();
  return run;
}

function invoicesCommands(cli: Command): void {
  const invoices = cli.command('invoices').description('monthly invoicing');
  invoices
    .command('run')
    .description('start (or resume) the invoice run of a closed period; the invoice workers do the rest')
    .requiredOption('--period <YYYY-MM>', 'the period to invoice', period)
    .option('--force', 'start a new run of a period older than the late-event window or before the first usage')
    .option('--wait', 'follow the run with a progress bar until every customer is done')
    .addOption(jsonOption())
    .action(async (o: { period: string; force?: boolean; wait?: boolean } & Json) => {
      const c = await container();
      const { startInvoiceRunByHand } = await import('../lib/app/invoicing/runs');
      const started = await startInvoiceRunByHand(c, operator, { period: o.period, force: o.force });
      if (!o.wait) {
        output(
          o.json,
          started,
          (r) => `invoice run ${r.period}: ${r.status}; follow it with \`invoices status --period ${r.period}\` (or run again with --wait)`,
        );
        return;
      }
      const run = await waitForRun(c, o.period, o.json);
      output(o.json, run, (r) =>
        [
          `invoice run ${r.period}: ${r.status}`,
          runRecord(r),
          ...(r.failed > 0 ? [`${r.failed} failed: see \`invoices list --customer <id>\` (lastError); running the period again retries them`] : []),
          ...(r.waiting > 0
            ? [
                `${r.waiting} recorded without a Stripe customer: link one (customers put <id> --stripe-customer cus_...), then \`invoices sync --customer <id>\``,
              ]
            : []),
        ].join('\n'),
      );
    });
  invoices
    .command('status')
    .description("an invoice run's progress")
    .requiredOption('--period <YYYY-MM>', 'the run', period)
    .addOption(jsonOption())
    .action(async (o: { period: string } & Json) => {
      const { getInvoiceRun } = await import('../lib/app/invoicing/runs');
      output(o.json, await getInvoiceRun(await container(), operator, o.period), runRecord);
    });
  invoices
    .command('preview')
    .description("the invoice a customer's period would produce now")
    .requiredOption('--customer <id>', 'customer id')
    .option('--period <YYYY-MM>', 'default: the current period', period)
    .addOption(jsonOption())
    .action(async (o: { customer: string; period?: string } & Json) => {
      const { previewInvoice } = await import('../lib/app/invoicing/views');
      output(o.json, await previewInvoice(await container(), operator, o.customer, o.period), (p) => {
        const money = (m: string) => formatMoney(m, p.currency);
        const lines = p.lines.length
          ? table(
              ['line', 'quantity', 'unit price', 'amount'],
              p.lines.map((l) => [l.description, formatQuantity(l.quantity), money(l.unitAmount), money(l.amount)]),
              [1, 2, 3],
            )
          : 'no charges so far';
        const more = p.additionalInvoices.length ? [`plus ${p.additionalInvoices.length} correction invoice(s) in another currency (--json shows them)`] : [];
        const pending = p.pendingCorrection
          ? [
              `correction pending since: ${formatMoney(p.pendingCorrection.total, p.pendingCorrection.currency)}${p.pendingCorrection.carriedBy ? `, on the ${p.pendingCorrection.carriedBy} invoice` : ''}`,
            ]
          : [];
        const head = p.invoiced ? `invoice of ${p.period} (${p.status})` : `upcoming invoice, ${p.period}`;
        return [`${head}, ${p.customerId} (plan ${p.planId} v${p.planVersion}), as of ${p.asOf}`, lines, `total ${money(p.total)}`, ...more, ...pending].join(
          '\n',
        );
      });
    });
  invoices
    .command('sync')
    .description("send a customer's invoices that Stripe does not have yet (recorded before it had a Stripe customer, or left part way)")
    .requiredOption('--customer <id>', 'customer id')
    .addOption(jsonOption())
    .action(async (o: { customer: string } & Json) => {
      const c = await container();
      const { syncCustomerInvoices } = await import('../lib/app/invoicing/job');
      const { invoiceSync } = await import('../lib/platform/wiring/stripe');
      output(o.json, await syncCustomerInvoices({ ...c, sync: invoiceSync() }, operator, o.customer), (r) =>
        r.invoices.length
          ? table(
              ['invoice', 'status', 'total', 'last error'],
              r.invoices.map((i) => [i.key, i.status, formatMoney(i.total, i.currency), dash(i.lastError)]),
              [2],
            )
          : `${r.customerId}: Stripe has every invoice already`,
      );
    });
  invoices
    .command('list')
    .description("a customer's invoices, newest first")
    .requiredOption('--customer <id>', 'customer id')
    .addOption(jsonOption())
    .action(async (o: { customer: string } & Json) => {
      const { listInvoices } = await import('../lib/app/invoicing/views');
      output(o.json, await listInvoices(await container(), operator, o.customer), (r) =>
        r.invoices.length
          ? table(
              ['period', 'kind', 'status', 'total', 'stripe invoice', 'last error'],
              r.invoices.map((i) => [i.period, i.kind, i.status, formatMoney(i.total, i.currency), dash(i.stripeInvoiceId), dash(i.lastError)]),
              [3],
            )
          : `no invoices for ${r.customerId} yet`,
      );
    });
}

// ---------------------------------------------------------------------------------------------
// credits

function creditsCommands(cli: Command): void {
  const credits = cli.command('credits').description('credits carried from negative invoices: what is owed, and settling it');
  credits
    .command('list')
    .description("a customer's carried credits and what is owed per currency")
    .requiredOption('--customer <id>', 'customer id')
    .addOption(jsonOption())
    .action(async (o: { customer: string } & Json) => {
      const { listCredits } = await import('../lib/app/credits');
      output(o.json, await listCredits(await container(), operator, o.customer), (r) =>
        r.credits.length
          ? [
              table(
                ['credit', 'amount', 'status', 'applied to / settled', 'next invoice'],
                r.credits.map((c) => [
                  c.key,
                  formatMoney(c.amount, c.currency),
                  c.status,
                  dash(c.appliedTo ?? (c.settledAt ? `${c.settledAt} by ${c.settledBy}: ${c.reason}${c.reference ? ` (${c.reference})` : ''}` : null)),
                  c.status !== 'open' ? '-' : c.usableOnNextInvoice ? 'goes on it' : `not in ${c.currency.toUpperCase()}`,
                ]),
                [1],
              ),
              r.owed.length ? `owed: ${r.owed.map((x) => formatMoney(x.amount, x.currency)).join(', ')}` : 'nothing owed',
            ].join('\n')
          : `no credits for ${r.customerId}`,
      );
    });
  credits
    .command('settle')
    .description('record that an open credit was refunded through Stripe or written off; it is never applied after')
    .requiredOption('--customer <id>', 'customer id')
    .requiredOption('--credit <key>', 'the credit, as `credits list` shows it')
    .addOption(new Option('--as <how>', 'refund (give --reference) or write_off').choices(['refund', 'write_off']).makeOptionMandatory())
    .requiredOption('--reason <text>', 'why, for the record')
    .option('--reference <id>', 'the Stripe refund or credit note id (re_..., cn_...), required for a refund')
    .addOption(jsonOption())
    .action(async (o: { customer: string; credit: string; as: 'refund' | 'write_off'; reason: string; reference?: string } & Json) => {
      const { creditSettleInput, settleCredit } = await import('../lib/app/credits');
      const input = parse(creditSettleInput, { as: o.as, reason: o.reason, ...(o.reference ? { reference: o.reference } : {}) });
      output(
        o.json,
        await settleCredit(await container(), operator, o.customer, o.credit, input),
        (c) => `${c.key}: ${formatMoney(c.amount, c.currency)} ${c.status.replace('_', ' ')} (${c.reason}${c.reference ? `, ${c.reference}` : ''})`,
      );
    });
}

// ---------------------------------------------------------------------------------------------
// reconcile

function reconcileCommand(cli: Command): void {
  cli
    .command('reconcile')
    .description("recompute a period's counters from the event archive (minus voids) and compare them with the store; exit 3 on drift")
    .requiredOption('--period <YYYY-MM>', 'the period', period)
    .option('--customer <id>', 'only this customer')
    .option('--fix', "write the archive's value over each drifting counter (compare-and-set) and keep an audit entry")
    .addOption(jsonOption())
    .action(async (o: { period: string; customer?: string; fix?: boolean } & Json) => {
      const c = await container();
      const { reconcile } = await import('../lib/app/audit');
      const bar = o.json
        ? undefined
        : new SingleBar({ format: 'reconciling {bar} {value}/{total} customers', clearOnComplete: true, stream: process.stderr }, Presets.shades_classic);
      let started = false;
      const out = await reconcile(c, {
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
      output(o.json, out, (r) => {
        const head = `${o.period}: ${r.customers} customers, ${r.events} archived events, ${r.drifts.length} drifting counter${r.drifts.length === 1 ? '' : 's'}`;
        if (r.drifts.length === 0) return head;
        const rows = r.drifts.map((d) => [
          d.customerId,
          d.meter,
          dash(d.day),
          d.counter,
          d.archive,
          d.drift,
          ...(o.fix ? [d.fixed ? 'yes' : 'no (it moved; run again)'] : []),
        ]);
        return [head, table(['customer', 'meter', 'day', 'counter', 'archive', 'drift', ...(o.fix ? ['fixed'] : [])], rows, [3, 4, 5])].join('\n');
      });
      // Drift found (even when fixed now): exit 3, so a scheduled job notices.
      process.exitCode = out.drifts.length > 0 ? EXIT.drift : EXIT.ok;
    });
}

function portalLinkCommand(cli: Command): void {
  cli
    .command('portal-link')
    .description("a signed link to a customer's usage page; prints the URL alone (--json: the URL and when it expires)")
    .requiredOption('--customer <id>', 'customer id')
    .option('--ttl <seconds>', 'how long the link works: 60..86400 seconds (default 3600)', ttlSeconds)
    .addOption(jsonOption())
    .action(async (o: { customer: string; ttl?: number } & Json) => {
      const c = await container();
      const { portalLink } = await import('../lib/app/portal');
      // No request to take the API's address from: the deployment's (or the local stack's) PUBLIC_URL.
      if (c.config.PUBLIC_URL === undefined) throw new Error('PUBLIC_URL is not set: the address customers open the page at');
      const link = portalLink(c, c.config.PUBLIC_URL, o.customer, o.ttl);
      // A customer may have usage before its record exists (its periods are priced on `default`),
      // so a link without one is made; but it is most often a typo, so say so.
      if (!(await c.customers.get(o.customer))) {
        console.error(`warning: ${o.customer} is not a customer (no record): the page shows only usage sent for that id, if any`);
      }
      output(o.json, link, (l) => l.url);
    });
}

// ---------------------------------------------------------------------------------------------
// events

function eventsCommands(cli: Command): void {
  const events = cli.command('events').description('the counted events behind the counters: list them, void one');
  events
    .command('list')
    .description("a customer's archived events of a period, in a stable order (the API's listing, a page at a time)")
    .requiredOption('--customer <id>', 'customer id')
    .option('--period <YYYY-MM>', 'default: the current period', period)
    .option('--meter <slug>', 'only events with a reading for this meter')
    .option('--limit <n>', 'events per page, 1..1000 (default 100)')
    .option('--cursor <cursor>', 'the next page: the cursor the previous one printed')
    .addOption(jsonOption())
    .action(async (o: { customer: string; period?: string; meter?: string; limit?: string; cursor?: string } & Json) => {
      const { listEvents, listEventsQuery } = await import('../lib/app/audit');
      const query = parse(listEventsQuery, { period: o.period, meter: o.meter, limit: o.limit, cursor: o.cursor });
      output(o.json, await listEvents(await container(), o.customer, query), (r) =>
        [
          r.events.length
            ? table(
                ['source', 'id', 'type', 'time', 'readings', 'voided'],
                r.events.map((e) => [
                  e.source,
                  e.id,
                  e.type,
                  e.time,
                  Object.entries(e.readings)
                    .map(([m, v]) => `${m}=${v}`)
                    .join(' '),
                  e.voided ? `yes: ${e.voidReason ?? ''}` : '-',
                ]),
              )
            : `no events of ${r.customerId} in ${r.period}${o.meter ? ` with ${o.meter}` : ''}`,
          ...(r.nextCursor ? [`more: --cursor ${r.nextCursor}`] : []),
        ].join('\n'),
      );
    });
  events
    .command('void')
    .description('the event stops counting, exactly once (a repeat changes nothing); it stays in the listing, marked voided')
    .requiredOption('--customer <id>', 'the customer whose event it is')
    .requiredOption('--source <source>', "the event's source")
    .requiredOption('--id <id>', "the event's id")
    .requiredOption('--reason <text>', 'why, for the record')
    .addOption(jsonOption())
    .action(async (o: { customer: string; source: string; id: string; reason: string } & Json) => {
      const { voidEvent, voidInput } = await import('../lib/app/audit');
      const input = parse(voidInput, { customerId: o.customer, source: o.source, id: o.id, reason: o.reason });
      output(o.json, await voidEvent(await container(), operator, input), (v) =>
        v.alreadyVoided
          ? `${v.source} ${v.id} was already voided at ${v.voidedAt} (${v.reason})`
          : `voided ${v.source} ${v.id} of ${v.customerId}, ${v.period}`,
      );
    });
}

function ttlSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 60 || n > 86_400) throw new InvalidArgumentError(`ttl must be 60..86400 seconds; got "${value}"`);
  return n;
}

export function program(): Command {
  const cli = new Command('usage-metering')
    .description('operator commands for the usage metering service (npm run cli -- <command> --help for each)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)')
    // Commands added below inherit both: usage errors come back to the catch below as exit code 1.
    .exitOverride();
  keysCommands(cli);
  customersCommands(cli);
  creditsCommands(cli);
  usageCommand(cli);
  invoicesCommands(cli);
  eventsCommands(cli);
  reconcileCommand(cli);
  portalLinkCommand(cli);
  return cli;
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      const { lines, exitCode } = describeFailure(err);
      for (const line of lines) console.error(line);
      process.exitCode = exitCode;
    });
}
