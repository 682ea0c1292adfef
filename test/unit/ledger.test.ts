import {
  BatchExecuteStatementCommand,
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  TransactionCanceledException,
  type BatchExecuteStatementCommandInput,
  type BatchExecuteStatementCommandOutput,
  type BatchGetItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { DynamoUsageLedger } from '../../lib/adapters/dynamo/ledger';
import { CapacityMeter } from '../../lib/adapters/dynamo/capacity';
import type { AggregationPlan } from '../../lib/domain/aggregation';
import type { MeteredEvent } from '../../lib/domain/events';

/** The ledger's unusual paths, which the emulator cannot produce on demand: conflicts, throttles. */
const db = mockClient(DynamoDBDocumentClient);
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
  daily: { additive: [], max: [], latest: [] },
  ...over,
});
const canceled = (...codes: string[]) =>
  new TransactionCanceledException({ message: 'canceled', $metadata: {}, CancellationReasons: codes.map((Code) => ({ Code })) });

beforeEach(() => {
  db.reset();
  capacity.reset();
});

/** The claims: PartiQL INSERTs, 25 to a BatchExecuteStatement, on the plain client. */
const raw = mockClient(DynamoDBClient);
beforeEach(() => raw.reset());
type StatementAnswer = NonNullable<BatchExecuteStatementCommandOutput['Responses']>[number];
const ok: StatementAnswer = { TableName: 'D' };
const refused = (Code: 'DuplicateItem' | 'ConditionalCheckFailed', holder?: string): StatementAnswer => ({
  TableName: 'D',
  Error: { Code, Message: 'no', ...(holder === undefined ? {} : { Item: { claimedBy: { S: holder } } }) },
});
const claimRequests = () => raw.commandCalls(BatchExecuteStatementCommand).map((c) => c.args[0].input.Statements!);

