import { countBatch } from '../../lib/app/aggregate';
import type { EventArchive, UsageLedger } from '../../lib/app/ports';
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
    claim: async (_batch, events) => events.map((e) => (owned.has(e.id) ? 'owned' : 'duplicate')),
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
