import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../local/runtime/emulators';
import { Period } from '../../lib/domain/period';

/**
 * `npm start`, `npm run demo` and the CLI as a user runs them: the printed curl examples work as
 * printed (with the admin key from LOCAL_ADMIN_KEY), the CLI prints tables (JSON with --json), one
 * readable line per error with documented exit codes, and explains a stack that is gone; a taken
 * port is one line; on a terminal a live status line updates in place while ALERT lines stay whole;
 * --persist keeps the data across a restart; the demo loads a month, invoices it and fires alerts;
 * Ctrl-C (SIGINT to the process group, as a terminal sends it) stops it cleanly and leaves no java
 * or node behind, and so does a SIGKILL.
 */
const root = join(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
/** What `npm start` runs, without npm in between. */
const START = ['--import', 'tsx', 'local/dev/start.ts'];
/** Not the default: the banner, the curls and the demo must all use the key the user set. */
const KEY = 'key-from-the-environment';
const scratch = mkdtempSync(join(tmpdir(), 'start-test-'));
/** Every stack and CLI of this file uses its own stack file (a developer's own npm start keeps theirs). */
const ENV = { ...process.env, LOCAL_ADMIN_KEY: KEY, LOCAL_STACK_FILE: join(scratch, 'stack.json') };
let child: ChildProcess;
let output = '';
let port: number;
const started: number[] = [];

/** The CLI as `npm run cli --` runs it. */
function cli(args: string[], env: NodeJS.ProcessEnv = ENV): SpawnSyncReturns<string> {
  return spawnSync(tsx, ['tools/cli.ts', ...args], { cwd: root, env, encoding: 'utf8' });
}
function cliJson(...args: string[]): any {
  const r = cli([...args, '--json']);
  if (r.status !== 0) throw new Error(`cli ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).stdout;
  const pairs = out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const walk = (p: number) => pairs.filter(([, pp]) => pp === p).forEach(([c]) => (found.push(c), walk(c)));
  walk(pid);
  return found;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Started {
  child: ChildProcess;
  port: number;
  stdout: string;
  stderr: string;
  /** The process and all it started (java, fauxqs, their wrappers), as they were once it was up. */
  tree: number[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `npm start`'s command in a process group of its own (as a terminal would) and waits until it is up. */
async function startLocal(args = START, env: NodeJS.ProcessEnv = ENV, command = process.execPath): Promise<Started> {
  const p = await freePort();
  const c = spawn(command, args, { cwd: root, env: { ...env, PORT: String(p) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const s: Started = { child: c, port: p, stdout: '', stderr: '', tree: [], exit: new Promise((r) => c.once('exit', (code, signal) => r({ code, signal }))) };
  c.stdout!.on('data', (d: Buffer) => (s.stdout += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (s.stderr += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!s.stdout.includes('Ctrl-C stops everything')) {
    if (Date.now() > deadline || c.exitCode !== null) throw new Error(`npm start did not come up:\n${s.stdout}\n${s.stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  s.tree = [c.pid!, ...descendants(c.pid!)];
  started.push(...s.tree);
  return s;
}

async function gone(pids: number[], ms = 10_000): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  return pids.filter(alive);
}

/** A stack trace line, or anything that looks like an error a user would have to read. */
const TROUBLE = /^\s+at |ECONNREFUSED|ECONNRESET|Error|ERROR|Unhandled|"level":"(WARN|ERROR)"/m;

beforeAll(async () => {
  // This file runs what `npm start` runs.
  expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.start).toBe(`node ${START.join(' ')}`);
  const s = await startLocal();
  child = s.child;
  port = s.port;
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  output = s.stdout + s.stderr;
}, 120_000);

afterAll(() => {
  // Whatever a failed test left behind, and only what these tests started.
  for (const pid of started.filter(alive)) process.kill(pid, 'SIGKILL');
});

it('prints curl examples that work as printed, with the admin key set in LOCAL_ADMIN_KEY', async () => {
  expect(output).toContain(`admin key       ${KEY}`);
  const block = output.slice(output.indexOf('Try:') + 4, output.indexOf('Ctrl-C stops everything'));
  expect(block).not.toContain('local-admin-key');
  // The default key does not open this stack: the banner's key is the one that works.
  expect((await fetch(`http://127.0.0.1:${port}/api/v1/api-keys`, { headers: { authorization: 'Bearer local-admin-key' } })).status).toBe(401);
  const commands = block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('curl'));
  expect(commands).toHaveLength(6);
  const run = (c: string) => JSON.parse(execFileSync('bash', ['-c', c], { encoding: 'utf8' }));
  const [put, post, usage, events, portal, voidIt] = commands;
  expect(run(put!)).toMatchObject({ id: 'cus_42', planId: 'default' });
  expect(run(post!)).toEqual({ accepted: 1 });
  const deadline = Date.now() + 20_000;
  let read: any;
  do {
    read = run(usage!);
  } while (read.meters.find((m: any) => m.meter === 'api_calls').value !== '1500' && Date.now() < deadline);
  expect(read.meters.find((m: any) => m.meter === 'api_calls').value).toBe('1500');
  expect(run(events!).events).toEqual([expect.objectContaining({ source: 'curl', id: 'req_1', readings: { api_calls: '1500' }, voided: false })]);
  // The link opens the usage page, which shows what the usage API returns.
  const link = run(portal!);
  expect(link.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/portal\\?token=`));
  const page = execFileSync('curl', ['-s', link.url], { encoding: 'utf8' });
  expect(page).toContain('<html lang="en">');
  for (const m of read.meters) expect(page).toContain(`id="meter-${m.meter}"`);
  expect(page).toContain(`<dd data-field="value"><data value="${read.meters.find((m: any) => m.meter === 'api_calls').value}">1,500</data> calls</dd>`);
  expect(page).toContain(`<dd data-field="subtotal"><data value="${read.subtotal}">`);
  expect(run(voidIt!)).toMatchObject({ customerId: 'cus_42', voided: true, alreadyVoided: false });
  expect(run(usage!).meters.find((m: any) => m.meter === 'api_calls').value).toBe('0');
  const reconcile = block
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('npm run cli -- reconcile'))!;
  expect(execFileSync('bash', ['-c', reconcile], { cwd: root, env: ENV, encoding: 'utf8' })).toContain('0 drifting counters');
  const usageCommand = block
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('npm run cli -- usage'))!;
  expect(execFileSync('bash', ['-c', usageCommand], { cwd: root, env: ENV, encoding: 'utf8' })).toMatch(/API Calls\s+│\s+0 calls\s+│\s+10,000/);
}, 60_000);

it('creates an API key from the CLI that the running API accepts, and revokes it', async () => {
  const created = cliJson('keys', 'create', '--name', 'from-cli', '--scopes', 'read', '--customer', 'cus_42');
  expect(created).toMatchObject({ name: 'from-cli', scopes: ['read'], customerId: 'cus_42', key: expect.stringMatching(/^mk_/) });
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${created.key}` } });
  expect((await get('/api/v1/customers/cus_42/usage')).status).toBe(200);
  expect((await get('/api/v1/customers/cus_43/usage')).status).toBe(403);
  const listed = cli(['keys', 'list']);
  expect(listed.status).toBe(0);
  expect(listed.stdout).toMatch(new RegExp(`│ ${created.keyId} │ from-cli\\s+│ read\\s+│ cus_42`));
  expect(cli(['keys', 'revoke', created.keyId]).stdout).toMatch(new RegExp(`^revoked ${created.keyId} \\(from-cli\\) at 20`));
  expect((await get('/api/v1/customers/cus_42/usage')).status).toBe(401);
  const table = cli(['keys', 'create', '--name', 'as a table', '--scopes', 'ingest']);
  expect(table.stdout).toMatch(/│ key id\s+│ name\s+│ scopes/);
  expect(table.stdout).toMatch(/^key: mk_[a-z0-9]{12}_\S+$/m);
}, 60_000);

