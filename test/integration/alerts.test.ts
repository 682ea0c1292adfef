import { GetSubscriptionAttributesCommand, ListSubscriptionsByTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { customerFilterPolicy } from '../../lib/adapters/sns/subscriptions';
import { Period } from '../../lib/domain/period';
import { loadHandler } from '../../local/runtime/deployment';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Alerts end to end on the emulators: aggregator -> claim -> SNS (fauxqs) -> queues subscribed to
 * the topic. Uses the real catalog: default plan thresholds 80/90/100 of included, 50/80/100 of budget.
 */
let t: TestStack;
let sns: SNSClient;
interface Envelope {
  Subject: string;
  Message: string;
  MessageAttributes: Record<string, { Value: string }>;
}
const inbox: Envelope[] = [];

beforeAll(async () => {
  t = await startTestStack({ env: { CATALOG_FILE: '' } });
  sns = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).snsClient();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(() => {
  sns.middlewareStack.remove('fault');
});

const topicArn = () => t.stack.env.ALERTS_TOPIC_ARN!;
async function alertsFor(customerId: string, queueUrl = t.stack.alertsInbox.url, into = inbox) {
  for (const body of await t.receiveAll(queueUrl)) into.push(JSON.parse(body) as Envelope);
  return into.filter((e) => e.MessageAttributes.customerId?.Value === customerId);
}
const keys = (envelopes: Envelope[]) =>
  envelopes.map((e) => `${e.MessageAttributes.kind!.Value}#${e.MessageAttributes.meter!.Value}#${e.MessageAttributes.threshold!.Value}`).sort();
const now = () => new Date(Date.now() - 30_000).toISOString();
async function send(customerId: string, type: string, value: number, time = now()) {
  expect((await t.sendEvents([cloudEvent({ subject: customerId, type, time, data: { value } })])).status).toBe(202);
  await t.drain();
}

it('sends each included-usage threshold once, as it is crossed', async () => {
  const c = 'cus_al_included';
  await send(c, 'api_calls', 8500);
  expect(keys(await alertsFor(c))).toEqual(['included#api_calls#80']);
  await send(c, 'api_calls', 1000);
  expect(keys(await alertsFor(c))).toEqual(['included#api_calls#80', 'included#api_calls#90']);
  await send(c, 'api_calls', 600);
  await send(c, 'api_calls', 5000);
  const sent = await alertsFor(c);
  expect(keys(sent)).toEqual(['included#api_calls#100', 'included#api_calls#80', 'included#api_calls#90']);
  const last = sent.find((e) => e.MessageAttributes.threshold!.Value === '100')!;
  expect(last.Subject).toMatch(/API Calls/);
  expect(JSON.parse(last.Message)).toMatchObject({ customerId: c, kind: 'included', meter: 'api_calls', threshold: 100, limit: '10000' });
  const listed = (await t.request('GET', `/api/v1/customers/${c}/alerts`)).body;
  expect(listed.alerts.map((a: any) => [a.kind, a.threshold, a.status])).toEqual([
    ['included', 80, 'sent'],
    ['included', 90, 'sent'],
    ['included', 100, 'sent'],
  ]);
});

it('sends budget alerts at 50/80/100% of the estimated cost and a forecast alert above budget', async () => {
  const c = 'cus_al_budget';
  // Storage is a peak (MAX) meter: its projection is its value, so the figures do not depend on the date.
  await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Budgeted', budget: { amount: '50.00' } } });
  await send(c, 'storage_gb', 150); // 31.25 of 50.00 = 62.5%; 150 GB passes 80, 90 and 100% of the 5 GB included at once
  expect(keys(await alertsFor(c))).toEqual(['budget#-#50', 'included#storage_gb#100']);
  await send(c, 'storage_gb', 250); // 46.25 = 92.5%
  expect(keys(await alertsFor(c))).toContain('budget#-#80');
  await send(c, 'storage_gb', 300); // 53.75 = 107.5%, and the period will end above budget
  await send(c, 'storage_gb', 400);
  expect(keys(await alertsFor(c))).toEqual(['budget#-#100', 'budget#-#50', 'budget#-#80', 'forecast#-#100', 'included#storage_gb#100']);
  const [budgetMail] = (await alertsFor(c)).filter((e) => e.MessageAttributes.kind!.Value === 'budget');
  // What to do next: the budget, where the period is heading, where to look.
  expect(JSON.parse(budgetMail!.Message).message).toMatch(
    /Projected cost for \d{4}-\d{2}: \$[\d.,]+, against a monthly budget of \$50\.00\. See the usage page: http:\/\/127\.0\.0\.1:\d+\/portal\?token=[\w-]+\.[\w-]{43}$/,
  );
  // The link opens the customer's usage page.
  const link = /See the usage page: (\S+)$/.exec(JSON.parse(budgetMail!.Message).message)![1]!;
  const page = await fetch(link);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('cus_al_budget');
});

it('sends one alert when many aggregator invocations cross the same threshold at the same moment', async () => {
  const c = 'cus_al_parallel';
  const handler = loadHandler<(e: SQSEvent) => Promise<{ batchItemFailures: unknown[] }>>('functions/aggregate/handler.handler');
  const period = Period.containing(new Date()).key;
  const time = `${now().slice(0, 19)}.000000000Z`;
  const invocation = (i: number) => ({
    Records: [
      {
        messageId: `m${i}`,
        receiptHandle: `r${i}`,
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn',
        awsRegion: 'us-east-1',
        messageAttributes: {},
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'x', ApproximateFirstReceiveTimestamp: '0' },
        body: JSON.stringify({
          v: 1,
          batchId: `par-${i}`,
          receivedAt: new Date().toISOString(),
          events: [{ source: 'p', id: String(i), type: 'api_calls', customerId: c, time, period, readings: { api_calls: '3000' } }],
        }),
      },
    ],
  });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => handler(invocation(i))));
  expect(results.every((r) => r.batchItemFailures.length === 0)).toBe(true);
  expect((await t.usage(c)).values.api_calls).toBe('18000');
  // Which invocation saw which level depends on timing; each threshold is claimed once, at most one
  // message is sent per threshold, and 100% (the level they all end at) always is.
  const sent = keys(await alertsFor(c));
  expect(new Set(sent).size).toBe(sent.length);
  expect(sent).toContain('included#api_calls#100');
  const listed = (await t.request('GET', `/api/v1/customers/${c}/alerts`)).body.alerts;
  expect(listed.map((a: any) => a.threshold)).toEqual([80, 90, 100]);
  expect(listed.filter((a: any) => a.status === 'sent').map((a: any) => `included#api_calls#${a.threshold}`)).toEqual(
    [...sent].sort((x, y) => Number(x.split('#')[2]) - Number(y.split('#')[2])),
  );
  expect(listed.every((a: any) => a.status === 'sent' || a.status === 'superseded')).toBe(true);
});

