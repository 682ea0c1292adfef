import type { SQSClient } from '@aws-sdk/client-sqs';
import { createHash } from 'node:crypto';
import { ADMIN, cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * What a hostile (or just unusual) client found, on the real emulators: every request is either
 * refused with a clear 4xx or accepted and then counted, never a 202 that the queue, the store or
 * pricing refuses later, and never a 5xx.
 */
let t: TestStack;
let sqs: SQSClient;
beforeAll(async () => {
  t = await startTestStack();
  // The handlers' own SQS client (same module registry as the handlers the stack loaded).
  sqs = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).sqsClient();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(async () => {
  expect(await t.receiveAll(t.dlqUrl)).toEqual([]);
});

/** Sends `events` (api_calls of 1 each) twice: each counts once, and the second time each is a duplicate. */
async function expectCountedOnceEach(customer: string, events: unknown[]) {
  expect((await t.sendEvents(events)).status).toBe(202);
  await t.drain();
  expect((await t.usage(customer)).values.api_calls).toBe(String(events.length));
  expect((await t.sendEvents(events)).status).toBe(202);
  await t.drain();
  const u = await t.usage(customer);
  expect(u.values.api_calls).toBe(String(events.length));
  expect(u.duplicatesDropped).toBe(events.length);
}

describe('keys built from client input', () => {
  it('counts an event whose (source, id) is longer than a DynamoDB key, and its message-mates, exactly once', async () => {
    const c = 'cus_longkey';
    const events = [
      cloudEvent({ subject: c, id: '\u0001'.repeat(256), source: '\u0001'.repeat(100), data: { value: 7 } }),
      cloudEvent({ subject: c, id: '\u0001'.repeat(256), source: '\u0001'.repeat(256), data: { value: 11 } }),
      cloudEvent({ subject: c, data: { value: 5 } }),
    ];
    expect((await t.sendEvents(events)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe('23');
    expect((await t.sendEvents(events)).status).toBe(202);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('23');
    expect(u.duplicatesDropped).toBe(3);
  });

  it("counts ids and sources written in PartiQL's own syntax (the claims are INSERT statements) as plain text, once each", async () => {
    const c = 'cus_partiql';
    // Quotes, a parameter mark, a document literal, a comment and a statement of its own: claims
    // bind them as parameters, never into the statement's text.
    const ids = [`'`, `"`, `?`, `{'pk': ?}`, `x' OR 'a'='a`, `--`, `"; DELETE FROM "t"`, `\\`, `\`{}\``];
    const events = ids.map((id, i) => cloudEvent({ subject: c, id, source: i % 2 ? `INSERT INTO "x" VALUE {'pk': ?}` : `'`, data: { value: 1 } }));
    await expectCountedOnceEach(c, events);
  });

  it('counts a UNIQUE_COUNT value that looks like the hash of a long value as a value of its own', async () => {
    const c = 'cus_lookalike';
    const long = '\u00fc'.repeat(250); // 500 bytes: stored by its hash
    const lookalike = `sha256:${createHash('sha256').update(long).digest('hex')}`;
    const events = [long, lookalike, long].map((userId) => cloudEvent({ subject: c, type: 'user_activity', data: { userId } }));
    expect((await t.sendEvents(events)).status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.active_users).toBe('2');
  });
});

describe('ids SQS would refuse as raw text', () => {
  it('accepts and counts ids with U+FFFF, U+FFFE, U+0000, DEL and emoji, each one distinct and de-duplicated', async () => {
    const c = 'cus_oddids';
    const ids = ['x\uffff', 'x\ufffe', 'x\u0000', 'x\u007f', 'x\u{1F600}', 'x\ufffd', 'x?'];
    const events = ids.map((id) => cloudEvent({ subject: c, id, source: `src\uffff\u{1F600}`, data: { value: 1 } }));
    await expectCountedOnceEach(c, events);
  });

  it('rejects lone surrogates in id, source and UNIQUE_COUNT values with a 400 naming the field', async () => {
    const res = await t.sendEvents([
      cloudEvent({ subject: 'cus_lone', id: 'a\ud800' }),
      cloudEvent({ subject: 'cus_lone', source: '\udc00b' }),
      cloudEvent({ subject: 'cus_lone', type: 'user_activity', data: { userId: 'u\udbff' } }),
    ]);
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { index: number; field: string; code: string }) => `${d.index}:${d.field}:${d.code}`)).toEqual([
      '0:id:invalid_unicode',
      '1:source:invalid_unicode',
      '2:data.userId:invalid_unicode',
    ]);
    expect(await t.queueDepth(t.usageQueueUrl)).toBe(0);
  });
});

describe('a request that fails part way through queuing', () => {
  /** Makes the handlers' SQS client fail (with every retry) the SendMessageBatch carrying message `index` of a request, while armed. */
  function failSendMessageBatchHolding(index: number) {
    const state = { armed: true, calls: 0, failed: 0 };
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand' && state.armed) {
          state.calls += 1;
          if ((args.input as { Entries: { Id: string }[] }).Entries.some((e) => e.Id === String(index))) {
            state.failed += 1;
            throw Object.assign(new Error('injected SQS outage'), { name: 'InjectedOutage' });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'partialOutage' },
    );
    return state;
  }
  afterEach(() => {
    sqs.middlewareStack.remove('partialOutage');
  });

  // 1,000 events with long escaped ids: about 15 queue messages, sent 2 per SendMessageBatch.
  const bigRequest = (c: string) =>
    Array.from({ length: 1000 }, (_, i) => cloudEvent({ subject: c, id: `${c}-${i}-${'\u00e9'.repeat(230)}`, data: { value: (i % 7) + 1 } }));
  const total = (events: Record<string, unknown>[]) => String(events.reduce((s, e) => s + (e.data as { value: number }).value, 0));

  it.each([
    ['without an Idempotency-Key', undefined],
    ['with the same Idempotency-Key', 'partial-retry-1'],
  ])('answers 503 with Retry-After, and a retry of the same body %s counts every event exactly once', async (_name, idempotencyKey) => {
    const c = `cus_partial_${idempotencyKey ? 'idem' : 'plain'}`;
    const events = bigRequest(c);
    const outage = failSendMessageBatchHolding(2); // the second of about 8 SendMessageBatch calls
    const first = await t.sendEvents(events, { idempotencyKey });
    expect(outage.failed).toBeGreaterThan(0);
    expect(outage.calls).toBeGreaterThan(outage.failed + 2);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(first.body.error).toMatchObject({ code: 'enqueue_incomplete', details: [], requestId: first.headers.get('x-request-id') });
    expect(first.body.error.message).toMatch(/safe to retry/);
    await t.drain();
    const partial = await t.usage(c);
    expect(Number(partial.values.api_requests)).toBeGreaterThan(0);
    expect(Number(partial.values.api_requests)).toBeLessThan(1000);

    outage.armed = false;
    const retry = await t.sendEvents(events, { idempotencyKey });
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual({ accepted: 1000 });
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe(total(events));
    expect(u.values.api_requests).toBe('1000');
    // Without a key the retry's copies of the events queued the first time are duplicates; with
    // the key the retry re-sends the same batches, which the aggregator finds already applied.
    expect(u.duplicatesDropped).toBe(idempotencyKey ? 0 : Number(partial.values.api_requests));
  });
});

