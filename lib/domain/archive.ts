import { compareUtf8, eventKey, latestOrder } from './aggregation';
import type { CatalogIndex } from './catalog';
import type { MeteredEvent } from './events';
import { canonical, Q, type Quantity } from './quantity';

/**
 * The event archive: every event the aggregator counts, kept as the evidence behind the counters.
 * One object per (queue message, customer, period) group, written before the counters move, with
 * content that depends only on the message: a redelivery rewrites the same bytes at the same key.
 * Counters can then always be recomputed from the archive (minus voided events), which is what the
 * void of a MAX/LATEST/UNIQUE_COUNT event and the reconciliation do.
 */

/** One line of an archive object. */
export interface ArchivedEvent {
  source: string;
  id: string;
  type: string;
  time: string;
  subject: string;
  /** meter slug -> the reading that was counted. */
  readings: Record<string, string>;
  batchId: string;
}

export interface ArchiveGroup {
  customerId: string;
  period: string;
  /** The group's position among the message's (customer, period) pairs: part of the key. */
  index: number;
  key: string;
  events: ArchivedEvent[];
}

export const archivePrefix = (customerId: string, period: string) => `events/${customerId}/${period}/`;
export const archiveKey = (customerId: string, period: string, batchId: string, index: number) =>
  `${archivePrefix(customerId, period)}${batchId}-${index}.ndjson.gz`;

/**
 * The (customer, period) pairs of a message in a fixed order, so that every event's group index
 * is known before it is claimed (the claim marker records it, and a void finds the object by it).
 */
export function groupIndex(events: MeteredEvent[]): Map<string, number> {
  const pairs = [...new Set(events.map((e) => `${e.customerId}\u0001${e.period}`))].sort(compareUtf8);
  return new Map(pairs.map((p, i) => [p, i]));
}

/** The archive objects of a message: the events it owns, grouped, each group sorted by (source, id). */
export function archiveGroups(batchId: string, all: MeteredEvent[], owned: MeteredEvent[]): ArchiveGroup[] {
  const index = groupIndex(all);
  const groups = new Map<string, ArchiveGroup>();
  for (const e of owned) {
    const pair = `${e.customerId}\u0001${e.period}`;
    const n = index.get(pair)!;
    const group = groups.get(pair) ?? { customerId: e.customerId, period: e.period, index: n, key: archiveKey(e.customerId, e.period, batchId, n), events: [] };
    group.events.push({ source: e.source, id: e.id, type: e.type, time: e.time, subject: e.customerId, readings: e.readings, batchId });
    groups.set(pair, group);
  }
  for (const g of groups.values()) g.events.sort((a, b) => compareUtf8(eventKey(a), eventKey(b)));
  return [...groups.values()].sort((a, b) => a.index - b.index);
}

/** One event per line, keys in a fixed order: the same events always give the same bytes. */
export function toNdjson(events: ArchivedEvent[]): string {
  return events
    .map((e) =>
      JSON.stringify({ source: e.source, id: e.id, type: e.type, time: e.time, subject: e.subject, readings: sortedReadings(e.readings), batchId: e.batchId }),
    )
    .join('\n')
    .concat('\n');
}

export function fromNdjson(text: string): ArchivedEvent[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ArchivedEvent);
}

function sortedReadings(readings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(readings).sort(([a], [b]) => compareUtf8(a, b)));
}

/**
 * A period's counters recomputed from its archived events, leaving out the voided ones: the value
 * each meter's counter must hold (SUM and COUNT add, MAX takes the largest, LATEST the reading with
 * the latest (time, source, id), UNIQUE_COUNT the number of distinct values). Meters without any
 * reading are absent.
 */
export function recount(catalog: CatalogIndex, events: Iterable<ArchivedEvent>, voided: (e: Pick<ArchivedEvent, 'source' | 'id'>) => boolean = () => false) {
  const sums = new Map<string, Quantity>();
  const latest = new Map<string, { order: string; value: string }>();
  const distinct = new Map<string, Set<string>>();
  for (const e of events) {
    if (voided(e)) continue;
    for (const [slug, value] of Object.entries(e.readings)) {
      const meter = catalog.meter(slug);
      if (!meter) continue; // a meter removed from the catalog since: nothing counts it any more
      switch (meter.aggregation) {
        case 'SUM':
        case 'COUNT':
          sums.set(slug, (sums.get(slug) ?? new Q(0)).plus(value));
          break;
        case 'MAX': {
          const cur = sums.get(slug);
          if (cur === undefined || new Q(value).gt(cur)) sums.set(slug, new Q(value));
          break;
        }
        case 'LATEST': {
          const order = latestOrder({ ...e, customerId: e.subject, period: '', readings: e.readings });
          const cur = latest.get(slug);
          if (!cur || compareUtf8(order, cur.order) > 0) latest.set(slug, { order, value });
          break;
        }
        case 'UNIQUE_COUNT':
          distinct.set(slug, (distinct.get(slug) ?? new Set()).add(value));
          break;
      }
    }
  }
  const values: Record<string, string> = {};
  for (const [slug, v] of sums) values[slug] = canonical(v);
  for (const [slug, v] of latest) values[slug] = v.value;
  for (const [slug, set] of distinct) values[slug] = String(set.size);
  return { values, latest: Object.fromEntries([...latest].map(([slug, v]) => [slug, v.order])), distinct };
}