describe('claims', () => {
  it("holds a new claim, holds its own claim again on a redelivery, and reports another batch's claim by that batch", async () => {
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [ok, refused('DuplicateItem', 'b0'), refused('ConditionalCheckFailed', 'b1')] });
    expect(await ledger.claim('b1', [event('1'), event('2'), event('3')], (e) => Number(e.id) * 10)).toEqual(['b1', 'b0', 'b1']);
    const [statements] = claimRequests();
    expect(statements).toHaveLength(3);
    // INSERT is the put-if-absent: a key that is there already fails that statement alone.
    expect(statements![0]!.Statement).toBe(`INSERT INTO "D" VALUE {'pk': ?, 'claimedBy': ?, 'expiresAt': ?, 'c': ?, 'p': ?, 'g': ?}`);
    expect(statements![0]!.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD');
    // The marker remembers where the event lives, so a void can find it: customer, period, archive group.
    const expiresAt = String(Date.parse('2026-11-23T00:00:00Z') / 1000 + 100);
    expect(statements![1]!.Parameters).toEqual([{ S: 'ev|["c","s","2"]' }, { S: 'b1' }, { N: expiresAt }, { S: 'c' }, { S: '2026-11' }, { N: '20' }]);
    expect(raw.commandCalls(BatchGetItemCommand)).toHaveLength(0); // every refusal said whose claim it found
    expect(capacity.pricedUnits).toBe(3); // the refused writes are billed too
  });

  it('sends 25 claims to a request and keeps the outcomes in the order of the events', async () => {
    raw.on(BatchExecuteStatementCommand).callsFake((input: BatchExecuteStatementCommandInput) => ({
      Responses: input.Statements!.map((s) => (s.Parameters![0]!.S!.endsWith('7"]') ? refused('DuplicateItem', 'b0') : ok)),
    }));
    const events = Array.from({ length: 60 }, (_, i) => event(String(i)));
    const out = await ledger.claim('b1', events, () => 0);
    expect(claimRequests().map((s) => s.length)).toEqual([25, 25, 10]);
    expect(out.flatMap((o, i) => (o === 'b0' ? [i] : []))).toEqual([7, 17, 27, 37, 47, 57]);
  });

  it('reads whose claims it found, all of a message at once and consistently, when a refusal does not say (DynamoDB Local never does)', async () => {
    // 130 events: refusals in every request of 25, 110 of them to read back (2 reads of <= 100 keys).
    raw.on(BatchExecuteStatementCommand).callsFake((input: BatchExecuteStatementCommandInput) => ({
      Responses: input.Statements!.map((s) => (Number(JSON.parse(s.Parameters![0]!.S!.slice(3))[2]) < 110 ? refused('DuplicateItem') : ok)),
    }));
    const holder = (i: number) => (i % 2 === 0 ? 'b1' : 'b0');
    raw.on(BatchGetItemCommand).callsFake((input: BatchGetItemCommandInput) => {
      const keys = input.RequestItems!.D!.Keys!;
      // The first read leaves its last key unprocessed: it is asked for again.
      const served = keys.length === 100 ? keys.slice(0, 99) : keys;
      return {
        Responses: { D: served.map((k) => ({ pk: k.pk!, claimedBy: { S: holder(Number(JSON.parse(k.pk!.S!.slice(3))[2])) } })) },
        ...(served.length < keys.length ? { UnprocessedKeys: { D: { Keys: keys.slice(99) } } } : {}),
      };
    });
    const events = Array.from({ length: 130 }, (_, i) => event(String(i)));
    const out = await ledger.claim('b1', events, () => 0);
    expect(out).toEqual(events.map((_, i) => (i < 110 ? holder(i) : 'b1')));
    const reads = raw.commandCalls(BatchGetItemCommand).map((c) => c.args[0].input.RequestItems!.D!);
    expect(reads.map((r) => r.Keys!.length)).toEqual([100, 1, 10]);
    for (const r of reads) expect(r.ConsistentRead).toBe(true);
  });

  it('fails the message instead of guessing when a refused claim cannot be found', async () => {
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [refused('DuplicateItem')] });
    raw.on(BatchGetItemCommand).resolves({ Responses: { D: [] } });
    await expect(ledger.claim('b1', [event('1')], () => 0)).rejects.toThrow(/no claim was found/);
  });

  it('sends a throttled claim again on its own, and fails the message on any other statement error', async () => {
    raw
      .on(BatchExecuteStatementCommand)
      .resolvesOnce({ Responses: [ok, { TableName: 'D', Error: { Code: 'ThrottlingError', Message: 'slow down' } }] })
      .resolvesOnce({ Responses: [ok] });
    expect(await ledger.claim('b1', [event('1'), event('2')], () => 0)).toEqual(['b1', 'b1']);
    expect(claimRequests().map((s) => s.map((x) => x.Parameters![0]!.S))).toEqual([['ev|["c","s","1"]', 'ev|["c","s","2"]'], ['ev|["c","s","2"]']]);
    expect(capacity.pricedUnits).toBe(2); // a throttled statement is not a write

    raw.reset();
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [{ TableName: 'D', Error: { Code: 'ValidationError', Message: 'bad' } }] });
    await expect(ledger.claim('b1', [event('1')], () => 0)).rejects.toThrow(/claim of ev\|\["c","s","1"\] failed: ValidationError: bad/);
  });

  it('fails the message when the answers do not match the statements sent', async () => {
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [ok] });
    await expect(ledger.claim('b1', [event('1'), event('2')], () => 0)).rejects.toThrow(/2 statements sent, 1 answered/);
  });
});

it('applies additive counters with the applied marker first, as exact decimal strings', async () => {
  db.on(TransactWriteCommand).resolves({});
  db.on(PutCommand).resolves({});
  await ledger.apply('b1', plan());
  const items = db.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems!;
  expect(items[0]!.Put).toMatchObject({ TableName: 'D', Item: { pk: 'ap|b1|0' }, ConditionExpression: 'attribute_not_exists(pk)' });
  expect(String(items[1]!.Update!.ExpressionAttributeValues![':d'])).toBe('2.5');
  // Then the batch is marked settled (its events may be voided from now on): one more write.
  expect(db.commandCalls(PutCommand).map((c) => c.args[0].input.Item!.pk)).toEqual(['ap|b1|settled']);
  expect(capacity.pricedUnits).toBe(5);
});

