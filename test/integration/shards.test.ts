import { QueryCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Period } from '../../lib/domain/period';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Counter shards (COUNTER_SHARDS, docs/scaling.md): a hot customer's additive counters are spread
 * over several items, each batch always on the same one. Everything that reads or repairs a counter
 * sees the sum: usage, entitlements, voids, reconciliation.
 */
let t: TestStack;
let dynamo: DynamoDBClient;
const period = Period.containing(new Date());
const recent = () => new Date(Math.max(period.start.getTime(), Date.now() - 60_000)).toISOString();

beforeAll(async () => {
  t = await startTestStack({ env: { COUNTER_SHARDS: '4' } });
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const counterItems = async (customer: string, meter: string) =>
  (
    await dynamo.send(
      new QueryCommand({
        TableName: 'UsageTable',
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :a AND :b',
        ExpressionAttributeValues: { ':pk': { S: `${customer}|${period.key}` }, ':a': { S: `m#${meter}` }, ':b': { S: `m#${meter}#~` } },
      }),
    )
  ).Items ?? [];

it('spreads a hot customer over shards and still counts every event exactly once', async () => {
  const c = 'cus_hot';
  // 20 requests: 20 batches, each on its shard; a second copy of every request: all duplicates.
  const requests = Array.from({ length: 20 }, (_, r) =>
    Array.from({ length: 5 }, (_, i) => cloudEvent({ subject: c, id: `h-${r}-${i}`, time: recent(), data: { value: `${r}.5` } })),
  );
  for (const events of requests) expect((await t.sendEvents(events)).status).toBe(202);
  for (const events of requests) expect((await t.sendEvents(events)).status).toBe(202);
  await t.sendEvents([1, 2, 3].map((n) => cloudEvent({ subject: c, type: 'user_activity', time: recent(), data: { userId: `u${n % 2}` } })));
  await t.drain();
  const items = await counterItems(c, 'api_calls');
  expect(items.length).toBeGreaterThan(1);
  expect(items.every((i) => /^m#api_calls(#[1-3])?$/.test(i.sk!.S!))).toBe(true);
  const usage = await t.usage(c, period.key);
  // 5 events per request, values r + 0.5 for r = 0..19: 5 x (190 + 10) = 1000.
  expect(usage.values).toMatchObject({ api_calls: '1000', api_requests: '100', active_users: '2' });
  expect(usage.duplicatesDropped).toBe(100);
  const entitled = await t.request('GET', `/api/v1/customers/${c}/entitlements/api_calls`);
  expect(entitled.body).toMatchObject({ usage: '1000' });
  // Day counters are sharded the same way and add up too.
  const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
  const daily = await container().ledger.readDaily(c, period.key);
  expect(daily.api_calls).toEqual({ [recent().slice(0, 10)]: '1000' });
  expect(
    (
      await dynamo.send(
        new QueryCommand({
          TableName: 'UsageTable',
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :d)',
          ExpressionAttributeValues: { ':pk': { S: `${c}|${period.key}` }, ':d': { S: 'd#api_calls#' } },
        }),
      )
    ).Items!.length,
  ).toBeGreaterThan(1);
});

it('voids, reconciles and repairs a sharded counter as a whole', async () => {
  const c = 'cus_hot';
  expect((await t.request('POST', '/api/v1/events/void', { body: { customerId: c, source: 'test', id: 'h-19-0', reason: 'test' } })).status).toBe(200);
  expect((await t.usage(c, period.key)).values.api_calls).toBe('980.5');
  const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
  const { reconcile } = require('../../lib/app/audit') as typeof import('../../lib/app/audit');
  expect((await reconcile(container(), { period: period.key, customerId: c })).drifts).toEqual([]);
  // Someone edits one shard by hand: the sum drifts; --fix sets the whole counter back.
  const shard = (await counterItems(c, 'api_calls')).find((i) => i.sk!.S !== 'm#api_calls')!;
  await dynamo.send(
    new UpdateItemCommand({
      TableName: 'UsageTable',
      Key: { pk: shard.pk!, sk: shard.sk! },
      UpdateExpression: 'ADD #v :d',
      ExpressionAttributeNames: { '#v': 'value' },
      ExpressionAttributeValues: { ':d': { N: '7' } },
    }),
  );
  const found = await reconcile(container(), { period: period.key, customerId: c });
  expect(found.drifts).toEqual([{ customerId: c, meter: 'api_calls', counter: '987.5', archive: '980.5', drift: '-7' }]);
  const fixed = await reconcile(container(), { period: period.key, customerId: c, fix: { by: 'test' } });
  expect(fixed.drifts[0]).toMatchObject({ fixed: true });
  expect((await t.usage(c, period.key)).values.api_calls).toBe('980.5');
  expect((await reconcile(container(), { period: period.key, customerId: c })).drifts).toEqual([]);
});

it('reads a customer and its sharded counters of many periods together, in requests of at most 100 keys, as the ledger reads them', async () => {
  const c = 'cus_hot_periods';
  const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
  const periods = [period];
  while (periods.length < 12) periods.push(periods.at(-1)!.previous());
  const keys = periods.map((p) => p.key);
  const meters = container()
    .catalog.meters()
    .map((m) => m.slug);
  expect(keys.length * meters.length * 4).toBeGreaterThan(100); // more than one BatchGetItem
  for (let r = 0; r < 8; r++)
    expect((await t.sendEvents([cloudEvent({ subject: c, id: `p-${r}`, time: recent(), data: { value: `${r}.25` } })])).status).toBe(202);
  await t.drain();
  expect((await counterItems(c, 'api_calls')).length).toBeGreaterThan(1);
  expect((await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: 'Hot' } })).status).toBeLessThan(300);

  const batches: number[] = [];
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'BatchGetItemCommand') {
        const items = (args as { input: { RequestItems: Record<string, { Keys: unknown[] }> } }).input.RequestItems;
        batches.push(Object.values(items).reduce((n, t) => n + t.Keys.length, 0));
      }
      return next(args);
    },
    { step: 'initialize', name: 'countBatches' },
  );
  try {
    const read = await container().counterReads.read(c, [...keys, period.key], meters);
    expect(read.customer).toMatchObject({ id: c, name: 'Hot' });
    expect(read.counters[period.key]).toEqual((await container().ledger.read(c, period.key)).values);
    expect(read.counters[period.key]).toMatchObject({ api_calls: '30', api_requests: '8' });
    for (const p of keys.slice(1)) expect(read.counters[p]).toEqual({});
  } finally {
    dynamo.middlewareStack.remove('countBatches');
  }
  expect(batches.length).toBe(Math.ceil((1 + keys.length * meters.length * 4) / 100));
  expect(Math.max(...batches)).toBeLessThanOrEqual(100);
});