it('gives a key its own limits from the CLI, shows them, and returns them to the defaults', () => {
  const created = cliJson('keys', 'create', '--name', 'limited', '--scopes', 'ingest', '--requests-per-second', '20');
  expect(created).toMatchObject({ limits: { requestsPerSecond: 20, eventsPerMinute: 3_000_000 }, customLimits: { requestsPerSecond: 20 } });
  const changed = cli(['keys', 'limits', created.keyId, '--events-per-minute', '5000', '--requests-per-second', 'default']);
  expect(changed.status).toBe(0);
  expect(changed.stdout).toMatch(new RegExp(`│ ${created.keyId} │ limited\\s+│ ingest\\s+│ -\\s+│\\s+500 │\\s+5000\\* │`));
  expect(changed.stdout).toContain("* the key's own limit");
  const refused = cli(['keys', 'limits', created.keyId, '--requests-per-second', '5000']);
  expect({ status: refused.status, stderr: refused.stderr }).toMatchObject({ status: 2, stderr: expect.stringContaining('limits.requestsPerSecond') });
  expect(cli(['keys', 'limits', created.keyId]).status).toBe(1);
}, 60_000);

it('prints a portal link from the CLI that opens the usage page', async () => {
  const made = cli(['portal-link', '--customer', 'cus_42', '--ttl', '600']);
  expect(made.status).toBe(0);
  const url = made.stdout.trim();
  expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/portal\\?token=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$`));
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('id="meter-api_calls"');
  const bad = cli(['portal-link', '--customer', 'cus_42', '--ttl', '30']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('ttl must be 60..86400 seconds');
  // --json like every command; an id with no customer record gets its link, and a warning.
  const json = cli(['portal-link', '--customer', 'cus_nobody', '--json']);
  expect(json.status).toBe(0);
  expect(JSON.parse(json.stdout)).toEqual({ url: expect.stringContaining('/portal?token='), expiresAt: expect.any(String) });
  expect(json.stderr).toBe('warning: cus_nobody is not a customer (no record): the page shows only usage sent for that id, if any\n');
}, 60_000);

it('lists the events behind the counters and voids one from the CLI, exactly once', async () => {
  const c = 'cus_cli_events';
  const event = { specversion: '1.0', id: 'cli-evt-1', source: 'cli-test', type: 'api_calls', subject: c, time: new Date().toISOString(), data: { value: 7 } };
  const sent = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify(event),
  });
  expect(sent.status).toBe(202);
  let listed: any;
  for (let i = 0; i < 100 && !(listed?.events?.length > 0); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 200));
    listed = cliJson('events', 'list', '--customer', c);
  }
  expect(listed.events).toEqual([
    expect.objectContaining({ source: 'cli-test', id: 'cli-evt-1', voided: false, readings: expect.objectContaining({ api_calls: '7' }) }),
  ]);
  expect(cli(['events', 'list', '--customer', c]).stdout).toMatch(/│ cli-test\s+│ cli-evt-1\s+│ api_calls\s+│/);
  const voided = cli(['events', 'void', '--customer', c, '--source', 'cli-test', '--id', 'cli-evt-1', '--reason', 'sent by mistake']);
  expect(voided).toMatchObject({ status: 0, stdout: expect.stringMatching(/^voided cli-test cli-evt-1 of cus_cli_events, \d{4}-\d{2}\n$/) });
  const again = cli(['events', 'void', '--customer', c, '--source', 'cli-test', '--id', 'cli-evt-1', '--reason', 'sent by mistake']);
  expect(again.stdout).toMatch(/^cli-test cli-evt-1 was already voided at /);
  expect(cliJson('events', 'list', '--customer', c).events[0]).toMatchObject({ voided: true, voidReason: 'sent by mistake' });
  expect(cliJson('usage', '--customer', c).meters.find((m: any) => m.meter === 'api_calls')?.value ?? '0').toBe('0');
  const unknown = cli(['events', 'void', '--customer', c, '--source', 'cli-test', '--id', 'nothing', '--reason', 'x']);
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toMatch(/^error: event_not_found: /);
}, 60_000);

it('manages customers and shows usage as tables (JSON with --json)', () => {
  const created = cli(['customers', 'put', 'cus_cli', '--name', 'CLI Corp', '--plan', 'pro', '--budget', '250.00', '--alert-email', 'ops@cli.example']);
  expect(created.status).toBe(0);
  expect(created.stdout).toMatch(/^created cus_cli\n/);
  expect(created.stdout).toMatch(/│ plan\s+│ pro\s+│/);
  // Only the fields given change; --no-x removes one.
  // A Stripe customer the account does not have is linked, with a warning.
  const linked = cli(['customers', 'put', 'cus_cli', '--no-budget', '--stripe-customer', 'cus_StripeCli1', '--json']);
  expect(linked.status).toBe(0);
  expect(linked.stderr).toContain('warning: Stripe has no customer cus_StripeCli1 (or it was deleted): invoices to it will fail');
  const updated = JSON.parse(linked.stdout);
  expect(updated).toMatchObject({
    created: false,
    customer: { name: 'CLI Corp', planId: 'pro', alertEmail: 'ops@cli.example', stripeCustomerId: 'cus_StripeCli1' },
  });
  expect(updated.customer.budget).toBeUndefined();
  expect(cliJson('customers', 'get', 'cus_cli')).toMatchObject({ id: 'cus_cli', name: 'CLI Corp' });
  expect(cli(['customers', 'get', 'cus_cli']).stdout).toMatch(/│ stripe customer │ cus_StripeCli1\s+│/);
  expect(cli(['customers', 'list']).stdout).toMatch(/│ cus_cli\s+│ CLI Corp\s+│ pro\s+│ cus_StripeCli1/);
  expect(cliJson('customers', 'list').customers.map((c: any) => c.id)).toContain('cus_cli');

  const usage = cli(['usage', '--customer', 'cus_cli']);
  expect(usage.status).toBe(0);
  expect(usage.stdout).toMatch(/^cus_cli, \d{4}-\d{2} \(plan pro v1, USD\), as of /);
  expect(usage.stdout).toMatch(/│ meter\s+│\s+value │ included │ % used │ amount │/);
  expect(usage.stdout).toMatch(/│ API Calls\s+│\s+0 calls │\s+50,000 │\s+0\.00 │\s+\$0\.00 │/);
  expect(usage.stdout).toMatch(/│ base fee\s+│ \$49\.00/);
  expect(usage.stdout).toMatch(/│ projected at period end │ \$/);
  expect(usage.stdout).toMatch(/│ budget\s+│ none/);
  expect(cliJson('usage', '--customer', 'cus_cli')).toMatchObject({ customerId: 'cus_cli', planId: 'pro', baseFee: '49.00' });
}, 60_000);

it('says what went wrong in one line, with the exit codes --help documents', () => {
  const help = cli(['--help']);
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('Exit codes:\n  0  done\n  1  usage error');
  expect(help.stdout).toContain('  2  refused by the service');
  expect(help.stdout).toContain('  3  reconcile only');
  expect(help.stdout).not.toMatch(/spec/i);

  const usageError = cli(['keys', 'create', '--name', 'x', '--scopes', 'root']);
  expect(usageError.status).toBe(1);
  expect(usageError.stderr).toMatch(/^error: option '--scopes <list>' argument 'root' is invalid\. scopes must be/);

  const refused = cli(['keys', 'create', '--name', 'x', '--scopes', 'admin', '--customer', 'cus_42']);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/^error: admin_key_bound: a key bound to a customer can never use an admin endpoint/);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);

  const invalid = cli(['customers', 'put', 'cus_bad', '--name', 'Bad', '--budget', '12.345', '--alert-email', 'not-an-address']);
  expect(invalid.status).toBe(2);
  expect(invalid.stderr.split('\n')[0]).toBe('error: invalid_input: the input is invalid');
  expect(invalid.stderr).toMatch(/^ {2}alertEmail: /m);
  const unknownPlan = cli(['customers', 'put', 'cus_bad', '--name', 'Bad', '--plan', 'gold']);
  expect(unknownPlan.status).toBe(2);
  expect(unknownPlan.stderr).toBe('error: unknown_plan: plan "gold" is not in the catalog\n');
  const noName = cli(['customers', 'put', 'cus_nameless']);
  expect(noName.status).toBe(1);
  expect(noName.stderr).toBe('error: cus_nameless is a new customer: give it a name with --name "..."\n');
  expect(cli(['customers', 'get', 'cus_nobody']).stderr).toBe('error: customer_not_found: customer "cus_nobody" does not exist\n');

  for (const r of [usageError, refused, invalid, unknownPlan, noName]) {
    expect(r.stderr).not.toMatch(/^\s+at |ZodError|"code":|\{|NodeVersionSupportWarning/m);
  }
}, 60_000);

it('explains a stack that is not running instead of a connection error', () => {
  const none = cli(['keys', 'list'], { ...ENV, LOCAL_STACK_FILE: join(scratch, 'none.json') });
  expect(none.status).toBe(1);
  expect(none.stderr).toMatch(/^error: no local stack is running: start one with `npm start`/);
  // A stack killed hard leaves its file behind: a process that no longer exists, ports nobody answers.
  const stale = join(scratch, 'stale.json');
  const file = JSON.parse(readFileSync(ENV.LOCAL_STACK_FILE, 'utf8'));
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  writeFileSync(stale, JSON.stringify({ ...file, LOCAL_STACK_PID: dead, DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' }));
  const r = cli(['customers', 'list'], { ...ENV, LOCAL_STACK_FILE: stale });
  expect(r.status).toBe(1);
  expect(r.stderr).toBe(
    `error: the local stack is no longer running: ${stale} was left by a stack (process ${dead}, started ${file.LOCAL_STACK_STARTED_AT}) that was stopped without cleaning up. Start it again with \`npm start\`\n`,
  );
  expect(r.stderr).not.toContain('ECONNREFUSED');
}, 30_000);

