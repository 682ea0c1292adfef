import { compareEvents, compareUtf8, eventDay, latestOrder } from './aggregation';
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
/** The meters a key may name: at most this many characters of slugs, else `all` (the object must be read to know). */
const MAX_METERS_IN_KEY = 200;
/**
 * `events/<customer>/<period>/<batchId>-<group>~<meter>,<meter>.ndjson.gz`: the key names the
 * meters its events have readings for, so a listing filtered on a meter reads only the objects
 * that hold it (objects written before keys named meters have no `~...` part: they may hold any).
 */
export const archiveKey = (customerId: string, period: string, batchId: string, index: number, meters: string[]) => {
  const named = [...new Set(meters)].sort().join(',');
  return `${groupKeyPrefix(customerId, period, batchId, index)}~${named.length <= MAX_METERS_IN_KEY ? named : 'all'}.ndjson.gz`;
};
/** What every key of one group starts with, whatever meters it names: where a void looks for the group's object. */
export const groupKeyPrefix = (customerId: string, period: string, batchId: string, index: number) => `${archivePrefix(customerId, period)}${batchId}-${index}`;
/** Whether an object may hold readings of `meter`, from its key alone. */
export function keyMayHold(key: string, meter: string): boolean {
  const m = /~([a-z0-9_,]+)\.ndjson\.gz$/.exec(key);
  return !m || m[1] === 'all' || m[1]!.split(',').includes(meter);
}

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
    const group = groups.get(pair) ?? { customerId: e.customerId, period: e.period, index: n, key: '', events: [] };
    group.events.push({ source: e.source, id: e.id, type: e.type, time: e.time, subject: e.customerId, readings: e.readings, batchId });
    groups.set(pair, group);
  }
  for (const g of groups.values()) {
    g.events.sort(compareEvents);
    g.key = archiveKey(
      g.customerId,
      g.period,
      batchId,
      g.index,
      g.events.flatMap((e) => Object.keys(e.readings)),
    );
  }
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

/** MAX, SUM/COUNT and LATEST readings folded into one value per key (a meter, or a meter's day). */
class Fold {
  readonly sums = new Map<string, Quantity>();
  readonly latest = new Map<string, { order: string; value: string }>();

  add(key: string, aggregation: 'SUM' | 'COUNT' | 'MAX' | 'LATEST', value: string, order: string): void {
    switch (aggregation) {
      case 'SUM':
      case 'COUNT':
        this.sums.set(key, (this.sums.get(key) ?? new Q(0)).plus(value));
        break;
      case 'MAX': {
        const cur = this.sums.get(key);
        if (cur === undefined || new Q(value).gt(cur)) this.sums.set(key, new Q(value));
        break;
      }
      case 'LATEST': {
        const cur = this.latest.get(key);
        if (!cur || compareUtf8(order, cur.order) > 0) this.latest.set(key, { order, value });
        break;
      }
    }
  }

  values(): Map<string, string> {
    return new Map([...[...this.sums].map(([k, v]) => [k, canonical(v)] as const), ...[...this.latest].map(([k, v]) => [k, v.value] as const)]);
  }
}

/**
 * A period's counters recomputed from its archived events, leaving out the voided ones: the value
 * each meter's counter must hold (SUM and COUNT add, MAX takes the largest, LATEST the reading with
 * the latest (time, source, id), UNIQUE_COUNT the number of distinct values), and the same per UTC
 * day of the event time for every meter but UNIQUE_COUNT (`days`: meter -> day -> value). Meters and
 * days without any reading are absent.
 */
export function recount(catalog: CatalogIndex, events: Iterable<ArchivedEvent>, voided: (e: Pick<ArchivedEvent, 'source' | 'id'>) => boolean = () => false) {
  const period = new Fold();
  const daily = new Fold();
  const distinct = new Map<string, Set<string>>();
  for (const e of events) {
    if (voided(e)) continue;
    const day = eventDay(e);
    const order = latestOrder(e);
    for (const [slug, value] of Object.entries(e.readings)) {
      const meter = catalog.meter(slug);
      if (!meter) continue; // a meter removed from the catalog since: nothing counts it any more
      if (meter.aggregation === 'UNIQUE_COUNT') {
        distinct.set(slug, (distinct.get(slug) ?? new Set()).add(value));
        continue;
      }
      period.add(slug, meter.aggregation, value, order);
      daily.add(`${slug}\u0001${day}`, meter.aggregation, value, order);
    }
  }
  const values: Record<string, string> = Object.fromEntries(period.values());
  for (const [slug, set] of distinct) values[slug] = String(set.size);
  const days: Record<string, Record<string, string>> = {};
  for (const [key, v] of daily.values()) {
    const [slug, day] = key.split('\u0001') as [string, string];
    (days[slug] ??= {})[day] = v;
  }
  return {
    values,
    latest: Object.fromEntries([...period.latest].map(([slug, v]) => [slug, v.order])),
    distinct,
    days,
    /** LATEST meters: meter -> day -> the order of that day's latest reading. */
    latestDays: [...daily.latest].reduce<Record<string, Record<string, string>>>((acc, [key, v]) => {
      const [slug, day] = key.split('\u0001') as [string, string];
      (acc[slug] ??= {})[day] = v.order;
      return acc;
    }, {}),
  };
}
