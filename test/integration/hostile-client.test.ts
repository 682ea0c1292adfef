import { createHash } from 'node:crypto';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * What a hostile (or just unusual) client found, on the real emulators: every request is either
 * refused with a clear 4xx or accepted and then counted, never a 202 that the queue, the store or
 * pricing refuses later, and never a 5xx.
 */
let t: TestStack;
beforeAll(async () => {
  t = await startTestStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(async () => {
  expect(await t.receiveAll(t.dlqUrl)).toEqual([]);
});

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
    const res = await t.sendEvents(events);
    expect(res.status).toBe(202);
    await t.drain();
    expect((await t.usage(c)).values.api_calls).toBe(String(ids.length));
    expect((await t.sendEvents(events)).status).toBe(202);
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe(String(ids.length));
    expect(u.duplicatesDropped).toBe(ids.length);
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
