import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { injectedThrottle } from './faults';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Defects the soak found, each reproduced on its own, deterministically, and fixed: these keep them
 * fixed (the soak injects the same faults among all the others).
 */
let t: TestStack;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  t = await startTestStack({ env: { CATALOG_FILE: '' } });
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(() => {
  dynamo.middlewareStack.remove('knownIssue');
});

it('sends an alert once when the write marking it sent is throttled after SNS accepted it', async () => {
  // The aggregator publishes the alert, then `markSent` meets a throttle (after the SDK's retries).
  // It was taken for a failed publish: the row stayed pending and the sweeper published again.
  // docs/alerts.md names a crash between publish and mark-sent as the only way to a repeat.
  const alerts = t.stack.env.ALERTS_TABLE;
  let throttled = 0;
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const input = (args as { input: { TableName?: string; UpdateExpression?: string } }).input;
      if (throttled === 0 && context.commandName === 'UpdateItemCommand' && input.TableName === alerts && /:sent\b/.test(input.UpdateExpression ?? '')) {
        throttled++;
        throw injectedThrottle();
      }
      return next(args);
    },
    { step: 'initialize', name: 'knownIssue' },
  );
  const c = 'cus_known_mark_sent';
  expect((await t.sendEvents([cloudEvent({ subject: c, data: { value: 8500 } })])).status).toBe(202); // 85% of the 10,000 included
  await t.drain();
  expect(throttled).toBe(1);
  // The sweeper's next run (its 30 s grace set to 0 here).
  const { sweepPendingAlerts } = require('../../lib/app/alerts') as typeof import('../../lib/app/alerts');
  const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
  await sweepPendingAlerts(container(), 0);
  const messages = (await t.receiveAll(t.stack.alertsInbox.url)).map((b) => JSON.parse(b) as { MessageAttributes: Record<string, { Value: string }> });
  const mine = messages.filter((m) => m.MessageAttributes.customerId?.Value === c);
  expect(mine.map((m) => `${m.MessageAttributes.kind!.Value}#${m.MessageAttributes.meter!.Value}#${m.MessageAttributes.threshold!.Value}`)).toEqual([
    'included#api_calls#80',
  ]);
});

it('reports a failed message as failed when another invocation of the aggregator runs at the same time (local stack)', async () => {
  // The local pollers run concurrent invocations of one handler module in one process (Lambda
  // never does). With one Powertools BatchProcessor per module its per-batch state was shared:
  // invocation B's prepare() cleared the failure A recorded, A answered "no failures", and the
  // poller deleted A's failed message. In the soak this lost the MAX/LATEST/UNIQUE_COUNT part of
  // messages that failed after their additive part. lib/platform/lambda.ts now makes one per invocation.
  const handler = (require('../../local/runtime/deployment') as typeof import('../../local/runtime/deployment')).loadHandler<
    (e: unknown, c: unknown) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>
  >('functions/aggregate/handler.handler');
  await Promise.all(t.stack.pollers.map((p) => p.stop()));
  try {
    const send = async (subject: string) => expect((await t.sendEvents([cloudEvent({ subject, data: { value: 1 } })])).status).toBe(202);
    await send('cus_known_a1');
    await send('cus_known_a2');
    await send('cus_known_b1');
    const bodies = await t.receiveAll(t.usageQueueUrl);
    const bodyOf = (c: string) => bodies.find((b) => b.includes(c))!;
    const batchOf = (c: string) => (JSON.parse(bodyOf(c)) as { batchId: string }).batchId;
    const [failing, slow] = [batchOf('cus_known_a1'), batchOf('cus_known_a2')];
    dynamo.middlewareStack.add(
      (next) => async (args) => {
        // The batch a claim request is for: claims are INSERTs whose second parameter is the batch id.
        const claimedBy = (args as { input: { Statements?: { Parameters?: { S?: string }[] }[] } }).input.Statements?.[0]?.Parameters?.[1]?.S;
        if (claimedBy === failing) throw Object.assign(new Error('down'), { name: 'InjectedOutage' });
        if (claimedBy === slow) await new Promise((r) => setTimeout(r, 400));
        return next(args);
      },
      { step: 'initialize', name: 'knownIssue' },
    );
    const record = (id: string, body: string) => ({ messageId: id, receiptHandle: id, body, attributes: { ApproximateReceiveCount: '1' } });
    const context = { awsRequestId: 'local', functionName: 'local', getRemainingTimeInMillis: () => 30_000 };
    const a = handler({ Records: [record('a1', bodyOf('cus_known_a1')), record('a2', bodyOf('cus_known_a2'))] }, context);
    await new Promise((r) => setTimeout(r, 100)); // a1 has failed, a2 is still claiming
    const b = handler({ Records: [record('b1', bodyOf('cus_known_b1'))] }, context);
    expect(await b).toEqual({ batchItemFailures: [] });
    expect(await a).toEqual({ batchItemFailures: [{ itemIdentifier: 'a1' }] });
  } finally {
    t.stack.pollers.forEach((p) => p.start());
  }
});