it('refuses a port that is taken in one line that says how to pick another', async () => {
  const p = spawnSync(process.execPath, START, { cwd: root, env: { ...ENV, PORT: String(port) }, encoding: 'utf8', timeout: 30_000 });
  expect(p.status).toBe(1);
  expect(p.stderr).toBe(
    `error: port ${port} is already in use (another \`npm start\`?): stop what uses it, or start on another port: PORT=${port + 1} npm start\n`,
  );
  const bad = spawnSync(process.execPath, START, { cwd: root, env: { ...ENV, PORT: 'eighty' }, encoding: 'utf8', timeout: 30_000 });
  expect(bad).toMatchObject({ status: 1, stderr: 'error: PORT must be a port number from 1 to 65535; got "eighty"\n' });
}, 60_000);

it('refuses to start on a CATALOG_FILE that cannot be used, naming each problem, before anything starts', () => {
  const broken = join(scratch, 'broken-catalog.json');
  writeFileSync(broken, JSON.stringify({ meters: [], plans: 'none' }));
  const p = spawnSync(process.execPath, START, { cwd: root, env: { ...ENV, PORT: '39999', CATALOG_FILE: broken }, encoding: 'utf8', timeout: 30_000 });
  expect(p.status).toBe(1);
  expect(p.stderr).toMatch(
    new RegExp(
      `^error: CATALOG_FILE ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be used:\n  meters: Too small[^\n]*\n  plans: Invalid input: expected array, received string\n$`,
    ),
  );
  expect(p.stdout).not.toContain('starting DynamoDB Local');
  const missing = spawnSync(process.execPath, START, {
    cwd: root,
    env: { ...ENV, PORT: '39999', CATALOG_FILE: join(scratch, 'nowhere.json') },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/cannot be used:\n {2}ENOENT: no such file or directory/);
}, 60_000);

it('previews and runs invoicing from the CLI, waiting for the run', () => {
  const preview = cliJson('invoices', 'preview', '--customer', 'cus_42');
  expect(preview).toMatchObject({ customerId: 'cus_42', status: 'upcoming', currency: 'usd', total: '0.00' }); // 1,500 calls are inside the free tier
  const previous = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 15)).toISOString().slice(0, 7);
  // This stack has seen usage only this month: a new run of last month is refused unless forced.
  const refused = cli(['invoices', 'run', '--period', previous]);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/^error: period_before_first_usage: period \d{4}-\d{2} is before the first usage/);
  const waited = cli(['invoices', 'run', '--period', previous, '--force', '--wait']);
  expect(waited.status).toBe(0);
  expect(waited.stdout).toMatch(new RegExp(`^invoice run ${previous}: completed\n`));
  expect(waited.stdout).toMatch(/│ pending\s+│ 0\s+│/);
  expect(cliJson('invoices', 'status', '--period', previous)).toMatchObject({ period: previous, status: 'completed', pending: 0 });
  expect(cliJson('invoices', 'list', '--customer', 'cus_42')).toMatchObject({ customerId: 'cus_42' });
  expect(cli(['invoices', 'preview', '--customer', 'cus_42']).stdout).toMatch(/^upcoming invoice, \d{4}-\d{2}, cus_42 \(plan default v1\)/);
  const bad = cli(['invoices', 'run', '--period', '2026-13']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('period must be YYYY-MM');
}, 60_000);

