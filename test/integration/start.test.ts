import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../local/emulators';

/**
 * `npm start` as a user runs it: the printed curl examples work as printed, the CLI creates a key
 * that the API accepts, Ctrl-C (SIGINT to the process group, as a terminal sends it) stops it
 * cleanly and leaves no java or node behind, and so does a SIGKILL.
 */
const root = join(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
/** What `npm start` runs, without npm in between. */
const START = ['--import', 'tsx', 'local/start.ts'];
let child: ChildProcess;
let output = '';
let port: number;
const started: number[] = [];

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
async function startLocal(args = START): Promise<Started> {
  const p = await freePort();
  const c = spawn(process.execPath, args, { cwd: root, env: { ...process.env, PORT: String(p) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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

it('prints curl examples that work as printed', () => {
  const block = output.slice(output.indexOf('Try:') + 4, output.indexOf('Ctrl-C stops everything'));
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
  expect(execFileSync('bash', ['-c', reconcile], { cwd: root, encoding: 'utf8' })).toContain('0 drifting counters');
}, 60_000);

it('creates an API key from the CLI that the running API accepts, and revokes it', async () => {
  const created = JSON.parse(
    execFileSync(tsx, ['local/cli.ts', 'keys', 'create', '--name', 'from-cli', '--scopes', 'read', '--customer', 'cus_42'], { cwd: root, encoding: 'utf8' }),
  );
  expect(created).toMatchObject({ name: 'from-cli', scopes: ['read'], customerId: 'cus_42', key: expect.stringMatching(/^mk_/) });
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${created.key}` } });
  expect((await get('/api/v1/customers/cus_42/usage')).status).toBe(200);
  expect((await get('/api/v1/customers/cus_43/usage')).status).toBe(403);
  execFileSync(tsx, ['local/cli.ts', 'keys', 'revoke', created.keyId], { cwd: root, encoding: 'utf8' });
  expect((await get('/api/v1/customers/cus_42/usage')).status).toBe(401);
  const bad = spawnSync(tsx, ['local/cli.ts', 'keys', 'create', '--name', 'x', '--scopes', 'root'], { cwd: root, encoding: 'utf8' });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain('scopes must be');
}, 60_000);

it('prints a portal link from the CLI that opens the usage page', async () => {
  const url = execFileSync(tsx, ['local/cli.ts', 'portal-link', '--customer', 'cus_42', '--ttl', '600'], { cwd: root, encoding: 'utf8' }).trim();
  expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/portal\\?token=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$`));
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('id="meter-api_calls"');
  const bad = spawnSync(tsx, ['local/cli.ts', 'portal-link', '--customer', 'cus_42', '--ttl', '30'], { cwd: root, encoding: 'utf8' });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain('ttl must be 60..86400 seconds');
}, 60_000);

it('previews and starts invoicing from the CLI', () => {
  const cli = (...args: string[]) => JSON.parse(execFileSync(tsx, ['local/cli.ts', ...args], { cwd: root, encoding: 'utf8' }));
  const preview = cli('invoices', 'preview', '--customer', 'cus_42');
  expect(preview).toMatchObject({ customerId: 'cus_42', status: 'upcoming', currency: 'usd', total: '0.00' }); // 1,500 calls are inside the free tier
  const previous = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 15)).toISOString().slice(0, 7);
  // This stack has seen usage only this month: a new run of last month is refused unless forced.
  const refused = spawnSync(tsx, ['local/cli.ts', 'invoices', 'run', '--period', previous], { cwd: root, encoding: 'utf8' });
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain('period_before_first_usage');
  expect(cli('invoices', 'run', '--period', previous, '--force')).toMatchObject({ period: previous, status: 'starting' });
  expect(cli('invoices', 'status', '--period', previous)).toMatchObject({ period: previous });
  expect(cli('invoices', 'list', '--customer', 'cus_42')).toMatchObject({ customerId: 'cus_42' });
  const bad = spawnSync(tsx, ['local/cli.ts', 'invoices', 'run', '--period', '2026-13'], { cwd: root, encoding: 'utf8' });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain('period must be YYYY-MM');
}, 60_000);

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
    headers: { authorization: 'Bearer local-admin-key', 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify(event),
  });
  expect(res.status).toBe(202);
  const deadline = Date.now() + 20_000;
  while (!/ALERT .*Seats.*100%.*\[customer cus_42\]/.test(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(output).toMatch(/ALERT .*Seats.*100%.*\[customer cus_42\]/);
  expect(output).toContain('alerts inbox');
}, 30_000);

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
        headers: { authorization: 'Bearer local-admin-key', 'content-type': 'application/cloudevents-batch+json' },
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