const admin = { authorization: `Bearer ${ADMIN}` };
function expectError(res: { status: number; body: any; headers: Headers }, status: number, code: string) {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.body.error).toEqual({ code, message: expect.any(String), details: expect.any(Array), requestId: expect.any(String) });
  expect(res.headers.get('x-request-id')).toBe(res.body.error.requestId);
}

describe('paths and queries a client can garble', () => {
  it.each([
    ['GET', '/api/v1/customers/%zz/usage', 'id'],
    ['GET', '/api/v1/customers/%E0%A4%A/invoices', 'id'],
    ['GET', '/api/v1/customers/%C0%AF/invoices/upcoming', 'id'],
    ['GET', '/api/v1/customers/cus%/alerts', 'id'],
    ['GET', '/api/v1/customers/%ff', 'id'],
    ['PUT', '/api/v1/customers/%zz', 'id'],
    ['GET', '/api/v1/invoice-runs/2026-%1', 'period'],
    ['DELETE', '/api/v1/api-keys/%zz', 'keyId'],
  ])('%s %s (malformed percent-encoding) is a 400 naming {%s}', async (method, path, param) => {
    const res = await t.raw(method, path, { headers: { ...admin, 'content-type': 'application/json' }, body: method === 'PUT' ? '{"name":"x"}' : undefined });
    expectError(res, 400, 'invalid_path_parameter');
    expect(res.body.error.details).toEqual([expect.objectContaining({ field: param, code: 'invalid_path_parameter' })]);
  });

  it('answers 400 for a key id of the wrong length or alphabet, never 500', async () => {
    expectError(await t.raw('DELETE', `/api/v1/api-keys/${'a'.repeat(3000)}`, { headers: admin }), 400, 'invalid_key_id');
    expectError(await t.raw('DELETE', '/api/v1/api-keys/ABCDEFGHIJKL', { headers: admin }), 400, 'invalid_key_id');
    expectError(await t.raw('DELETE', '/api/v1/api-keys/abcdefghijkl', { headers: admin }), 404, 'api_key_not_found');
  });

  it('refuses cursors it did not issue (garbage, forged, truncated, tampered) with 400 invalid_cursor', async () => {
    for (const id of ['cus_cur_1', 'cus_cur_2', 'cus_cur_3'])
      expect((await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: id } })).status).toBe(201);
    const page = await t.request('GET', '/api/v1/customers?limit=1');
    const cursor: string = page.body.nextCursor;
    expect(cursor).toEqual(expect.any(String));
    expect((await t.request('GET', `/api/v1/customers?limit=1&cursor=${encodeURIComponent(cursor)}`)).status).toBe(200);
    const forged = Buffer.from('cus_cur_2').toString('base64url');
    const tampered = `${cursor.slice(0, 2)}${cursor[2] === 'A' ? 'B' : 'A'}${cursor.slice(3)}`;
    for (const bad of ['A', '', forged, cursor.slice(0, -1), cursor.slice(1), tampered, `${cursor}x`, '%zz', 'x'.repeat(5000)]) {
      const res = await t.raw('GET', `/api/v1/customers?cursor=${encodeURIComponent(bad)}`, { headers: admin });
      expectError(res, 400, 'invalid_cursor');
    }
  });
});

