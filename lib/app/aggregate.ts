import { distinctEvents, planAggregation } from '../domain/aggregation';
import { archiveGroups, groupIndex } from '../domain/archive';
import type { CatalogIndex } from '../domain/catalog';
import type { MeteredEvent } from '../domain/events';
import type { EventArchive, UsageBatch, UsageLedger } from './ports';

export interface BatchOutcome {
  batchId: string;
  events: number;
  counted: number;
  duplicates: number;
  /** The (customer, period) pairs whose counters this batch owns changes to (alerts look at them). */
  touched: { customerId: string; period: string }[];
  /** Per meter (by slug), events counted and dropped as duplicates: an event counts for each meter it has a reading for. */
  byMeter: { meter: string; counted: number; duplicates: number }[];
}

function tallyByMeter(owned: MeteredEvent[], duplicates: MeteredEvent[]): BatchOutcome['byMeter'] {
  const tally = new Map<string, { meter: string; counted: number; duplicates: number }>();
  const add = (events: MeteredEvent[], field: 'counted' | 'duplicates') => {
    for (const e of events) {
      for (const meter of Object.keys(e.readings)) {
        const t = tally.get(meter) ?? { meter, counted: 0, duplicates: 0 };
        t[field] += 1;
        tally.set(meter, t);
      }
    }
  };
  add(owned, 'counted');
  add(duplicates, 'duplicates');
  return [...tally.values()].sort((a, b) => (a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0));
}

/**
 * Counts one queue message exactly once (docs/exactly-once.md):
 * 1. claim every distinct event for this batch (a conditional marker per (source, id), which also
 *    records where the event is archived: customer, period and group);
 * 2. archive the events this batch owns, one object per (customer, period) group, before any
 *    counter moves, so that an archived object exists for everything counted;
 * 3. plan the counter changes from the owned events and apply them under the batch's "applied" marker.
 * Any failure leaves the message to SQS: a redelivery re-claims its own markers, rewrites the same
 * archive objects (same content, same keys) and either finds the plan applied or applies it now.
 */
export async function countBatch(deps: { ledger: UsageLedger; catalog: CatalogIndex; archive: EventArchive }, batch: UsageBatch): Promise<BatchOutcome> {
  const { distinct, repeats } = distinctEvents(batch.events);
  const groups = groupIndex(batch.events);
  const outcomes = await deps.ledger.claim(batch.batchId, distinct, (e) => groups.get(`${e.customerId}\u0001${e.period}`)!);
  const owned = distinct.filter((_, i) => outcomes[i] === 'owned');
  const duplicates = [...distinct.filter((_, i) => outcomes[i] === 'duplicate'), ...repeats];
  await Promise.all(archiveGroups(batch.batchId, batch.events, owned).map((g) => deps.archive.put(g)));
  await deps.ledger.apply(batch.batchId, planAggregation(owned, duplicates, deps.catalog));
  const touched = new Map(owned.map((e) => [`${e.customerId}\u0001${e.period}`, { customerId: e.customerId, period: e.period }]));
  return {
    batchId: batch.batchId,
    events: batch.events.length,
    counted: owned.length,
    duplicates: duplicates.length,
    touched: [...touched.values()],
    byMeter: tallyByMeter(owned, duplicates),
  };
}