it("applies a day's counters in the same transaction, after the period counters and duplicates, kept out of the period index", async () => {
  db.on(TransactWriteCommand).resolves({});
  db.on(PutCommand).resolves({});
  await ledger.apply(
    'b1',
    plan({
      duplicates: [{ customerId: 'c', period: '2026-11', count: 2 }],
      daily: {
        additive: [{ customerId: 'c', period: '2026-11', meter: 'api_calls', day: '2026-11-03', delta: '2.5', events: 2 }],
        max: [],
        latest: [],
      },
    }),
  );
  const calls = db.commandCalls(TransactWriteCommand);
  expect(calls).toHaveLength(1);
  const items = calls[0]!.args[0].input.TransactItems!;
  // Appended last: a message applied in part before daily counters existed rebuilds the same period transactions.
  expect(items.map((i) => i.Put?.Item?.pk ?? i.Update!.Key!.sk)).toEqual(['ap|b1|0', 'm#api_calls', 'm#_duplicates', 'd#api_calls#2026-11-03']);
  const day = items[3]!.Update!;
  expect(day.Key).toEqual({ pk: 'c|2026-11', sk: 'd#api_calls#2026-11-03' });
  expect(day.UpdateExpression).toBe('ADD #v :d');
  expect(String(day.ExpressionAttributeValues![':d'])).toBe('2.5');
  expect(capacity.pricedUnits).toBe(2 * 4 + 1);
});

it('sets MAX and LATEST of a day with the same "set if greater/later" as their period counters', async () => {
  db.on(UpdateCommand).resolves({});
  db.on(PutCommand).resolves({});
  await ledger.apply(
    'b1',
    plan({
      additive: [],
      daily: {
        additive: [],
        max: [{ customerId: 'c', period: '2026-11', meter: 'storage_gb', day: '2026-11-03', value: '9.5' }],
        latest: [{ customerId: 'c', period: '2026-11', meter: 'queue_depth', day: '2026-11-04', value: '3', order: 'o' }],
      },
    }),
  );
  const inputs = db.commandCalls(UpdateCommand).map((c) => c.args[0].input);
  expect(inputs.map((i) => [i.Key!.sk, i.ConditionExpression])).toEqual([
    ['d#storage_gb#2026-11-03', 'attribute_not_exists(#value) OR #value < :cmp'],
    ['d#queue_depth#2026-11-04', 'attribute_not_exists(#ord) OR #ord < :cmp'],
  ]);
  for (const i of inputs) expect(i.UpdateExpression).not.toContain('period');
  expect(capacity.pricedUnits).toBe(3);
});

it('treats a marker that exists already as "applied by an earlier delivery"', async () => {
  db.on(TransactWriteCommand).rejects(canceled('ConditionalCheckFailed', 'None'));
  await expect(ledger.apply('b1', plan())).resolves.toBeUndefined();
  expect(db.commandCalls(TransactWriteCommand)).toHaveLength(1);
});

it('retries a transaction that conflicted or was throttled, then succeeds', async () => {
  db.on(TransactWriteCommand)
    .rejectsOnce(canceled('None', 'TransactionConflict'))
    .rejectsOnce(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }))
    .resolves({});
  await ledger.apply('b1', plan());
  expect(db.commandCalls(TransactWriteCommand)).toHaveLength(3);
});

it('gives up after repeated conflicts so that SQS redelivers the message', async () => {
  db.on(TransactWriteCommand).rejects(canceled('None', 'TransactionConflict'));
  await expect(ledger.apply('b1', plan())).rejects.toBeInstanceOf(TransactionCanceledException);
  expect(db.commandCalls(TransactWriteCommand)).toHaveLength(6);
}, 20_000);

