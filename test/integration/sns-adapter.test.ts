import {
  ConfirmSubscriptionCommand,
  CreateTopicCommand,
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
  SubscribeCommand,
  type Subscription,
} from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SnsAlertPublisher, snsSubject, type AlertNotification } from '../../lib/adapters/sns/alerts-topic';
import { customerFilterPolicy, isSubscriptionArn, SnsAlertSubscriptions, type SubscriptionRouting } from '../../lib/adapters/sns/subscriptions';
import { alertMessage, evaluateAlerts } from '../../lib/domain/alerts';
import { planSchema } from '../../lib/domain/catalog';
import { LOCAL_CREDENTIALS, LOCAL_REGION, startSqsSns, type SqsSns } from '../../local/runtime/emulators';

/**
 * The SNS adapters against fauxqs (SNS + SQS emulator). Every test makes its own topic and queues.
 * fauxqs delivers to SQS subscriptions synchronously inside Publish, so a message that is not in a
 * queue right after Publish returned was filtered out.
 */
let emulator: SqsSns;
let sns: SNSClient;
let sqs: SQSClient;
let seq = 0;

beforeAll(async () => {
  emulator = await startSqsSns();
  const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoint: emulator.address, maxAttempts: 1 };
  sns = new SNSClient(common);
  sqs = new SQSClient({ ...common, useQueueUrlAsEndpoint: false });
}, 60_000);
afterAll(async () => {
  sns?.destroy();
  sqs?.destroy();
  await emulator?.stop();
});

