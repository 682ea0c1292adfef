import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';
import { commandsDuring } from '../support/faults';

/** The HTTP contract on the real local stack: bad input, the error envelope and access control. */
let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const day = 86_400_000;

async function expectRejected(res: { status: number; body: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.body.error).toMatchObject({ code });
  expect(typeof res.body.error.message).toBe('string');
  expect(Array.isArray(res.body.error.details)).toBe(true);
}

describe('bad input is rejected whole, with a 4xx naming the problem, and nothing is queued', () => {
  const cases: [string, () => Promise<{ status: number; body: any }>, number, string][] = [
    [
      'malformed JSON',
      () => t.request('POST', '/api/v1/events', { raw: '{"specversion":', headers: { 'content-type': 'application/json' } }),
      400,
      'malformed_json',
    ],
    [
      'wrong content type',
      () => t.request('POST', '/api/v1/events', { raw: JSON.stringify(cloudEvent()), headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    ],
    [
      'a body without a JSON content type (fetch sends text/plain)',
      () => t.request('POST', '/api/v1/events', { raw: JSON.stringify(cloudEvent()) }),
      415,
      'unsupported_media_type',
    ],
    ['an array sent as a single CloudEvent', () => t.sendEvents([cloudEvent()], { contentType: 'application/cloudevents+json' }), 400, 'invalid_body'],
    ['a single event sent as a batch', () => t.sendEvents(cloudEvent()), 400, 'invalid_body'],
    ['an empty batch', () => t.sendEvents([]), 400, 'empty_batch'],
    ['1,001 events', () => t.sendEvents(Array.from({ length: 1001 }, () => cloudEvent())), 413, 'too_many_events'],
    ['a body over 1 MiB', () => t.sendEvents([cloudEvent({ data: { value: 1, pad: 'x'.repeat(1024 * 1024) } })]), 413, 'payload_too_large'],
  ];
  it.each(cases)('%s', async (_name, send, status, code) => {
    await expectRejected(await send(), status, code);
    expect(await t.queueDepth(t.usageQueueUrl)).toBe(0);
  });

  it('lists every invalid field of every event, and queues none of the valid ones', async () => {
    const res = await t.sendEvents([
      cloudEvent({ subject: 'cus_bad' }),
      cloudEvent({ id: undefined, source: '' }),
      cloudEvent({ type: 'api_callz' }),
      cloudEvent({ data: { value: -1 } }),
      cloudEvent({ data: { value: 'NaN' } }),
      cloudEvent({ data: {} }),
      cloudEvent({ time: new Date(Date.now() + 10 * 60_000).toISOString() }),
      cloudEvent({ time: new Date(Date.now() - 36 * day).toISOString() }),
      cloudEvent({ time: 'yesterday' }),
      cloudEvent({ subject: 'has spaces' }),
      cloudEvent({ specversion: '0.3' }),
      cloudEvent({ data: { value: 1e300 } }),
      'not an object',
    ]);
    await expectRejected(res, 400, 'invalid_events');
    const got = (res.body.error.details as { index: number; field?: string; code: string }[]).map((d) => `${d.index}:${d.field ?? ''}:${d.code}`);
    expect(got).toEqual(
      expect.arrayContaining([
        '1:id:missing_field',
        '1:source:invalid_field',
        '2:type:unknown_type',
        '3:data.value:negative_value',
        '4:data.value:invalid_value',
        '5:data.value:value_missing',
        '6:time:event_in_future',
        '7:time:event_too_old',
        '8:time:invalid_time',
        '9:subject:invalid_field',
        '10:specversion:invalid_specversion',
        '11:data.value:invalid_value',
        '12::invalid_event',
      ]),
    );
    expect(got.some((d) => d.startsWith('0:'))).toBe(false);
    expect(await t.queueDepth(t.usageQueueUrl)).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect((await t.usage('cus_bad')).values.api_calls).toBe('0');
  });

  it('accepts an event for a customer that does not exist yet (priced on the default plan)', async () => {
    const res = await t.sendEvents([cloudEvent({ subject: 'cus_unknown_yet', data: { value: 4 } })]);
    expect(res.status).toBe(202);
    await t.drain();
    const u = await t.usage('cus_unknown_yet');
    expect(u.values.api_calls).toBe('4');
    expect(u.body.planId).toBe('default');
  });

  it('answers 400 for a bad period, customer id or customer body, never 500', async () => {
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_1/usage?period=2026-13'), 400, 'invalid_period');
    for (const period of ['9999-12', '0050-03']) {
      for (const route of ['usage', 'invoices/upcoming', 'alerts']) {
        const res = await t.request('GET', `/api/v1/customers/cus_1/${route}?period=${period}`);
        await expectRejected(res, 400, 'invalid_period');
        expect(res.body.error.message).toBe(`period must be YYYY-MM from 1970-01 to 9998-12; got "${period}"`);
      }
    }
    await expectRejected(await t.request('GET', '/api/v1/customers/bad%20id/usage'), 400, 'invalid_customer_id');
    await expectRejected(await t.request('PUT', '/api/v1/customers/cus_1', { body: { name: '' } }), 400, 'invalid_body');
    await expectRejected(await t.request('PUT', '/api/v1/customers/cus_1', { body: { name: 'A', planId: 'gold' } }), 400, 'unknown_plan');
    await expectRejected(await t.request('PUT', '/api/v1/customers/cus_1', { body: { name: 'A', budget: { amount: 12 } } }), 400, 'invalid_body');
    await expectRejected(
      await t.request('PUT', '/api/v1/customers/cus_1', { raw: '{', headers: { 'content-type': 'application/json' } }),
      400,
      'malformed_json',
    );
    await expectRejected(await t.request('GET', '/api/v1/customers?limit=0'), 400, 'invalid_limit');
    await expectRejected(await t.request('GET', '/api/v1/nothing-here'), 404, 'not_found');
  });
});

describe('customers', () => {
  it('creates (201), replaces (200), reads and lists customers with pagination', async () => {
    const put = await t.request('PUT', '/api/v1/customers/cus_acme', {
      body: { name: 'Acme', stripeCustomerId: 'cus_Stripe1', alertEmail: 'ops@acme.test', budget: { amount: '500.00' } },
    });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id: 'cus_acme', name: 'Acme', planId: 'default', budget: { amount: '500.00' } });
    expect((await t.request('PUT', '/api/v1/customers/cus_acme', { body: { name: 'Acme Inc', planId: 'default' } })).status).toBe(200);
    expect((await t.request('GET', '/api/v1/customers/cus_acme')).body).toMatchObject({ name: 'Acme Inc', createdAt: put.body.createdAt });
    expect((await t.request('GET', '/api/v1/customers/cus_nobody')).status).toBe(404);
    for (const id of ['cus_p1', 'cus_p2', 'cus_p3']) await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: id } });
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { body: { customers: { id: string }[]; nextCursor: string | null } } = await t.request(
        'GET',
        `/api/v1/customers?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      page.body.customers.forEach((c) => seen.add(c.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect([...seen]).toEqual(expect.arrayContaining(['cus_acme', 'cus_p1', 'cus_p2', 'cus_p3']));
  });
});

describe('API keys and access control', () => {
  const createKey = async (body: unknown) => {
    const res = await t.request('POST', '/api/v1/api-keys', { body });
    expect(res.status).toBe(201);
    return res.body as { keyId: string; key: string };
  };

  it('stores only a hash of the key and shows the plain key once', async () => {
    const k = await createKey({ name: 'hash check', scopes: ['read'] });
    const stored = await t.stack.dynamo.send(new ScanCommand({ TableName: t.stack.env.API_KEYS_TABLE }));
    const dump = JSON.stringify(stored.Items);
    expect(dump).toContain(k.keyId);
    expect(dump).not.toContain(k.key.split('_').slice(2).join('_'));
    const listed = await t.request('GET', '/api/v1/api-keys');
    expect(JSON.stringify(listed.body)).not.toContain(k.key);
  });

  it('answers 401 for a missing, malformed, unknown or revoked key', async () => {
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_x/usage', { key: null }), 401, 'unauthorized');
    await expectRejected(await t.sendEvents([cloudEvent()], { key: 'Basic abc' }), 401, 'unauthorized');
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_x/usage', { key: 'nope' }), 401, 'unauthorized');
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_x/usage', { key: `mk_aaaaaaaaaaaa_${'b'.repeat(43)}` }), 401, 'unauthorized');
    const k = await createKey({ name: 'soon revoked', scopes: ['read'] });
    expect((await t.request('GET', '/api/v1/customers/cus_x/usage', { key: k.key })).status).toBe(200);
    expect((await t.request('DELETE', `/api/v1/api-keys/${k.keyId}`)).body.revokedAt).toEqual(expect.any(String));
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_x/usage', { key: k.key }), 401, 'unauthorized');
    // A wrong secret for a real key id is 401 too.
    const other = await createKey({ name: 'real', scopes: ['read'] });
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_x/usage', { key: `mk_${other.keyId}_${'c'.repeat(43)}` }), 401, 'unauthorized');
  });

  it('answers 403 for the wrong scope or another customer, and nothing is queued', async () => {
    const reader = await createKey({ name: 'reader', scopes: ['read'] });
    const ingest = await createKey({ name: 'ingest only', scopes: ['ingest'] });
    const bound = await createKey({ name: 'cus_42 reader+ingest', scopes: ['read', 'ingest'], customerId: 'cus_42' });

    await expectRejected(await t.sendEvents([cloudEvent()], { key: reader.key }), 403, 'insufficient_scope');
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_42/usage', { key: ingest.key }), 403, 'insufficient_scope');
    await expectRejected(await t.request('PUT', '/api/v1/customers/cus_42', { key: reader.key, body: { name: 'x' } }), 403, 'insufficient_scope');
    await expectRejected(await t.request('POST', '/api/v1/api-keys', { key: reader.key, body: { name: 'x', scopes: ['admin'] } }), 403, 'insufficient_scope');
    await expectRejected(await t.request('GET', '/api/v1/customers/cus_43/usage', { key: bound.key }), 403, 'customer_forbidden');
    await expectRejected(
      await t.sendEvents([cloudEvent({ subject: 'cus_42' }), cloudEvent({ subject: 'cus_43' })], { key: bound.key }),
      403,
      'customer_forbidden',
    );
    expect(await t.queueDepth(t.usageQueueUrl)).toBe(0);

    expect((await t.request('GET', '/api/v1/customers/cus_42/usage', { key: bound.key })).status).toBe(200);
    expect((await t.sendEvents([cloudEvent({ subject: 'cus_42' })], { key: bound.key })).status).toBe(202);
    expect((await t.sendEvents([cloudEvent({ subject: 'cus_43' })], { key: ingest.key })).status).toBe(202);
    await t.drain();
  });

  it('rejects bad key requests with 400/404', async () => {
    await expectRejected(await t.request('POST', '/api/v1/api-keys', { body: { name: 'x', scopes: ['superuser'] } }), 400, 'invalid_body');
    await expectRejected(await t.request('DELETE', '/api/v1/api-keys/doesnotexist'), 404, 'api_key_not_found');
    const bound = await t.request('POST', '/api/v1/api-keys', { body: { name: 'x', scopes: ['admin'], customerId: 'cus_42' } });
    await expectRejected(bound, 400, 'admin_key_bound');
    expect(bound.body.error.message).toMatch(/never use an admin endpoint/);
  });
});

describe('health', () => {
  it('answers 200 when every part is ready', async () => {
    expect(await t.request('GET', '/health', { key: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
  });
});

describe('entitlements', () => {
  it('answers may-I for every meter and for one, with a hard stop once usage reaches the limit', async () => {
    const id = 'cus_entitled';
    expect((await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: 'Free tier', planId: 'free' } })).status).toBe(201);
    expect((await t.sendEvents([cloudEvent({ subject: id, data: { value: 9999 } })])).status).toBe(202);
    await t.drain();
    const all = await t.request('GET', `/api/v1/customers/${id}/entitlements`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ customerId: id, planId: 'free' });
    expect(all.body.entitlements.find((e: any) => e.meter === 'api_calls')).toEqual({
      meter: 'api_calls',
      usage: '9999',
      included: '10000',
      limit: '10000',
      remaining: '1',
      hasAccess: true,
    });
    expect((await t.sendEvents([cloudEvent({ subject: id, data: { value: 1 } })])).status).toBe(202);
    await t.drain();
    const one = await t.request('GET', `/api/v1/customers/${id}/entitlements/api_calls`);
    expect(one.body).toMatchObject({ customerId: id, meter: 'api_calls', usage: '10000', remaining: '0', hasAccess: false });
    expect((await t.request('GET', `/api/v1/customers/${id}/entitlements/storage_gb`)).body).toMatchObject({ usage: '0', limit: '1', hasAccess: true });
  });

  it('grants a customer without a limit, 404s an unknown meter, and keeps other customers out', async () => {
    const unknown = await t.request('GET', '/api/v1/customers/cus_never_created/entitlements/api_calls');
    expect(unknown.body).toMatchObject({ planId: 'default', limit: null, remaining: null, hasAccess: true });
    const meter = await t.request('GET', '/api/v1/customers/cus_entitled/entitlements/nope');
    expect(meter.status).toBe(404);
    expect(meter.body.error.code).toBe('meter_not_found');
    const bound = (await t.request('POST', '/api/v1/api-keys', { body: { name: 'bound', scopes: ['read'], customerId: 'cus_other' } })).body.key;
    expect((await t.request('GET', '/api/v1/customers/cus_entitled/entitlements', { key: bound })).status).toBe(403);
  });
});

describe('what a read costs the store', () => {
  it('answers the usage page and an entitlement check with one BatchGetItem, and the upcoming invoice with one more Query of the invoices (beside the key`s count)', async () => {
    const { dynamoClient } = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    const id = 'cus_read_cost';
    expect(
      (
        await t.sendEvents([
          cloudEvent({ subject: id, data: { value: 7 } }),
          cloudEvent({ subject: id, id: 'rc-2', type: 'user_activity', data: { userId: 'u1' } }),
        ])
      ).status,
    ).toBe(202);
    expect((await t.sendEvents([cloudEvent({ subject: id, id: 'rc-2', type: 'user_activity', data: { userId: 'u1' } })])).status).toBe(202);
    await t.drain();
    let usage: any;
    // Every request of a key is also counted against its limits: one UpdateItem first (docs/scaling.md, "Limits").
    expect(await commandsDuring(dynamoClient(), async () => (usage = await t.request('GET', `/api/v1/customers/${id}/usage`)))).toEqual([
      'UpdateItemCommand',
      'BatchGetItemCommand',
    ]);
    expect(usage.body).toMatchObject({ duplicatesDropped: 1 });
    expect(usage.body.meters.find((m: any) => m.meter === 'api_calls')).toMatchObject({ value: '7' });
    expect(usage.body.meters.find((m: any) => m.meter === 'active_users')).toMatchObject({ value: '1' });
    expect(await commandsDuring(dynamoClient(), () => t.request('GET', `/api/v1/customers/${id}/entitlements`))).toEqual([
      'UpdateItemCommand',
      'BatchGetItemCommand',
    ]);
    const preview = await commandsDuring(dynamoClient(), () => t.request('GET', `/api/v1/customers/${id}/invoices/upcoming`));
    expect(preview.sort()).toEqual(['BatchGetItemCommand', 'QueryCommand', 'UpdateItemCommand']);
  });
});
