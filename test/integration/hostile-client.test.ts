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