it('shows a progress bar with rate and ETA while waiting for a run, on a terminal', () => {
  // script(1) gives the CLI a terminal, as a person's shell would.
  const period = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 2, 15)).toISOString().slice(0, 7);
  const r = spawnSync('script', ['-qfec', `${tsx} tools/cli.ts invoices run --period ${period} --force --wait`, '/dev/null'], {
    cwd: root,
    env: ENV,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`invoicing ${period} .* \\d+/\\d+ \\| done \\d+ skipped \\d+ failed \\d+ pending \\d+ \\| [\\d.]+/s \\| ETA`));
  expect(r.stdout).toContain(`invoice run ${period}: completed`);
}, 60_000);

it('loads a realistic month with npm run demo: customers on every plan, last month invoiced in Stripe, alerts', async () => {
  const before = output.length;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'local/dev/demo.ts'], { cwd: root, env: ENV, encoding: 'utf8', timeout: 180_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const last = Period.containing(new Date()).previous().key;
  // 6 invoiced; the customers earlier tests made here have nothing to bill.
  expect(r.stdout).toMatch(new RegExp(`demo: invoice run ${last} completed: 6 invoiced, \\d+ with nothing to bill, 0 failed`));
  const customers = cliJson('customers', 'list').customers;
  for (const [id, plan] of <[string, string][]>[
    ['cus_acme', 'default'],
    ['cus_globex', 'default'],
    ['cus_initech', 'pro'],
    ['cus_umbrella', 'pro'],
    ['cus_tanaka', 'jp'],
    ['cus_sakura', 'jp'],
  ]) {
    const c = customers.find((x: any) => x.id === id);
    expect(c).toMatchObject({ planId: plan, stripeCustomerId: expect.stringMatching(/^cus_/) });
    const [invoice] = cliJson('invoices', 'list', '--customer', id).invoices;
    expect(invoice).toMatchObject({ period: last, status: 'finalized', stripeInvoiceId: expect.stringMatching(/^in_/) });
  }
  const tanaka = cliJson('invoices', 'list', '--customer', 'cus_tanaka').invoices[0];
  expect(tanaka.currency).toBe('jpy');
  // The Stripe fake holds the finalized invoices, with the same totals.
  const state = (await (
    await fetch(
      `${JSON.parse(readFileSync(ENV.LOCAL_STACK_FILE, 'utf8')).STRIPE_API_PROTOCOL}://127.0.0.1:${JSON.parse(readFileSync(ENV.LOCAL_STACK_FILE, 'utf8')).STRIPE_API_PORT}/_fake/state`,
    )
  ).json()) as any;
  expect(JSON.stringify(state)).toContain(tanaka.stripeInvoiceId);
  // This month: alerts as they fire, one per jump.
  const deadline = Date.now() + 20_000;
  while (
    !(/ALERT .*Acme Analytics: Seats \(peak\) crossed 100%/.test(output) && /ALERT .*Initech: API Calls crossed 90%/.test(output)) &&
    Date.now() < deadline
  )
    await new Promise((res) => setTimeout(res, 200));
  const alerts = output
    .slice(before)
    .split('\n')
    .filter((l) => l.startsWith('ALERT'));
  expect(alerts).toEqual(
    expect.arrayContaining([
      'ALERT  Acme Analytics: Seats (peak) crossed 100% of included usage, now at 133% (' + Period.containing(new Date()).key + ')  [customer cus_acme]',
      'ALERT  Initech: API Calls crossed 90% of included usage, now at 92% (' + Period.containing(new Date()).key + ')  [customer cus_initech]',
    ]),
  );
  expect(alerts.filter((l) => l.includes('cus_acme'))).toHaveLength(1); // 80 and 90 were passed in the same update
  // Loading it again changes nothing: no invoice twice, and its events are not sent again (they
  // would count nothing, but show on the customers' pages as duplicates dropped).
  const dropped = cliJson('usage', '--customer', 'cus_acme', '--period', last).duplicatesDropped;
  const again = spawnSync(process.execPath, ['--import', 'tsx', 'local/dev/demo.ts'], { cwd: root, env: ENV, encoding: 'utf8', timeout: 180_000 });
  expect(again.status).toBe(0);
  expect(again.stdout).toContain(`demo: the events of ${last} are there from an earlier run; not sent again`);
  expect(cliJson('invoices', 'list', '--customer', 'cus_acme').invoices).toHaveLength(1);
  expect(cliJson('usage', '--customer', 'cus_acme', '--period', last).duplicatesDropped).toBe(dropped);
  // The demo's customers are in the Stripe fake: linking one again warns of nothing.
  const relinked = cli(['customers', 'put', 'cus_acme', '--stripe-customer', cliJson('customers', 'get', 'cus_acme').stripeCustomerId]);
  expect(relinked).toMatchObject({ status: 0, stderr: '' });
}, 240_000);

