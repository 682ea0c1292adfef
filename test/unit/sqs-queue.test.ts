import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { SqsJsonQueue } from '../../lib/adapters/sqs/json-queue';

/**
 * SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in a message
 * body (and emulators refuse more), while a JSON string may hold any code unit. Bodies are written
 * in printable ASCII, with \u escapes for everything else, so every valid value travels unchanged.
 */
const sqs = mockClient(SQSClient);
const queue = new SqsJsonQueue<unknown>(new SQSClient({ region: 'us-east-1' }), 'https://sqs.local/q');

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

const sentBodies = () => sqs.commandCalls(SendMessageBatchCommand).flatMap((c) => c.args[0].input.Entries!.map((e) => e.MessageBody!));

it('writes bodies in printable ASCII only, escaping U+FFFF, U+FFFE, controls, emoji and lone surrogates', async () => {
  const value = { id: 'a\uffff\ufffe\u0000\u0001\u007f\u00e9\u{1F600}\ud800\udfff-', n: 1.5 };
  await queue.enqueue([value]);
  const [body] = sentBodies();
  expect(body).toMatch(/^[\x20-\x7e]*$/);
  expect(JSON.parse(body!)).toEqual(value);
});

it('carries any JSON value through unchanged (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.jsonValue({ depthSize: 'small' }),
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength: 50 }),
      async (value, text) => {
        sqs.resetHistory();
        await queue.enqueue([{ value, text }]);
        const [body] = sentBodies();
        expect(body).toMatch(/^[\x20-\x7e]*$/);
        expect(JSON.parse(body!)).toEqual(JSON.parse(JSON.stringify({ value, text })));
      },
    ),
    { seed: 20261126, numRuns: 300 },
  );
});
