import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { Period } from '../../lib/domain/period';
import { crashOn } from '../support/faults';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * Daily counters on the emulators (docs/portal.md): every event lands in the UTC day of its time,
 * exactly once through duplicates, redeliveries and a crash at the counter transaction; a void takes
 * it out of its day; reconciliation compares days with the archive and repairs them.
 */
let t: TestStack;
let dynamo: DynamoDBClient;
type Container = import('../../lib/platform/container').Container;
let container: () => Container;
let reconcile: typeof import('../../lib/app/audit').reconcile;

beforeAll(async () => {
  t = await startTestStack({ visibilityTimeoutSeconds: 3 });
  // The handlers' own modules (the registry the stack loaded them into).
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
  container = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container;
  reconcile = (require('../../lib/app/audit') as typeof import('../../lib/app/audit')).reconcile;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(() => {
  dynamo.middlewareStack.remove('fault');
});

/** Two consecutive UTC days of one period, both inside the late-event window, whatever today is. */
function twoDays() {
  const hour = 3_600_000;
  let end = Date.now() - 60_000;
  // Yesterday in another month (today is the 1st): take two days of the previous month instead.
  if (Period.containing(new Date(end - 25 * hour)).key !== Period.containing(new Date(end)).key) end -= 49 * hour;
  const day2 = new Date(end).toISOString().slice(0, 10);
  const day1 = new Date(Date.parse(`${day2}T00:00:00Z`) - 24 * hour).toISOString().slice(0, 10);
  const at = (day: string, h: number) => {
    const iso = new Date(Date.parse(`${day}T00:00:00Z`) + h * hour).toISOString();
    return iso < new Date(end).toISOString() ? iso : new Date(end).toISOString();
  };
  return { period: day2.slice(0, 7), day1, day2, at };
}

const daily = (customerId: string, period: string) => container().ledger.readDaily(customerId, period);

describe('daily counters', () => {
  it('counts each event in the UTC day of its time, once, through duplicates and redeliveries', async () => {
    const c = 'cus_daily_exact';
    const { period, day1, day2, at } = twoDays();
    const sent = [
      cloudEvent({ subject: c, id: 'd-1', time: at(day1, 0), data: { value: '1.5' } }),
      cloudEvent({ subject: c, id: 'd-2', time: at(day1, 23.99), data: { value: 2 } }),
      cloudEvent({ subject: c, id: 'd-3', time: at(day2, 0), data: { value: 4 } }),
      cloudEvent({ subject: c, id: 'd-max-1', type: 'storage_gb', time: at(day1, 1), data: { value: 9 } }),
      cloudEvent({ subject: c, id: 'd-max-2', type: 'storage_gb', time: at(day1, 2), data: { value: 3 } }),
      cloudEvent({ subject: c, id: 'd-max-3', type: 'storage_gb', time: at(day2, 0.1), data: { value: 5 } }),
      cloudEvent({ subject: c, id: 'd-latest-1', type: 'queue_depth', time: at(day1, 1), data: { depth: 4 } }),
      cloudEvent({ subject: c, id: 'd-latest-2', type: 'queue_depth', time: at(day1, 2), data: { depth: 6 } }),
      cloudEvent({ subject: c, id: 'd-latest-3', type: 'queue_depth', time: at(day2, 0.2), data: { depth: 1 } }),
      cloudEvent({ subject: c, id: 'd-u-1', type: 'user_activity', time: at(day1, 3), data: { userId: 'ann' } }),
      cloudEvent({ subject: c, id: 'd-u-2', type: 'user_activity', time: at(day2, 0.3), data: { userId: 'bob' } }),
    ];
    expect((await t.sendEvents(sent)).status).toBe(202);
    expect((await t.sendEvents(sent.slice(0, 6))).status).toBe(202); // six duplicates in another request
    // A message SQS delivers twice (same batch id): its events count once, in their day.
    const redelivered = JSON.stringify({
      v: 1,
      batchId: 'daily-redelivered',
      receivedAt: new Date().toISOString(),
      events: ['d-4', 'd-5'].map((id) => ({
        source: 'test',
        id,
        type: 'api_calls',
        customerId: c,
        time: `${at(day2, 0.5).slice(0, 19)}.000000000Z`,
        period,
        readings: { api_calls: '10', api_requests: '1' },
      })),
    });
    await t.sendRawMessage(redelivered);
    await t.drain();
    await t.sendRawMessage(redelivered);
    await t.drain();

    expect(await daily(c, period)).toEqual({
      api_calls: { [day1]: '3.5', [day2]: '24' },
      api_requests: { [day1]: '2', [day2]: '3' },
      storage_gb: { [day1]: '9', [day2]: '5' },
      queue_depth: { [day1]: '6', [day2]: '1' },
    });
    // The days add up to the period for SUM/COUNT; the period's peak and latest are the days' peak and last.
    const usage = await t.usage(c, period);
    expect(usage.values).toMatchObject({ api_calls: '27.5', api_requests: '5', storage_gb: '9', queue_depth: '1', active_users: '2' });
    expect(usage.duplicatesDropped).toBe(6);
  });

  it('counts a day once when the aggregator dies at the counter transaction and the message comes back', async () => {
    const c = 'cus_daily_crash';
    const { period, day1, day2, at } = twoDays();
    const state = crashOn(dynamo, 'TransactWriteItemsCommand', 1);
    await t.sendEvents([
      ...Array.from({ length: 10 }, (_, i) => cloudEvent({ subject: c, time: at(day1, i), data: { value: 5 } })),
      ...Array.from({ length: 4 }, () => cloudEvent({ subject: c, time: at(day2, 0), data: { value: 1 } })),
    ]);
    await t.drain();
    expect(state.crashed).toBe(true);
    expect((await daily(c, period)).api_calls).toEqual({ [day1]: '50', [day2]: '4' });
    expect((await t.usage(c, period)).values.api_calls).toBe('54');
  });

  it('takes a voided event out of its day: subtracted for SUM and COUNT, recomputed for MAX and LATEST, once', async () => {
    const c = 'cus_daily_void';
    const { period, day1, day2, at } = twoDays();
    await t.sendEvents([
      cloudEvent({ subject: c, id: 'dv-1', time: at(day1, 1), data: { value: 100 } }),
      cloudEvent({ subject: c, id: 'dv-2', time: at(day1, 2), data: { value: 7 } }),
      cloudEvent({ subject: c, id: 'dv-3', time: at(day2, 0), data: { value: 1 } }),
      cloudEvent({ subject: c, id: 'dv-max-1', type: 'storage_gb', time: at(day1, 1), data: { value: 80 } }),
      cloudEvent({ subject: c, id: 'dv-max-2', type: 'storage_gb', time: at(day1, 2), data: { value: 20 } }),
      cloudEvent({ subject: c, id: 'dv-max-3', type: 'storage_gb', time: at(day2, 0), data: { value: 30 } }),
      cloudEvent({ subject: c, id: 'dv-latest-1', type: 'queue_depth', time: at(day1, 1), data: { depth: 4 } }),
      cloudEvent({ subject: c, id: 'dv-latest-2', type: 'queue_depth', time: at(day1, 2), data: { depth: 9 } }),
    ]);
    await t.drain();
    for (const id of ['dv-1', 'dv-max-1', 'dv-latest-2', 'dv-1']) {
      const res = await t.request('POST', '/api/v1/events/void', { body: { customerId: c, source: 'test', id, reason: 'wrong' } });
      expect({ id, status: res.status }).toEqual({ id, status: 200 });
    }
    expect(await daily(c, period)).toEqual({
      api_calls: { [day1]: '7', [day2]: '1' },
      api_requests: { [day1]: '1', [day2]: '1' },
      storage_gb: { [day1]: '20', [day2]: '30' },
      queue_depth: { [day1]: '4' },
    });
    expect((await t.usage(c, period)).values).toMatchObject({ api_calls: '8', api_requests: '2', storage_gb: '30', queue_depth: '4' });
    const r = await reconcile(container(), { period, customerId: c });
    expect(r.drifts).toEqual([]);
  });

  it('reconciliation finds a day edited by hand and repairs it from the archive', async () => {
    const c = 'cus_daily_drift';
    const { period, day1, at } = twoDays();
    await t.sendEvents([cloudEvent({ subject: c, time: at(day1, 1), data: { value: 3 } }), cloudEvent({ subject: c, time: at(day1, 2), data: { value: 4 } })]);
    await t.drain();
    const Key = { pk: { S: `${c}|${period}` }, sk: { S: `d#api_calls#${day1}` } };
    await dynamo.send(
      new UpdateItemCommand({
        TableName: t.stack.env.USAGE_TABLE,
        Key,
        UpdateExpression: 'SET #v = :v',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':v': { N: '70' } },
      }),
    );
    const found = await reconcile(container(), { period, customerId: c });
    expect(found.drifts).toEqual([{ customerId: c, meter: 'api_calls', day: day1, counter: '70', archive: '7', drift: '-63' }]);
    const fixed = await reconcile(container(), { period, customerId: c, fix: { by: 'test' } });
    expect(fixed.drifts).toEqual([expect.objectContaining({ day: day1, fixed: true })]);
    expect((await dynamo.send(new GetItemCommand({ TableName: t.stack.env.USAGE_TABLE, Key, ConsistentRead: true }))).Item!.value).toEqual({ N: '7' });
    expect((await reconcile(container(), { period, customerId: c })).drifts).toEqual([]);
  });
});