it('splits more than 99 counters into transactions with their own markers', async () => {
  db.on(TransactWriteCommand).resolves({});
  const additive = Array.from({ length: 150 }, (_, i) => ({
    customerId: `c${String(i).padStart(3, '0')}`,
    period: '2026-11',
    meter: 'api_calls',
    delta: '1',
    events: 1,
  }));
  await ledger.apply('b1', plan({ additive }));
  const calls = db.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems!);
  expect(calls.map((items) => items.length)).toEqual([100, 52]);
  expect(calls.map((items) => items[0]!.Put!.Item!.pk)).toEqual(['ap|b1|0', 'ap|b1|1']);
});

it('sets MAX only when greater, and a failed condition is not an error', async () => {
  db.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'smaller', $metadata: {} }));
  await ledger.apply('b1', plan({ additive: [], max: [{ customerId: 'c', period: '2026-11', meter: 'storage_gb', value: '9.5' }] }));
  const input = db.commandCalls(UpdateCommand)[0]!.args[0].input;
  expect(input.ConditionExpression).toBe('attribute_not_exists(#value) OR #value < :cmp');
  expect(String(input.ExpressionAttributeValues![':cmp'])).toBe('9.5');
});

describe('keys built from client input stay inside DynamoDB key limits', () => {
  const claimKeyOf = async (e: MeteredEvent) => {
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [ok] });
    await ledger.claim('b1', [e], () => 0);
    return claimRequests().at(-1)![0]!.Parameters![0]!.S!;
  };
  const withIdentity = (source: string, id: string): MeteredEvent => ({ ...event(id), source });

  it('keeps a claim key (customer, source, id) readable while DynamoDB can store it', async () => {
    expect(await claimKeyOf(event('1'))).toBe('ev|["c","s","1"]');
    // 3 + 5 ("c",) + 500 + 3 + 1536 + 2 = 2,048 bytes: the largest partition key DynamoDB accepts.
    const source = '\u0001'.repeat(83);
    const key = await claimKeyOf(withIdentity(source, '\u0001'.repeat(256)));
    expect(Buffer.byteLength(key)).toBe(2048);
    expect(key).toBe(`ev|${JSON.stringify(['c', source, '\u0001'.repeat(256)])}`);
  });

  it('claims the same (source, id) of two customers as two events', async () => {
    expect(await claimKeyOf({ ...event('1'), customerId: 'cus_a' })).not.toBe(await claimKeyOf({ ...event('1'), customerId: 'cus_b' }));
  });

  it("while a stage upgrades, reads each event's claim of the old form (source, id): another batch's is a duplicate, never claimed again", async () => {
    const upgrading = new DynamoUsageLedger(
      new DynamoDBClient({ region: 'us-east-1' }),
      { usage: 'U', dedupe: 'D' },
      { clock: { now: () => new Date('2026-12-08T00:00:00Z') }, markerTtlSeconds: 3600, legacyClaimsUntil: new Date('2027-01-12T00:00:00Z') },
    );
    raw.on(BatchGetItemCommand).resolves({
      Responses: {
        D: [
          { pk: { S: 'ev|["s","1"]' }, claimedBy: { S: 'b0' } },
          { pk: { S: 'ev|["s","2"]' }, claimedBy: { S: 'b1' } },
        ],
      },
    });
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [ok, ok] });
    expect(await upgrading.claim('b1', [event('1'), event('2'), event('3')], () => 0)).toEqual(['b0', 'b1', 'b1']);
    // Only events no other batch claimed in the old form are claimed, in the new form.
    expect(claimRequests().map((r) => r.map((x) => x.Parameters![0]!.S))).toEqual([['ev|["c","s","2"]', 'ev|["c","s","3"]']]);
    expect(raw.commandCalls(BatchGetItemCommand)[0]!.args[0].input.RequestItems!.D!.Keys!.map((k) => k.pk!.S)).toEqual([
      'ev|["s","1"]',
      'ev|["s","2"]',
      'ev|["s","3"]',
    ]);
  });

  it('reads no claim of the old form once the upgrade window has passed, or when none was set', async () => {
    raw.on(BatchExecuteStatementCommand).resolves({ Responses: [ok] });
    await ledger.claim('b1', [event('1')], () => 0);
    expect(raw.commandCalls(BatchGetItemCommand)).toHaveLength(0);
  });

  it('names a claim key over 2,048 bytes by its SHA-256, distinct per (customer, source, id)', async () => {
    const a = await claimKeyOf(withIdentity('\u0001'.repeat(83) + 'a', '\u0001'.repeat(256)));
    const b = await claimKeyOf(withIdentity('\u0001'.repeat(100), '\u0001'.repeat(256)));
    const c = await claimKeyOf(withIdentity('\u0001'.repeat(256), '\u0001'.repeat(256)));
    for (const k of [a, b, c]) expect(k).toMatch(/^ev\|sha256:[0-9a-f]{64}$/);
    expect(new Set([a, b, c]).size).toBe(3);
  });

  it('never lets a UNIQUE_COUNT value that looks like a hash share the marker of a long value', async () => {
    db.on(TransactWriteCommand).resolves({});
    const long = 'u'.repeat(300);
    const lookalike = `sha256:${createHash('sha256').update(long).digest('hex')}`;
    const unique = [{ customerId: 'c', period: '2026-11', meter: 'active_users', values: [long, lookalike, 'short'] }];
    await ledger.apply('b1', plan({ additive: [], unique }));
    const sks = db.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems![0]!.Put!.Item!.sk as string);
    expect(new Set(sks).size).toBe(3);
    expect(sks).toContain('u#active_users#short');
    for (const sk of sks) expect(Buffer.byteLength(sk)).toBeLessThanOrEqual(1024);
  });
});

