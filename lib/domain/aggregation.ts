import type { Aggregation, CatalogIndex } from './catalog';
import type { MeteredEvent } from './events';
import { Q, canonical, compareQuantities } from './quantity';

/**
 * Turns the events one queue message owns into the counter changes to apply. Pure: the adapter
 * decides how each kind is written exactly once (see docs/exactly-once.md).
 *  - SUM/COUNT are additive: one delta per counter, applied together with the message's
 *    "applied" marker in a transaction.
 *  - MAX and LATEST are idempotent by nature (a conditional "set if greater/later").
 *  - UNIQUE_COUNT keeps one marker per distinct value and counts the markers it creates.
 * Beside each period counter, SUM/COUNT/MAX/LATEST keep a counter per UTC day of the event time
 * (the usage page's chart), planned the same way and written under the same guards. UNIQUE_COUNT
 * has no daily series: a distinct count per day would need a marker per value per day
 * (docs/portal.md).
 */
export interface CounterRef {
  customerId: string;
  period: string;
  meter: string;
}
interface AdditiveChange extends CounterRef {
  delta: string;
  events: number;
}
interface MaxChange extends CounterRef {
  value: string;
}
interface LatestChange extends CounterRef {
  value: string;
  /** Event time, then (source, id): the total order that decides which reading is the latest. */
  order: string;
}
interface UniqueChange extends CounterRef {
  values: string[];
}
/** A day's counter: `day` is the UTC date (YYYY-MM-DD) of the event time, inside the period. */
type Daily<T extends CounterRef> = T & { day: string };
interface DailyChanges {
  additive: Daily<AdditiveChange>[];
  max: Daily<MaxChange>[];
  latest: Daily<LatestChange>[];
}
interface DuplicateTally {
  customerId: string;
  period: string;
  count: number;
}
export interface AggregationPlan {
  additive: AdditiveChange[];
  max: MaxChange[];
  latest: LatestChange[];
  unique: UniqueChange[];
  duplicates: DuplicateTally[];
  daily: DailyChanges;
}

const counterId = (c: CounterRef & { day?: string }) => `${c.customerId}\u0001${c.period}\u0001${c.meter}${c.day === undefined ? '' : `\u0001${c.day}`}`;
/** The UTC day of a normalized event time (`2026-11-23T18:00:00.000000000Z` -> `2026-11-23`). */
export const eventDay = (e: Pick<MeteredEvent, 'time'>) => e.time.slice(0, 10);
/** An event's (source, id) as one string, for maps and sets within one customer (JSON: two pairs never share one). */
export const eventKey = (e: Pick<MeteredEvent, 'source' | 'id'>) => JSON.stringify([e.source, e.id]);
/** The de-duplication identity: (customer, source, id). One customer's ids never meet another's. */
export const claimIdentity = (e: Pick<MeteredEvent, 'customerId' | 'source' | 'id'>) => JSON.stringify([e.customerId, e.source, e.id]);
/** Events in (source, id) order, each compared as a string (archive objects, listings). */
export const compareEvents = (a: Pick<MeteredEvent, 'source' | 'id'>, b: Pick<MeteredEvent, 'source' | 'id'>) =>
  compareUtf8(a.source, b.source) || compareUtf8(a.id, b.id);
/**
 * The order key of a LATEST reading: the tuple (time, source, id), each compared as a string of UTF-8
 * code units (the order DynamoDB compares strings in), first time, then source, then id. It is one
 * string because the store compares one attribute in its condition, so each component is escaped
 * (U+0000 -> U+0000 U+0002) and ended with U+0000 U+0001, which sorts below anything a component can
 * continue with: comparing two keys gives exactly the tuple order, and two different tuples never
 * share a key. A plain join with a separator did neither: ids may contain any character
 * (docs/exactly-once.md, "LATEST").
 */
export const latestOrder = (e: Pick<MeteredEvent, 'time' | 'source' | 'id'>) => `${orderPart(e.time)}${orderPart(e.source)}${orderPart(e.id)}`;
const orderPart = (s: string) => `${s.replace(/\u0000/g, '\u0000\u0002')}\u0000\u0001`;

/** DynamoDB compares strings by their UTF-8 bytes; so must we, or LATEST could disagree with the store. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Splits a message's events into first occurrences and in-message repeats of the same (customer, source, id). */
export function distinctEvents(events: MeteredEvent[]): { distinct: MeteredEvent[]; repeats: MeteredEvent[] } {
  const seen = new Set<string>();
  const distinct: MeteredEvent[] = [];
  const repeats: MeteredEvent[] = [];
  for (const e of events) {
    const k = claimIdentity(e);
    if (seen.has(k)) repeats.push(e);
    else {
      seen.add(k);
      distinct.push(e);
    }
  }
  return { distinct, repeats };
}

