import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN, startTestStack, type TestStack } from '../support/stack';

/**
 * The examples of docs/ingest.md, run as written against the local stack: each code block marked
 * `<!-- tested: name -->` is taken from the document itself, so an example cannot rot unnoticed.
 * Nothing in them is replaced: the stack runs on a free port, which the test gives them as `PORT`
 * (and its key as `LOCAL_ADMIN_KEY`), the way a reader who started `PORT=3001 npm start` would.
 */
const root = join(__dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'ingest.md'), 'utf8');
let t: TestStack;

function example(name: string): string {
  const m = new RegExp(`<!-- tested: ${name} -->\\s*\`\`\`(\\w+)\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/ingest.md has no example marked "tested: ${name}"`);
  return m[2]!;
}
/** The environment of a reader's shell: the stack's port and key, and no METERING_* or API/KEY of the test runner's own. */
function readerEnv(): NodeJS.ProcessEnv {
  const { METERING_URL, METERING_KEY, API, KEY, ...rest } = process.env;
  return { ...rest, PORT: new URL(t.stack.url).port, LOCAL_ADMIN_KEY: ADMIN };
}
// Asynchronous: the stack's handlers run in this process and must answer while curl waits.
const run = promisify(execFile);
/** A curl example as a reader runs it: after the document's setup block, in the same shell. */
const bash = async (code: string) => (await run('bash', ['-c', `${example('setup')}\n${code}`], { encoding: 'utf8', env: readerEnv() })).stdout;

beforeAll(async () => {
  t = await startTestStack({ env: { CATALOG_FILE: '' } });
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

it('hard-codes no address or key in an example: one API and one KEY variable, set once from PORT and LOCAL_ADMIN_KEY', () => {
  expect(example('setup')).toBe('API=http://localhost:${PORT:-3000}\nKEY=${LOCAL_ADMIN_KEY:-local-admin-key}');
  expect(doc).not.toMatch(/localhost:3000|127\.0\.0\.1/);
  const curls = [...doc.matchAll(/```sh\n([\s\S]*?)\n```/g)].map((m) => m[1]!).filter((code) => code.includes('curl'));
  expect(curls).toHaveLength(3);
  for (const code of curls) {
    expect(code).toContain('"$API/api/v1/events"');
    expect(code).toContain('"Authorization: Bearer $KEY"');
    expect(code).not.toMatch(/^(API|KEY)=/m); // defined once, in the setup block
  }
});

it('sends one event with curl', async () => {
  expect(JSON.parse(await bash(example('curl-one')))).toEqual({ accepted: 1 });
  await t.drain();
  expect((await t.usage('cus_42')).values.api_calls).toBe('1');
});

it('sends a batch with curl and an Idempotency-Key: the second attempt is replayed, not queued', async () => {
  const answers = (await bash(example('curl-batch')))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(answers).toEqual([{ accepted: 3 }, { accepted: 3 }]);
  await t.drain();
  const { values, duplicatesDropped } = await t.usage('cus_42');
  expect(values).toMatchObject({ compute_seconds: '120.5', storage_gb: '12', active_users: '1' });
  expect(duplicatesDropped).toBe(0);
});

it('sends an event in binary content mode with curl', async () => {
  expect(JSON.parse(await bash(example('curl-binary')))).toEqual({ accepted: 1 });
  await t.drain();
  expect((await t.usage('cus_42')).values.api_calls).toBe('2');
});

/** Idempotency-Key records in the dedupe table: one per request that carried a key. */
async function idempotencyKeys(): Promise<string[]> {
  const out = await t.stack.dynamo.send(new ScanCommand({ TableName: t.stack.env.DEDUPE_TABLE }));
  return (out.Items ?? []).map((i) => i.pk?.S ?? '').filter((pk) => pk.startsWith('idem|'));
}

it('sends 2,500 events from Node with fetch, in three requests, and a rerun counts nothing twice', async () => {
  const dir = join(root, '.local', 'doc-examples');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'send-usage.mjs');
  writeFileSync(file, example('node-fetch'));
  const node = async () => (await run(process.execPath, [file], { encoding: 'utf8', env: readerEnv() })).stdout;
  try {
    const before = await t.usage('cus_42');
    const keysBefore = await idempotencyKeys();
    expect((await node()).trim()).toBe('accepted 2500');
    await t.drain(120_000);
    const after = await t.usage('cus_42');
    expect(Number(after.values.api_calls) - Number(before.values.api_calls)).toBe(2500);
    const keys = (await idempotencyKeys()).filter((k) => !keysBefore.includes(k));
    expect(keys).toHaveLength(3); // 1,000 + 1,000 + 500
    // Run again (new times, so new bodies and keys): the same (source, id) pairs are dropped as duplicates.
    expect((await node()).trim()).toBe('accepted 2500');
    await t.drain(120_000);
    const again = await t.usage('cus_42');
    expect(again.values.api_calls).toBe(after.values.api_calls);
    expect(again.duplicatesDropped - after.duplicatesDropped).toBe(2500);
  } finally {
    rmSync(file, { force: true });
  }
}, 300_000);