it('prints an alert as it fires', async () => {
  const event = {
    specversion: '1.0',
    id: 'seat-alert',
    source: 'start-test',
    type: 'seats',
    subject: 'cus_42',
    time: new Date().toISOString(),
    data: { value: 4 },
  };
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify(event),
  });
  expect(res.status).toBe(202);
  const deadline = Date.now() + 20_000;
  while (!/ALERT .*Seats.*100%.*\[customer cus_42\]/.test(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(output).toMatch(/ALERT .*Seats.*100%.*\[customer cus_42\]/);
  expect(output).toContain('alerts inbox');
  // What the README shows is what npm start prints.
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const shown = /`(ALERT {2}[^`]+)`/.exec(readme)![1]!;
  expect(shown).toMatch(/^ALERT {2}\S.* crossed 100% of included usage, now at \d+% \(\d{4}-\d{2}\) {2}\[customer \S+\]$/);
  expect(output).toMatch(/^ALERT {2}Acme: Seats \(peak\) crossed 100% of included usage, now at 133% \(\d{4}-\d{2}\) {2}\[customer cus_42\]$/m);
}, 30_000);

it('prints no AWS SDK Node-version warning, from npm start or the CLI', () => {
  expect(output).not.toContain('NodeVersionSupportWarning');
  expect(cli(['keys', 'list']).stderr).toBe('');
});

it('stops every child process on Ctrl-C, quietly and with exit code 0', async () => {
  const tree = descendants(child.pid!);
  expect(tree.length).toBeGreaterThanOrEqual(3); // java, its wrapper and fauxqs
  const before = output.length;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  process.kill(-child.pid!, 'SIGINT');
  expect(await exited).toBe(0);
  expect(await gone(tree)).toEqual([]);
  const after = output.slice(before);
  expect(after).not.toMatch(TROUBLE);
  expect(after).toBe('\nSIGINT: stopping...\nstopped.\n');
}, 30_000);

describe('on a terminal', () => {
  it('updates a live status line in place and prints each ALERT on a line of its own', async () => {
    // script(1) runs npm start's command on a pseudo-terminal, as a person's shell would.
    const s = await startLocal(['-qfec', `${process.execPath} ${START.join(' ')}`, '/dev/null'], ENV, 'script');
    const deadline = Date.now() + 10_000;
    while (!/live: [\d.]+ events\/s counted/.test(s.stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const res = await fetch(`http://127.0.0.1:${s.port}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: 'tty-1',
        source: 'tty',
        type: 'seats',
        subject: 'cus_tty',
        time: new Date().toISOString(),
        data: { value: 7 },
      }),
    });
    expect(res.status).toBe(202);
    const until = Date.now() + 20_000;
    while (!/live: .*\| alerts sent 1/.test(s.stdout) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    const out = s.stdout;
    expect(out).toMatch(/\r\x1b\[2Klive: [\d.]+ events\/s counted \(\d+ in all\) \| usage queue \d+ \| DLQ \d+ \| alerts sent \d+/);
    expect(out).toMatch(/live: [\d.]+ events\/s counted \(1 in all\)/);
    // The status line is cleared before the alert, which ends its own line; the status comes back under it.
    expect(out).toMatch(
      /\r\x1b\[2KALERT {2}cus_tty: Seats \(peak\) crossed 100% of included usage, now at 233% \(\d{4}-\d{2}\) {2}\[customer cus_tty\]\r?\n\r\x1b\[2Klive: /,
    );
    expect(out).not.toMatch(/live: [^\r\n]*ALERT/);
    // The banner and the curl examples are printed whole, before any status.
    expect(out.slice(0, out.indexOf('Ctrl-C stops everything'))).not.toContain('\x1b[2K');
    process.kill(-s.child.pid!, 'SIGKILL'); // script and everything under it; the stack stops as on a hang-up
    expect(await gone(s.tree, 20_000)).toEqual([]);
  }, 120_000);

  it('prints no status line when the output is not a terminal', () => {
    expect(output).not.toContain('\x1b[2K');
    expect(output).not.toMatch(/live: /);
  });
});

