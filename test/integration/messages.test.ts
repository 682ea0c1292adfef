import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Period } from '../../lib/domain/period';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * The queue messages across a deploy (docs/messages.md): a message the previous code wrote, still
 * in a queue when the new code starts, is processed; one of a version the code does not know is
 * not guessed at (it goes back to SQS and, past maxReceiveCount, to the DLQ).
 */
let t: TestStack;
const errors: unknown[] = [];
beforeAll(async () => {
  t = await startTestStack({ visibilityTimeoutSeconds: 1, onPollerError: (err) => errors.push(err) });
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const send = (queueUrl: string, body: unknown) => t.stack.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body) }));

describe('the usage queue', () => {
  it('counts a version 1 batch written as the previous deploy wrote it', async () => {
    const period = Period.containing(new Date());
    const time = `${new Date(Date.now() - 60_000).toISOString().slice(0, 19)}.000000000Z`;
    await send(t.usageQueueUrl, {
      v: 1,
      batchId: 'previous-deploy-batch-1',
      receivedAt: new Date().toISOString(),
      events: [
        { source: 'old', id: 'e1', type: 'api_calls', customerId: 'cus_msg_v1', time, period: period.key, readings: { api_calls: '7', api_requests: '1' } },
        { source: 'old', id: 'e2', type: 'api_calls', customerId: 'cus_msg_v1', time, period: period.key, readings: { api_calls: '5', api_requests: '1' } },
      ],
    });
    await t.drain();
    expect((await t.usage('cus_msg_v1')).values).toMatchObject({ api_calls: '12', api_requests: '2' });
  });

  it('does not guess at a version it does not know: nothing is counted and the message ends in the DLQ', async () => {
    const period = Period.containing(new Date());
    const time = `${new Date(Date.now() - 60_000).toISOString().slice(0, 19)}.000000000Z`;
    const future = { v: 2, batchId: 'next-deploy-batch-1', receivedAt: new Date().toISOString(), events: [] as unknown[] };
    future.events.push({ source: 'new', id: 'e1', type: 'api_calls', customerId: 'cus_msg_v2', time, period: period.key, readings: { api_calls: '9' } });
    await send(t.usageQueueUrl, future);
    await t.drain(60_000);
    expect((await t.usage('cus_msg_v2')).values.api_calls ?? '0').toBe('0');
    expect((await t.receiveAll(t.dlqUrl)).map((b) => JSON.parse(b).batchId)).toEqual(['next-deploy-batch-1']);
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe('the invoice queue', () => {
  it('invoices a job without a version, as jobs were written before versions', async () => {
    const closed = Period.containing(new Date()).previous();
    const c = 'cus_msg_job_v0';
    expect((await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Old job', planId: 'default' } })).status).toBe(201);
    const time = new Date(closed.end.getTime() - 3600_000).toISOString();
    expect((await t.sendEvents([cloudEvent({ subject: c, time, data: { value: 3 } })])).status).toBe(202);
    await t.drain();
    await send(t.stack.resources.queues.InvoiceQueue!.url, { period: closed.key, customerId: c });
    await t.drain();
    const invoices = (await t.request('GET', `/api/v1/customers/${c}/invoices`)).body.invoices;
    expect(invoices).toEqual([expect.objectContaining({ period: closed.key, kind: 'period' })]);
  });
});
