import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../local/emulators';

/**
 * `npm start` as a user runs it: the printed curl examples work as printed, the CLI creates a key
 * that the API accepts, and Ctrl-C (SIGINT to the process group) leaves no java or node behind.
 */
const root = join(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
let child: ChildProcess;
let output = '';
let port: number;

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

beforeAll(async () => {
  port = await freePort();
  child = spawn(tsx, ['local/start.ts'], { cwd: root, env: { ...process.env, PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!output.includes('Ctrl-C stops everything')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 120_000);

afterAll(() => {
  if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
});

it('prints curl examples that work as printed', () => {
  const block = output.slice(output.indexOf('Try:') + 4, output.indexOf('Ctrl-C stops everything'));
  const commands = block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('curl'));
  expect(commands).toHaveLength(3);
  const [put, post] = commands.map((c) => execFileSync('bash', ['-c', c], { encoding: 'utf8' }));
  expect(JSON.parse(put!)).toMatchObject({ id: 'cus_42', planId: 'default' });
  expect(JSON.parse(post!)).toEqual({ accepted: 1 });
  const deadline = Date.now() + 20_000;
  let usage: any;
  do {
    usage = JSON.parse(execFileSync('bash', ['-c', commands[2]!], { encoding: 'utf8' }));
  } while (usage.meters.find((m: any) => m.meter === 'api_calls').value !== '1500' && Date.now() < deadline);
  expect(usage.meters.find((m: any) => m.meter === 'api_calls').value).toBe('1500');
});

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

it('stops every child process on Ctrl-C', async () => {
  const tree = descendants(child.pid!);
  expect(tree.length).toBeGreaterThanOrEqual(2); // at least the stack, java and fauxqs
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid!, 'SIGINT');
  await exited;
  const deadline = Date.now() + 10_000;
  while (tree.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(tree.filter(alive)).toEqual([]);
  expect(output).toContain('stopped.');
}, 30_000);
