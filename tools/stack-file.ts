import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, relative } from 'node:path';

/** The repository root (this file is in tools/). */
const ROOT = join(__dirname, '..');

/**
 * `.local/stack.json`: how the CLI (and `npm run demo`) find the stack `npm start` runs. It holds
 * the functions' environment (table names, queue URLs, emulator endpoints) plus the stack's API URL,
 * process id and start time, so that a file left behind by a stack that was killed can be told from
 * a running one. LOCAL_STACK_FILE names another file (the tests use their own).
 */
const STACK_FILE = process.env.LOCAL_STACK_FILE || join(ROOT, '.local', 'stack.json');

export interface StackFileExtras {
  LOCAL_API_URL: string;
  LOCAL_STACK_PID: string;
  LOCAL_STACK_STARTED_AT: string;
}

export function writeStackFile(env: Record<string, string>, extras: StackFileExtras): void {
  mkdirSync(dirname(STACK_FILE), { recursive: true });
  writeFileSync(STACK_FILE, JSON.stringify({ ...env, ...extras }, null, 2));
}

export function removeStackFile(): void {
  rmSync(STACK_FILE, { force: true });
}

/** No stack to talk to: the command cannot run (exit code 1), with what to do about it. */
export class NoStackError extends Error {
  override name = 'NoStackError';
}

const shown = () => {
  const rel = relative(process.cwd(), STACK_FILE);
  return rel && !rel.startsWith('..') ? rel : STACK_FILE;
};

/** Whether something accepts connections at `endpoint` (http://host:port), within `ms`. */
function answers(endpoint: string, ms = 1000): Promise<boolean> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The running local stack's environment; NoStackError when there is none or the file is stale. */
export async function readRunningStack(): Promise<Record<string, string>> {
  if (!existsSync(STACK_FILE)) {
    throw new NoStackError(
      'no local stack is running: start one with `npm start` (or, for a deployed stage, set API_KEYS_TABLE and the other environment variables of its functions)',
    );
  }
  const env = JSON.parse(readFileSync(STACK_FILE, 'utf8')) as Record<string, string>;
  const pid = Number(env.LOCAL_STACK_PID);
  const running = (Number.isInteger(pid) && pid > 0 ? alive(pid) : true) && env.DYNAMODB_ENDPOINT !== undefined && (await answers(env.DYNAMODB_ENDPOINT));
  if (!running) {
    const who = env.LOCAL_STACK_PID ? ` (process ${env.LOCAL_STACK_PID}, started ${env.LOCAL_STACK_STARTED_AT ?? 'earlier'})` : '';
    throw new NoStackError(
      `the local stack is no longer running: ${shown()} was left by a stack${who} that was stopped without cleaning up. Start it again with \`npm start\``,
    );
  }
  return env;
}

/** A connection refused by an emulator of the local stack: it stopped while the command ran. */
export function isStackGone(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (code === 'ECONNREFUSED' || (e as { name?: unknown }).name === 'ECONNREFUSED') return true;
    if (Array.isArray((e as { errors?: unknown[] }).errors) && (e as { errors: unknown[] }).errors.some(isStackGone)) return true;
  }
  return false;
}
