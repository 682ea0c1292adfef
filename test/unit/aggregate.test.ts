import { countBatch } from '../../lib/app/aggregate';
import type { EventArchive, UsageLedger } from '../../lib/app/ports/usage';
import type { AggregationPlan } from '../../lib/domain/aggregation';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import type { MeteredEvent } from '../../lib/domain/events';
import catalogJson from '../../catalog/catalog.json';

/** What the aggregator reports per message, for its metrics: counted and duplicate events by meter (never by customer). */
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const event = (id: string, readings: Record<string, string>, customerId = 'cus_1'): MeteredEvent => ({
  source: 's',
  id,
  type: Object.keys(readings)[0]!,
  customerId,
  time: '2026-11-20T10:00:00.000000000Z',
  period: '2026-11',
  readings,
});

it('counts owned and duplicate events per meter', async () => {
  const owned = new Set(['a', 'b', 'c']);
  const ledger: UsageLedger = {
    claim: async (batch, events) => events.map((e) => (owned.has(e.id) ? batch : 'another-batch')),
    apply: async () => undefined,
    read: async () => ({ values: {}, duplicatesDropped: 0 }),
    readDaily: async () => ({}),
    periodsWithUsage: async () => [],
  };
  const archive = { put: async () => undefined } as unknown as EventArchive;
  const out = await countBatch(
    { ledger, catalog, archive },
    {
      v: 1,
      batchId: 'b1',
      receivedAt: '2026-11-20T10:00:01Z',
      events: [
        event('a', { api_calls: '5' }),
        event('b', { api_calls: '1' }, 'cus_2'),
        event('c', { seats: '4' }),
        event('d', { api_calls: '1' }), // claimed by another batch
        event('a', { api_calls: '5' }), // repeated inside the message
      ],
    },
  );
  expect(out).toMatchObject({ counted: 3, duplicates: 2 });
  expect(out.byMeter).toEqual([
    { meter: 'api_calls', counted: 2, duplicates: 2 },
    { meter: 'seats', counted: 1, duplicates: 0 },
  ]);
});

describe('a deploy that adds a meter: ingest knows it, this aggregator does not yet', () => {
  const gpus = { slug: 'gpus', displayName: 'GPUs', unit: 'gpus', eventType: 'gpus', aggregation: 'SUM', valueProperty: '$.value' };
  const withGpus = new CatalogIndex(parseCatalog({ ...catalogJson, meters: [...catalogJson.meters, gpus] }));

  /** Claims keep their first holder; a batch's plan is applied once (the adapters' semantics, in memory). */
  function memoryLedger() {
    const holders = new Map<string, string>();
    const applied = new Map<string, AggregationPlan>();
    let crashBeforeApply = false;
    const ledger: UsageLedger = {
      claim: async (batchId, events) =>
        events.map((e) => {
          const k = `${e.source}\u0001${e.id}`;
          if (!holders.has(k)) holders.set(k, batchId);
          return holders.get(k)!;
        }),
      apply: async (batchId, plan) => {
        if (crashBeforeApply) throw new Error('injected: the instance died before the counters moved');
        if (!applied.has(batchId)) applied.set(batchId, plan);
      },
      read: async () => ({ values: {}, duplicatesDropped: 0 }),
      readDaily: async () => ({}),
      periodsWithUsage: async () => [],
    };
    /** The counters as the applied plans leave them: customer/meter -> sum. */
    const counted = () => {
      const out: Record<string, number> = {};
      for (const plan of applied.values())
        for (const c of plan.additive) out[`${c.customerId}/${c.meter}`] = (out[`${c.customerId}/${c.meter}`] ?? 0) + Number(c.delta);
      return out;
    };
    return { ledger, counted, holders, crash: (on: boolean) => (crashBeforeApply = on) };
  }
  const archive = { put: jest.fn(async () => undefined) } as unknown as EventArchive;
  const message = (batchId: string, events: MeteredEvent[]) => ({ v: 1 as const, batchId, receivedAt: '2026-11-20T10:00:01Z', events });
  const calls = event('big', { api_calls: '50000' }, 'cus_other');
  const gpu = event('g1', { gpus: '2' }, 'cus_new');

  it("counts the rest of the message at once and leaves the new meter's event to a later delivery, unclaimed by the message", async () => {
    const m = memoryLedger();
    const first = await countBatch({ ledger: m.ledger, catalog, archive }, message('b1', [calls, gpu]));
    expect(first).toMatchObject({ counted: 1, duplicates: 0, deferred: 1 });
    expect(m.counted()).toEqual({ 'cus_other/api_calls': 50000 });
    expect(m.holders.get('s\u0001g1')).toBe('b1~deferred'); // reserved for the deferred part, not held by the message
    // Delivered again while the aggregator is still the old one: nothing moves, still deferred.
    expect(await countBatch({ ledger: m.ledger, catalog, archive }, message('b1', [calls, gpu]))).toMatchObject({ deferred: 1 });
    // The new aggregator: the deferred event counts, once; the rest is not counted again.
    const later = await countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b1', [calls, gpu]));
    expect(later).toMatchObject({ deferred: 0, counted: 2 });
    await countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b1', [calls, gpu]));
    expect(m.counted()).toEqual({ 'cus_other/api_calls': 50000, 'cus_new/gpus': 2 });
  });

  it("drops a client's resend of the deferred event as a duplicate, and counts the event once when its meter is known", async () => {
    const m = memoryLedger();
    await countBatch({ ledger: m.ledger, catalog, archive }, message('b1', [calls, gpu]));
    expect(await countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b2', [gpu]))).toMatchObject({ counted: 0, duplicates: 1 });
    await countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b1', [calls, gpu]));
    expect(m.counted()).toEqual({ 'cus_other/api_calls': 50000, 'cus_new/gpus': 2 });
  });

  it('never counts part of a message twice or loses it when aggregators of both catalogs take turns on it', async () => {
    const m = memoryLedger();
    // The new aggregator claims everything for the message, then dies before counting.
    m.crash(true);
    await expect(countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b1', [calls, gpu]))).rejects.toThrow(/injected/);
    m.crash(false);
    // The old one gets the redelivery: it cannot count an event the message holds, so it counts nothing.
    await expect(countBatch({ ledger: m.ledger, catalog, archive }, message('b1', [calls, gpu]))).rejects.toThrow(/gpus/);
    expect(m.counted()).toEqual({});
    await countBatch({ ledger: m.ledger, catalog: withGpus, archive }, message('b1', [calls, gpu]));
    expect(m.counted()).toEqual({ 'cus_other/api_calls': 50000, 'cus_new/gpus': 2 });
  });

  it('a deployment that removed a meter still counts the events ingest accepted for it (the published catalog knows it)', async () => {
    const m = memoryLedger();
    const removed = new CatalogIndex(
      parseCatalog({
        ...catalogJson,
        meters: catalogJson.meters.filter((x) => x.slug !== 'seats'),
        plans: catalogJson.plans.map((p) => ({ ...p, charges: p.charges.filter((c) => c.meter !== 'seats') })),
      }),
      parseCatalog(catalogJson),
    );
    const seat = event('s1', { seats: '4' }, 'cus_seats');
    expect(await countBatch({ ledger: m.ledger, catalog: removed, archive }, message('b1', [seat]))).toMatchObject({ counted: 1, deferred: 0 });
  });
});
