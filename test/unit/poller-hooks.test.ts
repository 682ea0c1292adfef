import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { SqsPoller } from '../../local/runtime/poller';

/**
 * The local poller's fault hooks (used by the soak): `around` wraps an invocation and a rejection
 * fails the whole batch as a dying Lambda does; `deliverTwice` puts a copy of a message back on the
 * queue, as SQS's at-least-once delivery may. Unset, the poller behaves as before.
 */
const sqs = mockClient(SQSClient);
const QUEUE = 'http://sqs.local/000000000000/usage';

const messages = [
  { MessageId: 'm1', ReceiptHandle: 'r1', Body: '{"n":1}' },
  { MessageId: 'm2', ReceiptHandle: 'r2', Body: '{"n":2}' },
];

beforeEach(() => {
  sqs.reset();
  let received = false;
  // One batch, then empty long polls (short ones, so that stop() is quick).
  sqs.on(ReceiveMessageCommand).callsFake(async () => {
    if (!received) return ((received = true), { Messages: messages });
    await new Promise((r) => setTimeout(r, 20));
    return { Messages: [] };
  });
  sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'copy' });
});

/** Runs a poller until its one batch was handled, then stops it. */
async function runOnce(poller: SqsPoller, handled: Promise<void>) {
  poller.start();
  await handled;
  await poller.stop();
}

function poller(handler: (records: SQSRecord[]) => Promise<void>, onError?: (err: unknown) => void) {
  let done!: () => void;
  const handled = new Promise<void>((resolve) => (done = resolve));
  const p = new SqsPoller({
    sqs: new SQSClient({ region: 'us-east-1' }),
    queueUrl: QUEUE,
    queueArn: 'arn:aws:sqs:us-east-1:000000000000:usage',
    batchSize: 10,
    reportBatchItemFailures: true,
    concurrency: 1,
    onError,
    handler: async (event) => {
      try {
        await handler(event.Records);
      } finally {
        setImmediate(done);
      }
    },
  });
  return { p, handled };
}

const deleted = () => sqs.commandCalls(DeleteMessageBatchCommand).flatMap((c) => c.args[0].input.Entries!.map((e) => e.ReceiptHandle));

it('runs the invocation inside `around` and deletes what succeeded', async () => {
  const seen: string[] = [];
  const { p, handled } = poller(async () => void seen.push('handler'));
  p.hooks.around = async (records, invoke) => {
    seen.push(`before ${records.length}`);
    const out = await invoke();
    seen.push('after');
    return out;
  };
  await runOnce(p, handled);
  await new Promise((r) => setImmediate(r));
  expect(seen).toEqual(['before 2', 'handler', 'after']);
  expect(deleted()).toEqual(['r1', 'r2']);
});

it('deletes nothing when `around` rejects after the handler succeeded (the Lambda died)', async () => {
  const errors: unknown[] = [];
  const { p, handled } = poller(
    async () => undefined,
    (e) => errors.push(e),
  );
  p.hooks.around = async (_records, invoke) => {
    await invoke();
    throw new Error('died');
  };
  await runOnce(p, handled);
  expect(deleted()).toEqual([]);
  expect(errors).toEqual([new Error('died')]);
});

it('puts a copy of the chosen messages back on the queue before invoking, and counts it', async () => {
  const order: string[] = [];
  sqs.on(SendMessageCommand).callsFake(async (input: { MessageBody: string }) => {
    order.push(`copy ${input.MessageBody}`);
    return { MessageId: 'copy' };
  });
  const { p, handled } = poller(async () => void order.push('handler'));
  p.hooks.deliverTwice = (record) => record.messageId === 'm2';
  await runOnce(p, handled);
  const copies = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
  expect(copies).toEqual([{ QueueUrl: QUEUE, MessageBody: '{"n":2}' }]);
  expect(order).toEqual(['copy {"n":2}', 'handler']);
  expect(p.deliveredTwice).toBe(1);
  expect(p.queueUrl).toBe(QUEUE);
});

it('sends no copies and wraps nothing when no hook is set', async () => {
  const { p, handled } = poller(async () => undefined);
  await runOnce(p, handled);
  await new Promise((r) => setImmediate(r));
  expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  expect(deleted()).toEqual(['r1', 'r2']);
  expect(p.deliveredTwice).toBe(0);
});