describe('--persist', () => {
  it("keeps DynamoDB Local's data across a restart, and says where", async () => {
    const env = { ...ENV, LOCAL_DATA_DIR: join(scratch, 'dynamodb'), LOCAL_STACK_FILE: join(scratch, 'persist.json') };
    const put = async (s: Started, method: string, path: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${s.port}${path}`, {
        method,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const first = await startLocal([...START, '--persist'], env);
    expect(first.stdout).toContain(`data kept in ${join(scratch, 'dynamodb')}`);
    expect((await put(first, 'PUT', '/api/v1/customers/cus_kept', { name: 'Kept', planId: 'pro' })).status).toBe(201);
    process.kill(-first.child.pid!, 'SIGINT');
    expect(await first.exit).toEqual({ code: 0, signal: null });

    const second = await startLocal([...START, '--persist'], env);
    const kept = await put(second, 'GET', '/api/v1/customers/cus_kept');
    expect(kept.status).toBe(200);
    expect(await kept.json()).toMatchObject({ id: 'cus_kept', name: 'Kept', planId: 'pro' });
    process.kill(-second.child.pid!, 'SIGINT');
    expect(await second.exit).toEqual({ code: 0, signal: null });

    // Without it, a restart starts empty.
    const third = await startLocal(START, env);
    expect(third.stdout).toContain('in memory: npm start -- --persist keeps it');
    expect((await put(third, 'GET', '/api/v1/customers/cus_kept')).status).toBe(404);
    process.kill(-third.child.pid!, 'SIGINT');
    expect(await third.exit).toEqual({ code: 0, signal: null });
  }, 180_000);
});

describe('stopping', () => {
  it.each([1, 2])(
    'stops cleanly on Ctrl-C while events are being counted (%i)',
    async () => {
      const s = await startLocal();
      const events = Array.from({ length: 500 }, (_, i) => ({
        specversion: '1.0',
        id: `stop-${i}`,
        source: 'start-test',
        type: 'api_calls',
        subject: `cus_${i % 20}`,
        time: new Date().toISOString(),
        data: { value: 1 },
      }));
      const res = await fetch(`http://127.0.0.1:${s.port}/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(events),
      });
      expect(res.status).toBe(202);
      const [stdout, stderr] = [s.stdout.length, s.stderr.length];
      process.kill(-s.child.pid!, 'SIGINT'); // the aggregator is counting, the pollers and the alert printer are receiving
      expect(await s.exit).toEqual({ code: 0, signal: null });
      expect(await gone(s.tree)).toEqual([]);
      expect(s.stderr.slice(stderr)).toBe('');
      expect(s.stdout.slice(stdout)).toBe('\nSIGINT: stopping...\nstopped.\n');
    },
    120_000,
  );

  it('leaves no java or fauxqs behind when killed with SIGKILL', async () => {
    const s = await startLocal();
    expect(s.tree.length).toBeGreaterThanOrEqual(4);
    process.kill(s.child.pid!, 'SIGKILL');
    expect(await s.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await gone(s.tree)).toEqual([]);
  }, 120_000);

  it('stops by itself when whatever started it is killed with SIGKILL', async () => {
    // A launcher in between, as npm or an IDE would be: it dies without passing anything on.
    const launcher = `require('child_process').spawn(process.execPath, ${JSON.stringify(START)}, { stdio: 'inherit' }); setInterval(() => {}, 60000);`;
    const s = await startLocal(['-e', launcher]);
    expect(s.tree.length).toBeGreaterThanOrEqual(5);
    process.kill(s.child.pid!, 'SIGKILL');
    expect(await gone(s.tree, 20_000)).toEqual([]);
    expect(s.stdout).toContain('parent process gone: stopping...\nstopped.');
    expect(s.stderr).not.toMatch(TROUBLE);
  }, 120_000);
});