describe('counter shards', () => {
  it('puts a batch on one shard, always the same one, spread over all shards', () => {
    const { shardSuffix } = require('../../lib/adapters/dynamo/usage-keys') as typeof import('../../lib/adapters/dynamo/usage-keys');
    expect(shardSuffix('b1', 1)).toBe('');
    expect(shardSuffix('b1', 4)).toBe(shardSuffix('b1', 4));
    const seen = new Set(Array.from({ length: 200 }, (_, i) => shardSuffix(`batch-${i}`, 4)));
    expect([...seen].sort()).toEqual(['', '#1', '#2', '#3']);
  });

  it('writes a batch additive updates to its shard and reads counters as the sum of their shards', async () => {
    const sharded = new DynamoUsageLedger(
      new DynamoDBClient({ region: 'us-east-1' }),
      { usage: 'U', dedupe: 'D' },
      { clock: { now: () => new Date() }, markerTtlSeconds: 100, shards: 4 },
    );
    const { shardSuffix } = require('../../lib/adapters/dynamo/usage-keys') as typeof import('../../lib/adapters/dynamo/usage-keys');
    db.on(TransactWriteCommand).resolves({});
    db.on(PutCommand).resolves({});
    await sharded.apply('batch-7', plan());
    const update = db.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems![1]!.Update!;
    expect(update.Key).toEqual({ pk: 'c|2026-11', sk: `m#api_calls${shardSuffix('batch-7', 4)}` });
    db.on(QueryCommand).resolves({
      Items: [
        { sk: 'm#api_calls', value: '1.5' },
        { sk: 'm#api_calls#2', value: '0.25' },
        { sk: 'm#api_calls_v2', value: 9 },
        { sk: 'm#_duplicates', value: 2 },
        { sk: 'm#_duplicates#3', value: 1 },
      ],
    });
    expect(await sharded.read('c', '2026-11')).toEqual({ values: { api_calls: '1.75', api_calls_v2: '9' }, duplicatesDropped: 3 });
  });
});