it('sends an alert later when publishing fails', async () => {
  const c = 'cus_al_retry';
  sns.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'PublishCommand') throw Object.assign(new Error('SNS is down'), { name: 'InjectedOutage' });
      return next(args);
    },
    { step: 'initialize', name: 'fault' },
  );
  await send(c, 'seats', 3); // 100% of 3 included seats: 80, 90 and 100 at once, one message
  expect(await alertsFor(c)).toEqual([]);
  const pending = (await t.request('GET', `/api/v1/customers/${c}/alerts`)).body.alerts;
  expect(pending.map((a: any) => [a.threshold, a.status])).toEqual([
    [80, 'superseded'],
    [90, 'superseded'],
    [100, 'pending'],
  ]);

  sns.middlewareStack.remove('fault');
  await send(c, 'seats', 2); // more usage does not re-claim or re-send
  expect(await alertsFor(c)).toEqual([]);
  const { sweepPendingAlerts } = require('../../lib/app/alerts') as typeof import('../../lib/app/alerts');
  const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
  expect(await sweepPendingAlerts(container(), 0)).toEqual({ retried: 1, sent: 1 });
  const [late] = await alertsFor(c);
  expect(keys([late!])).toEqual(['included#seats#100']);
  expect(JSON.parse(late!.Message)).toMatchObject({ threshold: 100, alsoPassed: [80, 90] });
  expect(await sweepPendingAlerts(container(), 0)).toEqual({ retried: 0, sent: 0 });
  expect((await t.request('GET', `/api/v1/customers/${c}/alerts`)).body.alerts.map((a: any) => a.status)).toEqual(['superseded', 'superseded', 'sent']);
});