async function topic(): Promise<string> {
  const out = await sns.send(new CreateTopicCommand({ Name: `alerts-${++seq}` }));
  return out.TopicArn!;
}
async function queue(name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${++seq}` }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}
interface Envelope {
  Type: string;
  MessageId: string;
  TopicArn: string;
  Subject: string | null;
  Message: string;
  MessageAttributes: Record<string, { Type: string; Value: string }>;
}
/** Everything in the queue now (a receive with a short wait, until it comes back empty). */
async function drain(url: string): Promise<Envelope[]> {
  const got: Envelope[] = [];
  for (;;) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
    if (!out.Messages?.length) return got;
    got.push(...out.Messages.map((m) => JSON.parse(m.Body!) as Envelope));
  }
}
async function subscriptions(topicArn: string): Promise<Subscription[]> {
  const out = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }));
  return out.Subscriptions ?? [];
}
async function attributesOf(arn: string): Promise<Record<string, string>> {
  return (await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: arn }))).Attributes ?? {};
}
const customers = (e: Envelope[]) => e.map((m) => m.MessageAttributes.customerId?.Value).sort();

const plan = planSchema.parse({
  id: 'default',
  name: 'Usage based',
  currency: 'usd',
  charges: [
    {
      meter: 'api_calls',
      model: 'graduated',
      included: '10000',
      tiers: [
        { upTo: '10000', unitPrice: '0' },
        { upTo: null, unitPrice: '0.001' },
      ],
    },
  ],
});
/** A real alert from the domain, for customer `id`. */
function alertFor(id: string, name = 'Acme'): AlertNotification {
  const [candidate] = evaluateAlerts({ plan, values: { api_calls: '9000' }, budget: null }).filter((c) => c.threshold === 90);
  return alertMessage(candidate!, { customerId: id, customerName: name, period: '2026-11', currency: 'usd', meterDisplayName: 'API Calls', unit: 'calls' });
}
/** Local routing: each address goes to its own SQS queue (fauxqs never delivers email). */
function queueRouting(queues: Record<string, string>): SubscriptionRouting {
  return {
    protocol: 'sqs',
    endpointFor: (email) => {
      const arn = queues[email];
      if (!arn) throw new Error(`no queue for ${email}`);
      return arn;
    },
  };
}

describe('snsSubject', () => {
  it.each([
    ['Acme: API Calls at 90% of included usage (2026-11)', 'Acme: API Calls at 90% of included usage (2026-11)'],
    ['Müller GmbH: Speicher at 80% (2026-11)', 'Muller GmbH: Speicher at 80% (2026-11)'],
    ['Line\r\nbreak\tand   spaces ', 'Line break and spaces'],
    ['“Quoted” – café… €5', '"Quoted" - cafe... EUR 5'],
    ['日本: 🚀 alert', '??: ? alert'],
    ['\n\t ', undefined],
    ['', undefined],
  ])('%j -> %j', (input, expected) => {
    expect(snsSubject(input)).toBe(expected);
  });

  it('cuts at 99 characters with "..."', () => {
    const s = snsSubject('x'.repeat(150))!;
    expect(s).toHaveLength(99);
    expect(s.endsWith('...')).toBe(true);
    expect(snsSubject('y'.repeat(99))).toBe('y'.repeat(99));
  });
});

describe('isSubscriptionArn / customerFilterPolicy', () => {
  it('tells real ARNs from placeholders', () => {
    expect(isSubscriptionArn('arn:aws:sns:us-east-1:123456789012:alerts:0b7e1a52-6f0e-4b8e-9d7a-2f5d3c4b1a00')).toBe(true);
    for (const v of ['pending confirmation', 'PendingConfirmation', 'Deleted', '', undefined, 'arn:aws:sns:us-east-1:123456789012:alerts'])
      expect(isSubscriptionArn(v)).toBe(false);
  });
  it('writes a sorted, de-duplicated customerId policy', () => {
    expect(customerFilterPolicy(['b', 'a', 'b'])).toBe('{"customerId":["a","b"]}');
  });
});

describe('SnsAlertPublisher', () => {
  it('publishes the subject, the JSON body and the four message attributes; an SQS subscriber without raw delivery gets the SNS envelope', async () => {
    const t = await topic();
    const q = await queue('all');
    const sub = await sns.send(new SubscribeCommand({ TopicArn: t, Protocol: 'sqs', Endpoint: q.arn, ReturnSubscriptionArn: true }));
    expect((await attributesOf(sub.SubscriptionArn!)).RawMessageDelivery).toBe('false');

    const msg = alertFor('cus_A');
    const id = await new SnsAlertPublisher(sns, t).publish(msg);
    expect(id).toEqual(expect.any(String));

    const [env, ...rest] = await drain(q.url);
    expect(rest).toEqual([]);
    expect(env).toMatchObject({ Type: 'Notification', MessageId: id, TopicArn: t, Subject: 'Acme: API Calls at 90% of included usage (2026-11)' });
    // The body arrives exactly as the domain wrote it (test/unit/alerts.test.ts checks its wording).
    expect(JSON.parse(env!.Message)).toEqual(msg.body);
    expect(JSON.parse(env!.Message)).toMatchObject({
      customerId: 'cus_A',
      period: '2026-11',
      kind: 'included',
      meter: 'api_calls',
      threshold: 90,
      value: '9000',
      limit: '10000',
      percent: '90.00',
      currency: 'usd',
      message: expect.stringMatching(
        /^Acme \(cus_A\) has used 9,000 calls of API Calls in 2026-11: 90\.00% of the 10,000 calls included in the plan \(alert threshold 90%\)\. /,
      ),
    });
    expect(env!.MessageAttributes).toEqual({
      customerId: { Type: 'String', Value: 'cus_A' },
      kind: { Type: 'String', Value: 'included' },
      meter: { Type: 'String', Value: 'api_calls' },
      threshold: { Type: 'String', Value: '90' },
    });
  });

  it('sanitizes the subject (one ASCII line, < 100 characters) and refuses empty attributes', async () => {
    const t = await topic();
    const q = await queue('subject');
    await sns.send(new SubscribeCommand({ TopicArn: t, Protocol: 'sqs', Endpoint: q.arn }));
    const publisher = new SnsAlertPublisher(sns, t);
    await publisher.publish({ ...alertFor('cus_A'), subject: `Zoë's\nCafé: ${'Ä'.repeat(150)}` });
    const [env] = await drain(q.url);
    expect(env!.Subject).toMatch(/^Zoe's Cafe: A+\.\.\.$/);
    expect(env!.Subject!.length).toBeLessThanOrEqual(99);

    await expect(publisher.publish({ ...alertFor('cus_A'), attributes: { customerId: '', kind: 'budget', meter: '-', threshold: '50' } })).rejects.toThrow(
      /customerId/,
    );
    expect(await drain(q.url)).toEqual([]);
  });

  it('fails when the topic does not exist', async () => {
    await expect(new SnsAlertPublisher(sns, 'arn:aws:sns:us-east-1:000000000000:no-such-topic').publish(alertFor('cus_A'))).rejects.toThrow();
  });
});

