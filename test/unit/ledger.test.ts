import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoUsageLedger } from '../../lib/adapters/dynamo/ledger';
import { CapacityMeter } from '../../lib/adapters/dynamo/capacity';
import type { AggregationPlan } from '../../lib/domain/aggregation';
import type { MeteredEvent } from '../../lib/domain/events';

/** The ledger's unusual paths, which the emulator cannot produce on demand: conflicts, throttles. */
const db = mockClient(DynamoDBClient);
const capacity = new CapacityMeter();
const ledger = new DynamoUsageLedger(
  new DynamoDBClient({ region: 'us-east-1' }),
  { usage: 'U', dedupe: 'D' },
  { clock: { now: () => new Date('2026-11-23T00:00:00Z') }, markerTtlSeconds: 100, capacity },
);
const event = (id: string): MeteredEvent => ({ source: 's', id, type: 't', customerId: 'c', time: 'x', period: '2026-11', readings: { api_calls: '1' } });
const plan = (over: Partial<AggregationPlan> = {}): AggregationPlan => ({
  additive: [{ customerId: 'c', period: '2026-11', meter: 'api_calls', delta: '2.5', events: 2 }],
  max: [],
  latest: [],
  unique: [],
  duplicates: [],
  ...over,
});
const canceled = (...codes: string[]) =>
  new TransactionCanceledException({ message: 'canceled', $metadata: {}, CancellationReasons: codes.map((Code) => ({ Code })) });

beforeEach(() => {
  db.reset();
  capacity.reset();
});

it("claims an event it owns and reports another batch's claim as a duplicate", async () => {
  db.on(PutItemCommand)
    .resolvesOnce({})
    .rejectsOnce(new ConditionalCheckFailedException({ message: 'no', $metadata: {} }));
  expect(await ledger.claim('b1', [event('1'), event('2')])).toEqual(['owned', 'duplicate']);
  const put = db.commandCalls(PutItemCommand)[0]!.args[0].input;
  expect(put.ConditionExpression).toBe('attribute_not_exists(pk) OR claimedBy = :batch');
  expect(put.Item!.expiresAt).toEqual({ N: String(Date.parse('2026-11-23T00:00:00Z') / 1000 + 100) });
  expect(capacity.pricedUnits).toBe(2); // the failed condition is billed too
});

it('applies additive counters with the applied marker first, as exact decimal strings', async () => {
  db.on(TransactWriteItemsCommand).resolves({});
  await ledger.apply('b1', plan());
  const items = db.commandCalls(TransactWriteItemsCommand)[0]!.args[0].input.TransactItems!;
  expect(items[0]!.Put).toMatchObject({ TableName: 'D', Item: { pk: { S: 'ap|b1|0' } }, ConditionExpression: 'attribute_not_exists(pk)' });
  expect(items[1]!.Update!.ExpressionAttributeValues![':d']).toEqual({ N: '2.5' });
  expect(capacity.pricedUnits).toBe(4);
});

it('treats a marker that exists already as "applied by an earlier delivery"', async () => {
  db.on(TransactWriteItemsCommand).rejects(canceled('ConditionalCheckFailed', 'None'));
  await expect(ledger.apply('b1', plan())).resolves.toBeUndefined();
  expect(db.commandCalls(TransactWriteItemsCommand)).toHaveLength(1);
});

it('retries a transaction that conflicted or was throttled, then succeeds', async () => {
  db.on(TransactWriteItemsCommand)
    .rejectsOnce(canceled('None', 'TransactionConflict'))
    .rejectsOnce(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }))
    .resolves({});
  await ledger.apply('b1', plan());
  expect(db.commandCalls(TransactWriteItemsCommand)).toHaveLength(3);
});

it('gives up after repeated conflicts so that SQS redelivers the message', async () => {
  db.on(TransactWriteItemsCommand).rejects(canceled('None', 'TransactionConflict'));
  await expect(ledger.apply('b1', plan())).rejects.toBeInstanceOf(TransactionCanceledException);
  expect(db.commandCalls(TransactWriteItemsCommand)).toHaveLength(6);
}, 20_000);

it('splits more than 99 counters into transactions with their own markers', async () => {
  db.on(TransactWriteItemsCommand).resolves({});
  const additive = Array.from({ length: 150 }, (_, i) => ({
    customerId: `c${String(i).padStart(3, '0')}`,
    period: '2026-11',
    meter: 'api_calls',
    delta: '1',
    events: 1,
  }));
  await ledger.apply('b1', plan({ additive }));
  const calls = db.commandCalls(TransactWriteItemsCommand).map((c) => c.args[0].input.TransactItems!);
  expect(calls.map((items) => items.length)).toEqual([100, 52]);
  expect(calls.map((items) => items[0]!.Put!.Item!.pk!.S)).toEqual(['ap|b1|0', 'ap|b1|1']);
});

it('sets MAX only when greater, and a failed condition is not an error', async () => {
  db.on(UpdateItemCommand).rejects(new ConditionalCheckFailedException({ message: 'smaller', $metadata: {} }));
  await ledger.apply('b1', plan({ additive: [], max: [{ customerId: 'c', period: '2026-11', meter: 'storage_gb', value: '9.5' }] }));
  const input = db.commandCalls(UpdateItemCommand)[0]!.args[0].input;
  expect(input.ConditionExpression).toBe('attribute_not_exists(#value) OR #value < :cmp');
  expect(input.ExpressionAttributeValues![':cmp']).toEqual({ N: '9.5' });
});