it('starts every period fresh, and sends nothing for late usage of a closed period', async () => {
  const c = 'cus_al_periods';
  const current = Period.containing(new Date());
  const previous = current.previous();
  await send(c, 'seats', 4, new Date(previous.end.getTime() - 3600_000).toISOString()); // counted in the closed period
  expect((await t.usage(c, previous.key)).values.seats).toBe('4');
  await send(c, 'seats', 4);
  const sent = await alertsFor(c);
  expect(sent.map((e) => (JSON.parse(e.Message) as { period: string }).period)).toEqual([current.key]);
  expect((await t.request('GET', `/api/v1/customers/${c}/alerts?period=${previous.key}`)).body.alerts).toEqual([]);
  expect((await t.request('GET', `/api/v1/customers/${c}/alerts?period=${current.key}`)).body.alerts).toHaveLength(3);
});

it('sends nothing for a customer under every threshold', async () => {
  const c = 'cus_al_quiet';
  await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Quiet', budget: { amount: '1000.00' } } });
  await send(c, 'api_calls', 7999);
  await send(c, 'storage_gb', 3);
  await send(c, 'seats', 2);
  expect(await alertsFor(c)).toEqual([]);
  expect((await t.request('GET', `/api/v1/customers/${c}/alerts`)).body.alerts).toEqual([]);
});

describe('subscriptions', () => {
  const subscriptions = async () => (await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn() }))).Subscriptions ?? [];

  it('subscribes, moves and unsubscribes the customer alertEmail, filtered to the customer', async () => {
    const c = 'cus_al_mail';
    const put = (alertEmail: string | null) => t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Mail', alertEmail } });
    const first = (await put('a@mail.test')).body;
    expect(first.alertSubscriptionArn).toMatch(/^arn:aws:sns:/);
    const sub = (await subscriptions()).find((s) => s.Endpoint === 'a@mail.test')!;
    expect(sub.Protocol).toBe('email');
    const attrs = (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: sub.SubscriptionArn! }))).Attributes!;
    expect(JSON.parse(attrs.FilterPolicy!)).toEqual({ customerId: [c] });

    const moved = (await put('b@mail.test')).body;
    const endpoints = (await subscriptions()).map((s) => s.Endpoint);
    expect(endpoints).toContain('b@mail.test');
    expect(endpoints).not.toContain('a@mail.test');
    expect(moved.alertSubscriptionArn).not.toBe(first.alertSubscriptionArn);

    // Left out, the address stays; null removes it and unsubscribes.
    expect((await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Mail' } })).body.alertSubscriptionArn).toBe(moved.alertSubscriptionArn);
    const removed = (await put(null)).body;
    expect(removed.alertSubscriptionArn).toBeUndefined();
    expect((await subscriptions()).map((s) => s.Endpoint)).not.toContain('b@mail.test');
  });

  it("delivers through a customer's filter only that customer's alerts", async () => {
    const url = (await t.stack.sqs.send(new CreateQueueCommand({ QueueName: 'cus-al-a-mailbox' }))).QueueUrl!;
    const arn = (await t.stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await sns.send(
      new SubscribeCommand({ TopicArn: topicArn(), Protocol: 'sqs', Endpoint: arn, Attributes: { FilterPolicy: customerFilterPolicy(['cus_al_a']) } }),
    );
    await send('cus_al_a', 'seats', 5);
    await send('cus_al_b', 'seats', 5);
    const mailbox: Envelope[] = [];
    expect(keys(await alertsFor('cus_al_a', url, mailbox))).toEqual(['included#seats#100']);
    expect(mailbox.every((e) => e.MessageAttributes.customerId!.Value === 'cus_al_a')).toBe(true);
    expect(await alertsFor('cus_al_b')).toHaveLength(1); // the unfiltered inbox got B's
  });
});