export class UnknownMeterError extends Error {
  constructor(readonly meter: string) {
    super(`meter "${meter}" is not in the catalog`);
    this.name = 'UnknownMeterError';
  }
}

type Sum<T> = T & { sum: InstanceType<typeof Q> };

/** One reading into a SUM/COUNT counter. */
function add<T extends AdditiveChange>(into: Map<string, Sum<T>>, ref: Omit<T, 'delta' | 'events'>, value: string): void {
  const id = counterId(ref);
  const cur = into.get(id) ?? ({ ...ref, delta: '0', events: 0, sum: new Q(0) } as Sum<T>);
  cur.sum = cur.sum.plus(value);
  cur.events += 1;
  into.set(id, cur);
}
/** One reading into a MAX counter: the largest by decimal value. */
function peak<T extends MaxChange>(into: Map<string, T>, change: T): void {
  const id = counterId(change);
  const cur = into.get(id);
  if (!cur || compareQuantities(change.value, cur.value) > 0) into.set(id, change);
}
/** One reading into a LATEST counter: the latest by (time, source, id). */
function later<T extends LatestChange>(into: Map<string, T>, change: T): void {
  const id = counterId(change);
  const cur = into.get(id);
  if (!cur || compareUtf8(change.order, cur.order) > 0) into.set(id, change);
}

export function planAggregation(owned: MeteredEvent[], duplicates: MeteredEvent[], catalog: CatalogIndex): AggregationPlan {
  const additive = new Map<string, Sum<AdditiveChange>>();
  const max = new Map<string, MaxChange>();
  const latest = new Map<string, LatestChange>();
  const unique = new Map<string, CounterRef & { set: Set<string> }>();
  const daily = {
    additive: new Map<string, Sum<Daily<AdditiveChange>>>(),
    max: new Map<string, Daily<MaxChange>>(),
    latest: new Map<string, Daily<LatestChange>>(),
  };

  for (const e of owned) {
    const day = eventDay(e);
    for (const [slug, value] of Object.entries(e.readings)) {
      const meter = catalog.meter(slug);
      if (!meter) throw new UnknownMeterError(slug);
      const ref: CounterRef = { customerId: e.customerId, period: e.period, meter: slug };
      const kind: Aggregation = meter.aggregation;
      switch (kind) {
        case 'SUM':
        case 'COUNT':
          add(additive, ref, value);
          add(daily.additive, { ...ref, day }, value);
          break;
        case 'MAX':
          peak(max, { ...ref, value });
          peak(daily.max, { ...ref, day, value });
          break;
        case 'LATEST': {
          const order = latestOrder(e);
          later(latest, { ...ref, value, order });
          later(daily.latest, { ...ref, day, value, order });
          break;
        }
        case 'UNIQUE_COUNT': {
          const id = counterId(ref);
          const cur = unique.get(id) ?? { ...ref, set: new Set<string>() };
          cur.set.add(value);
          unique.set(id, cur);
          break;
        }
        default: {
          const never: never = kind;
          throw new Error(`unhandled aggregation ${String(never)}`);
        }
      }
    }
  }

  const dupes = new Map<string, DuplicateTally>();
  for (const e of duplicates) {
    const k = `${e.customerId}\u0001${e.period}`;
    const cur = dupes.get(k) ?? { customerId: e.customerId, period: e.period, count: 0 };
    cur.count += 1;
    dupes.set(k, cur);
  }

  // Sorted output: a redelivered message must rebuild exactly the same transactions.
  const byId = <T extends CounterRef>(a: T, b: T) => compareUtf8(counterId(a), counterId(b));
  const sums = <T extends AdditiveChange>(m: Map<string, Sum<T>>): T[] =>
    [...m.values()].map(({ sum, ...c }) => ({ ...c, delta: canonical(sum) }) as unknown as T).sort(byId);
  return {
    additive: sums(additive),
    max: [...max.values()].sort(byId),
    latest: [...latest.values()].sort(byId),
    unique: [...unique.values()].map(({ set, ...c }) => ({ ...c, values: [...set].sort(compareUtf8) })).sort(byId),
    duplicates: [...dupes.values()].sort((a, b) => compareUtf8(`${a.customerId}\u0001${a.period}`, `${b.customerId}\u0001${b.period}`)),
    daily: { additive: sums(daily.additive), max: [...daily.max.values()].sort(byId), latest: [...daily.latest.values()].sort(byId) },
  };
}
