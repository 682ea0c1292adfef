import type { SQSEvent } from 'aws-lambda';
import { CloudEvent, HTTP } from 'cloudevents';
import { loadHandler } from '../../local/runtime/deployment';
import { ADMIN, cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * End to end on the real emulators: HTTP ingest -> SQS (fauxqs) -> aggregator via the local event
 * source mapping -> DynamoDB Local -> usage read. Every test uses its own customer ids.
 */
let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const period = () => new Date().toISOString().slice(0, 7);
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

describe('aggregations', () => {
  it('counts SUM (exact decimals), COUNT, MAX, LATEST and UNIQUE_COUNT exactly', async () => {
    const c = 'cus_agg';
    const events = [
      cloudEvent({ subject: c, type: 'api_calls', data: { value: 0.1 } }),
      cloudEvent({ subject: c, type: 'api_calls', data: { value: 0.2 } }),
      cloudEvent({ subject: c, type: 'api_calls', data: { value: '1234567.000000000001' } }),
      cloudEvent({ subject: c, type: 'storage_gb', data: { value: 12.5 } }),
      cloudEvent({ subject: c, type: 'storage_gb', data: { value: 99.75 } }),
      cloudEvent({ subject: c, type: 'storage_gb', data: { value: 40 } }),
      // LATEST goes by event time, not arrival: the 2-minute-old reading wins over the 3-minute-old one.
      cloudEvent({ subject: c, type: 'queue_depth', time: ago(120_000), data: { depth: 7 } }),
      cloudEvent({ subject: c, type: 'queue_depth', time: ago(180_000), data: { depth: 70 } }),
      cloudEvent({ subject: c, type: 'user_activity', data: { userId: 'alice' } }),
      cloudEvent({ subject: c, type: 'user_activity', data: { userId: 'bob' } }),
      cloudEvent({ subject: c, type: 'user_activity', data: { userId: 'alice' } }),
    ];
    expect((await t.sendEvents(events)).body).toEqual({ accepted: 11 });
    // A later request with an older LATEST reading and a smaller MAX must not move either.
    expect(
      (
        await t.sendEvents([
          cloudEvent({ subject: c, type: 'queue_depth', time: ago(240_000), data: { depth: 1 } }),
          cloudEvent({ subject: c, type: 'storage_gb', data: { value: 3 } }),
        ])
      ).status,
    ).toBe(202);
    await t.drain();

    const u = await t.usage(c);
    expect(u.values).toMatchObject({
      api_calls: '1234567.300000000001',
      api_requests: '3',
      storage_gb: '99.75',
      queue_depth: '7',
      active_users: '2',
      seats: '0',
    });
    expect(u.duplicatesDropped).toBe(0);
    expect(u.body.period).toBe(period());
  });

  it('breaks LATEST ties at the same time by (source, id)', async () => {
    const c = 'cus_latest_tie';
    const time = ago(60_000);
    await t.sendEvents([
      cloudEvent({ subject: c, type: 'queue_depth', time, source: 'b', id: '1', data: { depth: 2 } }),
      cloudEvent({ subject: c, type: 'queue_depth', time, source: 'a', id: '9', data: { depth: 1 } }),
    ]);
    await t.sendEvents([cloudEvent({ subject: c, type: 'queue_depth', time, source: 'b', id: '0', data: { depth: 3 } })]);
    await t.drain();
    expect((await t.usage(c)).values.queue_depth).toBe('2');
  });

  it('assigns events to the UTC month of their time, not of their arrival', async () => {
    const c = 'cus_boundary';
    const now = new Date();
    const thisMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const lastMoment = new Date(thisMonth.getTime() - 1).toISOString();
    const previous = lastMoment.slice(0, 7);
    await t.sendEvents([
      cloudEvent({ subject: c, time: lastMoment, data: { value: 5 } }),
      cloudEvent({ subject: c, time: thisMonth.toISOString(), data: { value: 7 } }),
      // 00:30+01:00 on the 1st is still the previous month in UTC.
      cloudEvent({ subject: c, time: `${thisMonth.toISOString().slice(0, 10)}T00:30:00+01:00`, data: { value: 11 } }),
    ]);
    await t.drain();
    expect((await t.usage(c, previous)).values.api_calls).toBe('16');
    expect((await t.usage(c, period())).values.api_calls).toBe('7');
  });
});

describe('exactly once', () => {
  it('counts the same request sent twice once and reports the duplicates', async () => {
    const c = 'cus_twice';
    const events = Array.from({ length: 50 }, () => cloudEvent({ subject: c, data: { value: 2 } }));
    expect((await t.sendEvents(events)).status).toBe(202);
    expect((await t.sendEvents(events)).status).toBe(202);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('100');
    expect(u.values.api_requests).toBe('50');
    expect(u.duplicatesDropped).toBe(50);
  });

  it('replays an Idempotency-Key request without re-queuing and rejects a different body with 409', async () => {
    const c = 'cus_idem';
    const events = Array.from({ length: 5 }, () => cloudEvent({ subject: c, data: { value: 3 } }));
    const first = await t.sendEvents(events, { idempotencyKey: 'req-1' });
    const second = await t.sendEvents(events, { idempotencyKey: 'req-1' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const conflict = await t.sendEvents([cloudEvent({ subject: c })], { idempotencyKey: 'req-1' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('idempotency_key_reused');
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('15');
    expect(u.duplicatesDropped).toBe(0); // the replay was never queued
  });

  it('drops events re-sent inside a different batch, counting the new ones', async () => {
    const c = 'cus_resent';
    const old = Array.from({ length: 10 }, () => cloudEvent({ subject: c, data: { value: 1 } }));
    await t.sendEvents(old);
    await t.drain();
    const fresh = Array.from({ length: 5 }, () => cloudEvent({ subject: c, data: { value: 100 } }));
    await t.sendEvents([...fresh, ...old.slice(0, 4)]);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('510');
    expect(u.duplicatesDropped).toBe(4);
  });

  it('counts the same event twice inside one request once', async () => {
    const c = 'cus_inrequest';
    const e = cloudEvent({ subject: c, data: { value: 42 } });
    await t.sendEvents([e, cloudEvent({ subject: c, data: { value: 1 } }), e, e]);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('43');
    expect(u.duplicatesDropped).toBe(2);
  });

  it('counts an SQS message delivered twice once (same batch id), also for MAX, LATEST and UNIQUE_COUNT', async () => {
    const c = 'cus_redelivered';
    const body = JSON.stringify({
      v: 1,
      batchId: 'redelivered-batch-1',
      receivedAt: new Date().toISOString(),
      events: [
        {
          source: 's',
          id: '1',
          type: 'api_calls',
          customerId: c,
          time: `${ago(1000).slice(0, 19)}.000000000Z`,
          period: period(),
          readings: { api_calls: '5', api_requests: '1' },
        },
        {
          source: 's',
          id: '2',
          type: 'user_activity',
          customerId: c,
          time: `${ago(1000).slice(0, 19)}.000000000Z`,
          period: period(),
          readings: { active_users: 'u1' },
        },
        {
          source: 's',
          id: '3',
          type: 'storage_gb',
          customerId: c,
          time: `${ago(1000).slice(0, 19)}.000000000Z`,
          period: period(),
          readings: { storage_gb: '9' },
        },
      ],
    });
    await t.sendRawMessage(body);
    await t.sendRawMessage(body);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values).toMatchObject({ api_calls: '5', api_requests: '1', active_users: '1', storage_gb: '9' });
    expect(u.duplicatesDropped).toBe(0);
  });

  it('counts one message once when two aggregator invocations process it at the same moment', async () => {
    const c = 'cus_parallel';
    const handler = loadHandler<(e: SQSEvent) => Promise<{ batchItemFailures: unknown[] }>>('functions/aggregate/handler.handler');
    const events = Array.from({ length: 40 }, (_, i) => ({
      source: 'p',
      id: String(i),
      type: 'user_activity',
      customerId: c,
      time: `${ago(1000).slice(0, 19)}.000000000Z`,
      period: period(),
      readings: { active_users: `user-${i % 10}` },
    }));
    const record = (messageId: string) => ({
      messageId,
      receiptHandle: messageId,
      body: JSON.stringify({ v: 1, batchId: 'parallel-1', receivedAt: new Date().toISOString(), events }),
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn',
      awsRegion: 'us-east-1',
    });
    const results = await Promise.all([handler({ Records: [record('a')] }), handler({ Records: [record('b')] }), handler({ Records: [record('c')] })]);
    expect(results.map((r) => r.batchItemFailures)).toEqual([[], [], []]);
    expect((await t.usage(c)).values.active_users).toBe('10');
  });
});

describe('CloudEvents HTTP content modes, with the official cloudevents SDK as the client', () => {
  const post = (message: { headers: Record<string, unknown>; body: unknown }, extra: Record<string, string> = {}) =>
    t.raw('POST', '/api/v1/events', {
      headers: { ...(message.headers as Record<string, string>), authorization: `Bearer ${ADMIN}`, ...extra },
      body: message.body === undefined ? undefined : String(message.body),
    });
  const sdkEvent = (c: string, over: Record<string, unknown> = {}) =>
    new CloudEvent({
      id: `sdk-${c}-${Math.random().toString(36).slice(2)}`,
      source: 'sdk-client',
      type: 'api_calls',
      subject: c,
      time: ago(30_000),
      datacontenttype: 'application/json',
      data: { value: 2.5 },
      ...over,
    });

  it('counts an event sent in binary mode (ce-* headers, data as the body) and one in structured mode', async () => {
    const c = 'cus_sdk_modes';
    const binary = HTTP.binary(sdkEvent(c));
    expect(binary.headers).toMatchObject({ 'ce-id': expect.any(String), 'ce-specversion': '1.0', 'content-type': 'application/json' });
    expect((await post(binary)).status).toBe(202);
    expect((await post(HTTP.structured(sdkEvent(c, { data: { value: 4 } })))).status).toBe(202);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('6.5');
    expect(u.values.api_requests).toBe('2');
  });

  it('de-duplicates the same event across modes and replays a binary request by Idempotency-Key', async () => {
    const c = 'cus_sdk_dedupe';
    const event = sdkEvent(c, { id: 'caf\u00e9-1' });
    const binary = HTTP.binary(event);
    // Header values are percent-encoded UTF-8 (CloudEvents HTTP binding 3.1.3.2).
    binary.headers['ce-id'] = 'caf%C3%A9-1';
    expect((await post(binary, { 'idempotency-key': 'bin-1' })).status).toBe(202);
    const replay = await post(binary, { 'idempotency-key': 'bin-1' });
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const otherEvent = HTTP.binary(sdkEvent(c));
    const conflict = await post(otherEvent, { 'idempotency-key': 'bin-1' });
    expect(conflict.status).toBe(409);
    expect((await post(HTTP.structured(event))).status).toBe(202);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('2.5');
    expect(u.duplicatesDropped).toBe(1);
  });

  it('validates binary events like structured ones, naming the headers', async () => {
    const binary = HTTP.binary(sdkEvent('cus_sdk_bad', { type: 'api_callz', subject: 'bad subject', data: { value: -1 } }));
    binary.headers['ce-time'] = 'yesterday';
    delete binary.headers['ce-source'];
    const res = await post(binary);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_events');
    const got = (res.body.error.details as { field: string; code: string; message: string }[]).map((d) => `${d.field}:${d.code}`);
    expect(got).toEqual(expect.arrayContaining(['ce-source:missing_field', 'ce-subject:invalid_field', 'ce-time:invalid_time', 'ce-type:unknown_type']));
    expect(res.body.error.details.find((d: { field: string }) => d.field === 'ce-subject').message).toMatch(/^ce-subject/);

    const value = HTTP.binary(sdkEvent('cus_sdk_bad', { data: { value: -1 } }));
    expect((await post(value)).body.error.details).toEqual([expect.objectContaining({ field: 'data.value', code: 'negative_value' })]);

    const badEncoding = HTTP.binary(sdkEvent('cus_sdk_bad'));
    badEncoding.headers['ce-id'] = '100%';
    const encoded = await post(badEncoding);
    expect(encoded.status).toBe(400);
    expect(encoded.body.error.details).toEqual([expect.objectContaining({ field: 'ce-id', code: 'invalid_header_encoding' })]);

    const textBody = HTTP.binary(sdkEvent('cus_sdk_bad'));
    expect((await post(textBody, { 'content-type': 'text/plain' })).status).toBe(415);
    expect(await t.queueDepth(t.usageQueueUrl)).toBe(0);
  });
});