describe('filter policies', () => {
  it("a subscription filtered to customer A gets A's alerts and not B's; an unfiltered one gets both", async () => {
    const t = await topic();
    const [qa, qb, qall] = await Promise.all([queue('a'), queue('b'), queue('ops')]);
    const subs = new SnsAlertSubscriptions(sns, t, queueRouting({ 'a@acme.test': qa.arn, 'b@beta.test': qb.arn, 'ops@us.test': qall.arn }));
    const a = await subs.sync('cus_A', {}, { email: 'a@acme.test' });
    await subs.sync('cus_B', {}, { email: 'b@beta.test' });
    await subs.subscribeOps('ops@us.test');
    expect(await attributesOf(a.subscriptionArn!)).toMatchObject({ FilterPolicy: '{"customerId":["cus_A"]}', FilterPolicyScope: 'MessageAttributes' });

    const publisher = new SnsAlertPublisher(sns, t);
    await publisher.publish(alertFor('cus_A'));
    await publisher.publish(alertFor('cus_B', 'Beta'));
    await publisher.publish(alertFor('cus_A'));

    expect(customers(await drain(qa.url))).toEqual(['cus_A', 'cus_A']);
    expect(customers(await drain(qb.url))).toEqual(['cus_B']);
    expect(customers(await drain(qall.url))).toEqual(['cus_A', 'cus_A', 'cus_B']);
  });
});

describe('SnsAlertSubscriptions.sync (routed to SQS)', () => {
  it('subscribes, keeps the same address, moves to a new one and unsubscribes', async () => {
    const t = await topic();
    const [q1, q2] = await Promise.all([queue('first'), queue('second')]);
    const subs = new SnsAlertSubscriptions(sns, t, queueRouting({ 'first@acme.test': q1.arn, 'second@acme.test': q2.arn }));
    const publisher = new SnsAlertPublisher(sns, t);

    const first = await subs.sync('cus_M', {}, { email: 'first@acme.test' });
    expect(isSubscriptionArn(first.subscriptionArn)).toBe(true);
    expect((await subscriptions(t)).map((s) => [s.SubscriptionArn, s.Protocol, s.Endpoint])).toEqual([[first.subscriptionArn, 'sqs', q1.arn]]);

    // The same address again (any case, extra blanks): nothing changes.
    const same = await subs.sync('cus_M', { email: 'first@acme.test', subscriptionArn: first.subscriptionArn }, { email: ' First@Acme.test ' });
    expect(same).toEqual(first);
    expect(await subscriptions(t)).toHaveLength(1);

    // Move: the new address is subscribed (filtered), the old subscription is gone.
    const second = await subs.sync('cus_M', { email: 'first@acme.test', subscriptionArn: first.subscriptionArn }, { email: 'second@acme.test' });
    expect(second.subscriptionArn).not.toBe(first.subscriptionArn);
    expect((await subscriptions(t)).map((s) => [s.SubscriptionArn, s.Endpoint])).toEqual([[second.subscriptionArn, q2.arn]]);
    expect((await attributesOf(second.subscriptionArn!)).FilterPolicy).toBe('{"customerId":["cus_M"]}');
    await publisher.publish(alertFor('cus_M'));
    expect(customers(await drain(q2.url))).toEqual(['cus_M']);
    expect(await drain(q1.url)).toEqual([]);

    // Removal: unsubscribed, nothing delivered any more.
    expect(await subs.sync('cus_M', { email: 'second@acme.test', subscriptionArn: second.subscriptionArn }, {})).toEqual({});
    expect(await subscriptions(t)).toEqual([]);
    await publisher.publish(alertFor('cus_M'));
    expect(await drain(q2.url)).toEqual([]);

    // No address before or after: nothing to do.
    expect(await subs.sync('cus_M', {}, { email: '  ' })).toEqual({});
  });

  it('recovers when the stored ARN is "pending confirmation" or already gone', async () => {
    const t = await topic();
    const [q1, q2] = await Promise.all([queue('p1'), queue('p2')]);
    const subs = new SnsAlertSubscriptions(sns, t, queueRouting({ 'p1@acme.test': q1.arn, 'p2@acme.test': q2.arn }));
    const real = await subs.sync('cus_P', {}, { email: 'p1@acme.test' });

    // Same address, ARN unknown: Subscribe is idempotent and gives the existing ARN back.
    expect(await subs.sync('cus_P', { email: 'p1@acme.test', subscriptionArn: 'pending confirmation' }, { email: 'p1@acme.test' })).toEqual(real);
    expect(await subscriptions(t)).toHaveLength(1);

    // Move with an unknown old ARN: the new one is subscribed, the old one cannot be touched.
    const moved = await subs.sync('cus_P', { email: 'p1@acme.test', subscriptionArn: 'pending confirmation' }, { email: 'p2@acme.test' });
    expect((await subscriptions(t)).map((s) => s.SubscriptionArn).sort()).toEqual([real.subscriptionArn, moved.subscriptionArn].sort());

    // Removing a subscription that no longer exists (unsubscribed from the email link) succeeds.
    await subs.sync('cus_P', { email: 'p2@acme.test', subscriptionArn: moved.subscriptionArn }, {});
    expect(await subs.sync('cus_P', { email: 'p2@acme.test', subscriptionArn: moved.subscriptionArn }, {})).toEqual({});
  });

  it('shares one subscription between customers with the same address, and with ops', async () => {
    const t = await topic();
    const [shared, ops] = await Promise.all([queue('shared'), queue('ops')]);
    const subs = new SnsAlertSubscriptions(sns, t, queueRouting({ 'billing@group.test': shared.arn, 'ops@us.test': ops.arn }));
    const publisher = new SnsAlertPublisher(sns, t);

    const a = await subs.sync('cus_A', {}, { email: 'billing@group.test' });
    const b = await subs.sync('cus_B', {}, { email: 'billing@group.test' });
    expect(b).toEqual(a);
    expect((await attributesOf(a.subscriptionArn!)).FilterPolicy).toBe('{"customerId":["cus_A","cus_B"]}');
    for (const id of ['cus_A', 'cus_B', 'cus_C']) await publisher.publish(alertFor(id));
    expect(customers(await drain(shared.url))).toEqual(['cus_A', 'cus_B']);

    // A leaves: B keeps getting its alerts through the same subscription.
    expect(await subs.sync('cus_A', { email: 'billing@group.test', ...a }, {})).toEqual({});
    expect((await attributesOf(a.subscriptionArn!)).FilterPolicy).toBe('{"customerId":["cus_B"]}');
    // B leaves: the subscription goes.
    await subs.sync('cus_B', { email: 'billing@group.test', ...b }, {});
    expect(await subscriptions(t)).toEqual([]);

    // A customer using the ops address: ops stays unfiltered and is never removed by the customer.
    const o = await subs.subscribeOps('ops@us.test');
    const c = await subs.sync('cus_C', {}, { email: 'ops@us.test' });
    expect(c.subscriptionArn).toBe(o.subscriptionArn);
    expect((await attributesOf(o.subscriptionArn)).FilterPolicy).toBeUndefined();
    await subs.sync('cus_C', { email: 'ops@us.test', ...c }, {});
    expect((await subscriptions(t)).map((s) => s.SubscriptionArn)).toEqual([o.subscriptionArn]);

    // Ops subscribing an address a customer already uses: the customer filter is dropped.
    const d = await subs.sync('cus_D', {}, { email: 'billing@group.test' });
    const o2 = await subs.subscribeOps('billing@group.test');
    expect(o2.subscriptionArn).toBe(d.subscriptionArn);
    await publisher.publish(alertFor('cus_E'));
    expect(customers(await drain(shared.url))).toEqual(['cus_E']);
    expect(await subs.subscribeOps('billing@group.test')).toEqual(o2); // idempotent
  });
});