describe('scope and customer binding come before the body', () => {
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    for (const [name, body] of Object.entries({
      read: { name: 'reader', scopes: ['read'] },
      ingest: { name: 'ingester', scopes: ['ingest'] },
    })) {
      const res = await t.request('POST', '/api/v1/api-keys', { body });
      keys[name] = res.body.key;
    }
    // Refused at creation now (admin_key_bound); one made before that rule must still be refused at use.
    keys.bound = (await t.storeKeyDirectly({ name: 'bound admin', scopes: ['admin'], customerId: 'cus_bound' })).key;
  });
  const invalidBody = { raw: '{"not": "the schema"', headers: { 'content-type': 'application/json' } };

  it.each([
    ['PUT', '/api/v1/customers/cus_bound', 'read', 'insufficient_scope'],
    ['PUT', '/api/v1/customers/cus_bound', 'bound', 'customer_forbidden'],
    ['POST', '/api/v1/api-keys', 'ingest', 'insufficient_scope'],
    ['POST', '/api/v1/api-keys', 'bound', 'customer_forbidden'],
    ['POST', '/api/v1/invoice-runs', 'read', 'insufficient_scope'],
    ['POST', '/api/v1/invoice-runs', 'bound', 'customer_forbidden'],
    ['POST', '/api/v1/events', 'read', 'insufficient_scope'],
  ])('%s %s with a %s key and a malformed body is 403 %s, not 400', async (method, path, key, code) => {
    const res = await t.request(method, path, { ...invalidBody, key: keys[key] });
    expectError(res, 403, code);
  });

  it('answers 401 before looking at the body or the path', async () => {
    expectError(await t.request('PUT', '/api/v1/customers/%zz', { ...invalidBody, key: null }), 401, 'unauthorized');
    expectError(await t.request('POST', '/api/v1/events', { ...invalidBody, key: 'nope' }), 401, 'unauthorized');
  });
});

describe('customer ids a URL path cannot carry', () => {
  it('refuses subjects "." and ".." at ingest (they could never be read back)', async () => {
    const res = await t.sendEvents([cloudEvent({ subject: '.' }), cloudEvent({ subject: '..' }), cloudEvent({ subject: '...' })]);
    expectError(res, 400, 'invalid_events');
    expect(res.body.error.details.map((d: { index: number; field: string }) => `${d.index}:${d.field}`)).toEqual(['0:subject', '1:subject']);
    expect(res.body.error.details[0].message).toMatch(/"\." or "\.\."/);
  });

  it('refuses to bind a key to customer ".."', async () => {
    expectError(await t.request('POST', '/api/v1/api-keys', { body: { name: 'dots', scopes: ['read'], customerId: '..' } }), 400, 'invalid_body');
  });
});

