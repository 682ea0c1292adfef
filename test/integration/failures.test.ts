import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { crashOn } from '../support/faults';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Failures on the real emulators: the aggregator crashing at each step of a batch, then SQS
 * redelivering it (visibility timeout 2 s here), and a poison message going to the DLQ.
 */
let t: TestStack;
let dynamo: DynamoDBClient;
let errors: unknown[] = [];

beforeAll(async () => {
  // Redelivery after 4 s: long enough that a slow 100-item transaction on DynamoDB Local is not
  // received twice while it runs, short enough for the tests.
  t = await startTestStack({ visibilityTimeoutSeconds: 4, onPollerError: (err) => errors.push(err) });
  // The handlers' own client (same module registry as the handlers the stack loaded).
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(async () => {
  dynamo.middlewareStack.remove('fault');
  errors = [];
  expect(await t.receiveAll(t.dlqUrl)).toEqual([]);
});

describe('the aggregator failing half way through a batch', () => {
  it('loses nothing and counts nothing twice when it dies after claiming part of the events', async () => {
    const c = 'cus_crash_claims';
    // 60 events: claims go 25 to a request, so the second of three requests fails while the others land.
    const state = crashOn(dynamo, 'BatchExecuteStatementCommand', 2);
    await t.sendEvents(Array.from({ length: 60 }, () => cloudEvent({ subject: c, data: { value: 5 } })));
    await t.drain();
    expect(state.crashed).toBe(true);
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('300');
    expect(u.values.api_requests).toBe('60');
    expect(u.duplicatesDropped).toBe(0);
  });

  it('counts once when it dies at the counter transaction and the batch is redelivered', async () => {
    const c = 'cus_crash_tx';
    const state = crashOn(dynamo, 'TransactWriteItemsCommand', 1);
    await t.sendEvents(Array.from({ length: 20 }, () => cloudEvent({ subject: c, data: { value: 5 } })));
    await t.drain();
    expect(state.crashed).toBe(true);
    expect((await t.usage(c)).values.api_calls).toBe('100');
  });

  it('counts once when it dies between two transactions of one message (more than 99 counters)', async () => {
    // 60 customers x 2 meters = 120 counters: two transactions; the second one crashes.
    const customers = Array.from({ length: 60 }, (_, i) => `cus_many_${i}`);
    const state = crashOn(dynamo, 'TransactWriteItemsCommand', 2);
    await t.sendEvents(customers.map((c) => cloudEvent({ subject: c, data: { value: 3 } })));
    await t.drain();
    expect(state.crashed).toBe(true);
    for (const c of [customers[0]!, customers[30]!, customers[59]!]) {
      const u = await t.usage(c);
      expect(u.values.api_calls).toBe('3');
      expect(u.values.api_requests).toBe('1');
    }
  });

  it('counts once when it dies after the counters but before SQS deleted the message', async () => {
    const c = 'cus_crash_delete';
    // Fail the MAX update that comes after the additive transaction: the whole message is retried.
    const state = crashOn(dynamo, 'UpdateItemCommand', 1);
    await t.sendEvents([cloudEvent({ subject: c, data: { value: 8 } }), cloudEvent({ subject: c, type: 'storage_gb', data: { value: 4 } })]);
    await t.drain();
    expect(state.crashed).toBe(true);
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('8');
    expect(u.values.storage_gb).toBe('4');
  });
});

describe('poison messages', () => {
  it('sends a poison record to the DLQ after maxReceiveCount while the rest of its batch counts', async () => {
    const c = 'cus_poison';
    // Pollers paused so that the poison and the good message are received in one batch.
    await Promise.all(t.stack.pollers.map((p) => p.stop()));
    await t.sendRawMessage('{"this is": "not a usage batch"}');
    await t.sendEvents(Array.from({ length: 3 }, () => cloudEvent({ subject: c, data: { value: 7 } })));
    t.stack.pollers.forEach((p) => p.start());
    await t.drain(30_000);
    expect((await t.usage(c)).values.api_calls).toBe('21');
    expect(await t.receiveAll(t.dlqUrl)).toEqual(['{"this is": "not a usage batch"}']);
  });

  it('counts a DLQ message redriven to the queue exactly once', async () => {
    const c = 'cus_redrive';
    // A batch that fails three times (a broken dependency), ends in the DLQ, and is redriven later.
    let failing = true;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (failing && context.commandName === 'TransactWriteItemsCommand') throw Object.assign(new Error('down'), { name: 'InjectedOutage' });
        return next(args);
      },
      { step: 'initialize', name: 'fault' },
    );
    await t.sendEvents([cloudEvent({ subject: c, data: { value: 9 } })]);
    await t.drain(30_000);
    const dead = await t.receiveAll(t.dlqUrl);
    expect(dead).toHaveLength(1);
    failing = false;
    await t.sendRawMessage(dead[0]!);
    await t.sendRawMessage(dead[0]!); // redriven twice by mistake
    await t.drain();
    const u = await t.usage(c);
    expect(u.values.api_calls).toBe('9');
    expect(u.duplicatesDropped).toBe(0);
  });
});