describe('email subscriptions on fauxqs', () => {
  it('accepts protocol email with the filter policy, keeps it pending confirmation and does not deliver it', async () => {
    const t = await topic();
    const subs = new SnsAlertSubscriptions(sns, t); // default routing: email, as deployed
    const a = await subs.sync('cus_A', {}, { email: 'alice@acme.test' });
    expect(isSubscriptionArn(a.subscriptionArn)).toBe(true); // ReturnSubscriptionArn: the ARN even while pending
    const attrs = await attributesOf(a.subscriptionArn!);
    expect(attrs).toMatchObject({
      Protocol: 'email',
      Endpoint: 'alice@acme.test',
      FilterPolicy: '{"customerId":["cus_A"]}',
      FilterPolicyScope: 'MessageAttributes',
      PendingConfirmation: 'true',
    });
    const ops = await subs.subscribeOps('ops@us.test');
    expect((await attributesOf(ops.subscriptionArn)).FilterPolicy).toBeUndefined();

    // Publishing with only email subscribers works (nothing is delivered anywhere, even once confirmed).
    await sns.send(new ConfirmSubscriptionCommand({ TopicArn: t, Token: a.subscriptionArn! }));
    expect((await attributesOf(a.subscriptionArn!)).PendingConfirmation).toBe('false');
    await expect(new SnsAlertPublisher(sns, t).publish(alertFor('cus_A'))).resolves.toEqual(expect.any(String));

    // Move and remove work on email subscriptions like on any other.
    const b = await subs.sync('cus_A', { email: 'alice@acme.test', ...a }, { email: 'bob@acme.test' });
    expect((await subscriptions(t)).map((s) => [s.Protocol, s.Endpoint]).sort()).toEqual([
      ['email', 'bob@acme.test'],
      ['email', 'ops@us.test'],
    ]);
    await subs.sync('cus_A', { email: 'bob@acme.test', ...b }, {});
    expect((await subscriptions(t)).map((s) => s.Endpoint)).toEqual(['ops@us.test']);
  });
});