describe('the HTTP API itself (router-level answers, paths taken literally like API Gateway)', () => {
  it.each(['%2e', '%2E%2e', '.', '..'])('refuses customer id %s on PUT and GET with 400 invalid_customer_id', async (segment) => {
    const headers = { ...admin, 'content-type': 'application/json' };
    expectError(await t.raw('PUT', `/api/v1/customers/${segment}`, { headers, body: '{"name":"dots"}' }), 400, 'invalid_customer_id');
    expectError(await t.raw('GET', `/api/v1/customers/${segment}`, { headers }), 400, 'invalid_customer_id');
    expectError(await t.raw('GET', `/api/v1/customers/${segment}/usage`, { headers }), 400, 'invalid_customer_id');
  });

  it.each([
    ['GET', '/api/v1/nothing-here', 404, 'not_found'],
    ['DELETE', '/api/v1/events', 405, 'method_not_allowed'],
    ['GET', '/api/v1/customers/a/b/c/d', 404, 'not_found'],
  ])('%s %s is %i %s in the error envelope with a request id', async (method, path, status, code) => {
    expectError(await t.raw(method, path, { headers: admin }), status, code);
  });

  it('answers a body over 10 MB with 413 in the envelope with a request id', async () => {
    const res = await t.raw('POST', '/api/v1/events', {
      headers: { ...admin, 'content-type': 'application/json' },
      body: Buffer.alloc(10 * 1024 * 1024 + 1, 32),
    });
    expectError(res, 413, 'payload_too_large');
  });

  it('refuses a body that is not UTF-8 instead of guessing its characters', async () => {
    const event = Buffer.from(JSON.stringify(cloudEvent({ subject: 'cus_latin1', id: 'caf\u00e9' })), 'latin1');
    const res = await t.raw('POST', '/api/v1/events', { headers: { ...admin, 'content-type': 'application/cloudevents+json' }, body: event });
    expectError(res, 400, 'invalid_encoding');
  });
});

describe('JSON numbers a double cannot carry', () => {
  it('refuses a JSON number that would be rounded, and counts the same value sent as a string exactly', async () => {
    const c = 'cus_exact';
    const raw = (value: string) => `[${JSON.stringify(cloudEvent({ subject: c, data: { value: 0 } })).replace('"value":0', `"value":${value}`)}]`;
    for (const value of ['123456789.123456789012', '999999999999999.999999999999', '1234567.123456789012']) {
      const res = await t.request('POST', '/api/v1/events', { raw: raw(value), headers: { 'content-type': 'application/cloudevents-batch+json' } });
      expectError(res, 400, 'invalid_events');
      expect(res.body.error.details).toEqual([expect.objectContaining({ index: 0, field: 'data.value', code: 'inexact_number' })]);
      expect(res.body.error.details[0].message).toMatch(/send it as a string/);
    }
    for (const value of ['0.1', '1e-12', '1.50', '12345.678']) {
      expect((await t.request('POST', '/api/v1/events', { raw: raw(value), headers: { 'content-type': 'application/cloudevents-batch+json' } })).status).toBe(
        202,
      );
    }
    const strings = ['123456789.123456789012', '999999999999999.999999999999'];
    expect((await t.sendEvents(strings.map((value) => cloudEvent({ subject: c, data: { value } })))).status).toBe(202);
    await t.drain();
    // 0.1 + 0.000000000001 + 1.5 + 12345.678 + 123456789.123456789012 + 999999999999999.999999999999
    expect((await t.usage(c)).values.api_calls).toBe('1000000123469136.401456789012');
  });

  it('refuses an object with the same key twice (which value would count?)', async () => {
    const body = JSON.stringify(cloudEvent({ subject: 'cus_dupkey' })).replace('"data":{"value":1}', '"data":{"value":1,"value":1000}');
    const res = await t.request('POST', '/api/v1/events', { raw: body, headers: { 'content-type': 'application/cloudevents+json' } });
    expectError(res, 400, 'duplicate_key');
  });
});

describe('minor edges', () => {
  it('accepts an event at a leap second (23:59:60 UTC) and counts it in the month it happened', async () => {
    const c = 'cus_leap';
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    expect((await t.sendEvents([cloudEvent({ subject: c, time: `${day}T23:59:60Z`, data: { value: 3 } })])).status).toBe(202);
    await t.drain();
    expect((await t.usage(c, day.slice(0, 7))).values.api_calls).toBe('3');
  });

  it.each(['Bearer\u00a0', 'Bearer \u00a0', '\u00a0Bearer ', 'Bearer\u0085'])('answers 401 when %j separates the scheme and the key', async (prefix) => {
    expectError(await t.raw('GET', '/api/v1/customers/cus_x/usage', { headers: { authorization: `${prefix}${ADMIN}` } }), 401, 'unauthorized');
  });
});
