import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

/**
 * The deployment artifacts as Lambda gets them: `osls package` offline (no AWS credentials), then
 * each function's zip read back. Shared by `npm run bench:bundles` and test/integration/package.test.ts.
 */
const root = join(__dirname, '..');

/** `osls package --stage prod` into `dir`, offline. */
export function packageService(dir: string): void {
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: 'no-such-profile',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
  execFileSync(process.execPath, [join(root, 'node_modules', 'osls', 'bin', 'serverless.js'), 'package', '--stage', 'prod', '--package', dir], {
    cwd: root,
    env,
    stdio: 'pipe',
    timeout: 180_000,
  });
}

/** The files of a zip archive (stored or deflated entries, as serverless writes them), by path. */
export function readZip(file: string): Map<string, Buffer> {
  const zip = readFileSync(file);
  // The end of central directory record: the last 22 bytes, or further back when it has a comment.
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error(`${file}: not a zip archive`);
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: bad central directory`);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + compressed);
    if (method !== 0 && method !== 8) throw new Error(`${file}: ${name} uses compression method ${method}`);
    out.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
  }
  return out;
}

export interface Bundle {
  /** The function's name in serverless.yml. */
  fn: string;
  /** The handler module's path inside the zip (`functions/ingest/handler.js`). */
  file: string;
  js: Buffer;
  map: Buffer | undefined;
  /** Modules of the `stripe` package in the bundle, by its source map. */
  stripeModules: number;
}

/** Each function's bundle in a directory written by packageService, by function name. */
export function readBundles(dir: string): Bundle[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.zip'))
    .sort()
    .map((zipName) => {
      const files = readZip(join(dir, zipName));
      const file = [...files.keys()].find((f) => f.endsWith('.js'));
      if (!file) throw new Error(`${zipName}: no JavaScript in it`);
      const map = files.get(`${file}.map`);
      const sources: string[] = map ? JSON.parse(map.toString('utf8')).sources : [];
      return {
        fn: zipName.replace(/\.zip$/, ''),
        file,
        js: files.get(file)!,
        map,
        stripeModules: sources.filter((s) => /(^|\/)node_modules\/stripe\//.test(s)).length,
      };
    });
}

/** The one function whose bundle may hold the Stripe SDK. */
export const STRIPE_FUNCTION = 'invoiceWorker';
/** Unminified handler.js size limit of the hot-path functions. */
export const HOT_PATH_LIMIT = { functions: ['ingest', 'aggregate'], bytes: 400 * 1024 };

/** What is wrong with a set of bundles, as sentences; empty when nothing is. */
export function bundleProblems(bundles: Bundle[]): string[] {
  const problems: string[] = [];
  for (const b of bundles) {
    if (b.fn !== STRIPE_FUNCTION && b.stripeModules > 0) problems.push(`${b.fn} bundles ${b.stripeModules} Stripe modules`);
    if (HOT_PATH_LIMIT.functions.includes(b.fn) && b.js.length >= HOT_PATH_LIMIT.bytes) {
      problems.push(`${b.fn}'s handler.js is ${Math.round(b.js.length / 1024)} KB, not under ${HOT_PATH_LIMIT.bytes / 1024} KB`);
    }
  }
  for (const fn of HOT_PATH_LIMIT.functions) if (!bundles.some((b) => b.fn === fn)) problems.push(`no bundle for ${fn}`);
  return problems;
}
