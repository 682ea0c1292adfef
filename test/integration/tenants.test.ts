import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';
import { Period } from '../../lib/domain/period';
import type { Container } from '../../lib/platform/container';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Tenants and abuse, on the local stack: what a hostile tenant found, each a scenario. An
 * Idempotency-Key reused after its record expired, de-duplication across customers, listings paged
 * while events arrive, and keys with limits.
 */
let t: TestStack;
let root: () => Container;
const period = Period.containing(new Date()).key;

beforeAll(async () => {
  t = await startTestStack();
  root = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const key = async (body: Record<string, unknown>) => (await t.request('POST', '/api/v1/api-keys', { body })).body as { keyId: string; key: string };
const events = (customer: string, ids: string[], value: number) => ids.map((id) => cloudEvent({ subject: customer, source: 'nightly', id, data: { value } }));

describe('an Idempotency-Key reused after its record expired', () => {
  it('starts a new batch: both batches counted and listed, voids work, reconciliation finds no drift', async () => {
    const c = 'cus_tenant_idem';
    const ingest = await key({ name: 'exporter', scopes: ['ingest'] });
    const send = (ids: string[], value: number) => t.sendEvents(events(c, ids, value), { key: ingest.key, idempotencyKey: 'nightly-export-1' });
    expect((await send(['a1', 'a2', 'a3'], 10)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('30');
    // 24 hours later the key's record is gone (its TTL): the same key with another export.
    await root().ledger; // the stack is up
    const { dynamoClient } = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    await dynamoClient().send(new DeleteItemCommand({ TableName: t.stack.env.DEDUPE_TABLE, Key: { pk: { S: `idem|${ingest.keyId}|nightly-export-1` } } }));
    expect((await send(['b1', 'b2', 'b3'], 100)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('330');
    const listed = (await t.request('GET', `/api/v1/customers/${c}/events?period=${period}`)).body.events as { id: string }[];
    expect(listed.map((e) => e.id).sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
    const voided = await t.request('POST', '/api/v1/events/void', { body: { customerId: c, source: 'nightly', id: 'a1', reason: 'test' } });
    expect(voided.status).toBe(200);
    expect((await t.usage(c)).values.api_calls).toBe('320');
    const { reconcile } = require('../../lib/app/audit') as typeof import('../../lib/app/audit');
    expect((await reconcile(root(), { period, customerId: c })).drifts).toEqual([]);
  });
});

describe('de-duplication per customer', () => {
  it("never lets one customer's event suppress, or reveal, another's with the same (source, id)", async () => {
    const attacker = await key({ name: 'attacker', scopes: ['ingest', 'read'], customerId: 'cus_tenant_a' });
    const probe = cloudEvent({ subject: 'cus_tenant_a', source: 'api-gw-eu-1', id: 'req_000123', data: { value: 1 } });
    expect((await t.sendEvents([probe], { key: attacker.key })).status).toBe(202);
    await t.drain();
    // The real producer sends the same pair for the victim.
    expect((await t.sendEvents([cloudEvent({ subject: 'cus_tenant_victim', source: 'api-gw-eu-1', id: 'req_000123', data: { value: 50000 } })])).status).toBe(
      202,
    );
    await t.drain();
    const victim = await t.usage('cus_tenant_victim');
    expect(victim.values.api_calls).toBe('50000');
    expect(victim.duplicatesDropped).toBe(0);
    // The attacker's own usage says nothing of the victim's events.
    const own = (await t.request('GET', '/api/v1/customers/cus_tenant_a/usage', { key: attacker.key })).body;
    expect(own.duplicatesDropped).toBe(0);
    // Within one customer a repeated pair is still one event.
    expect((await t.sendEvents([probe], { key: attacker.key })).status).toBe(202);
    await t.drain();
    expect((await t.request('GET', '/api/v1/customers/cus_tenant_a/usage', { key: attacker.key })).body).toMatchObject({ duplicatesDropped: 1 });
  });
});

describe('the event archive', () => {
  it('never overwrites an object: the same events at its key are accepted, other events are refused', async () => {
    const archive = root().archive;
    const event = (id: string) => ({
      source: 's',
      id,
      type: 'api_calls',
      time: '2026-12-01T00:00:00.000000000Z',
      subject: 'cus_tenant_arch',
      readings: { api_calls: '1' },
      batchId: 'b-arch',
    });
    const group = (events: ReturnType<typeof event>[]) => ({
      customerId: 'cus_tenant_arch',
      period,
      index: 0,
      key: `events/cus_tenant_arch/${period}/b-arch-0.ndjson.gz`,
      events,
    });
    await archive.put(group([event('1')]));
    await archive.put(group([event('1')])); // a redelivery rewrites the same events: fine
    await expect(archive.put(group([event('2')]))).rejects.toThrow(/refusing to overwrite/);
    expect((await archive.read(group([]).key)).map((e) => e.id)).toEqual(['1']);
  });
});
