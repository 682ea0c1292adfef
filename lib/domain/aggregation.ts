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
 */
export interface CounterRef {
  customerId: string;
  period: string;
  meter: string;
}
export interface AdditiveChange extends CounterRef {
  delta: string;
  events: number;
}
export interface MaxChange extends CounterRef {
  value: string;
}
export interface LatestChange extends CounterRef {
  value: string;
  /** Event time, then (source, id): the total order that decides which reading is the latest. */
  order: string;
}
export interface UniqueChange extends CounterRef {
  values: string[];
}
export interface DuplicateTally {
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
}

export const counterId = (c: CounterRef) => `${c.customerId}\u0001${c.period}\u0001${c.meter}`;
export const eventKey = (e: Pick<MeteredEvent, 'source' | 'id'>) => `${e.source}\u0001${e.id}`;
export const latestOrder = (e: MeteredEvent) => `${e.time}\u0001${e.source}\u0001${e.id}`;

/** DynamoDB compares strings by their UTF-8 bytes; so must we, or LATEST could disagree with the store. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Splits a message's events into first occurrences and in-message repeats of the same (source, id). */
export function distinctEvents(events: MeteredEvent[]): { distinct: MeteredEvent[]; repeats: MeteredEvent[] } {
  const seen = new Set<string>();
  const distinct: MeteredEvent[] = [];
  const repeats: MeteredEvent[] = [];
  for (const e of events) {
    const k = eventKey(e);
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

export function planAggregation(owned: MeteredEvent[], duplicates: MeteredEvent[], catalog: CatalogIndex): AggregationPlan {
  const additive = new Map<string, AdditiveChange & { sum: InstanceType<typeof Q> }>();
  const max = new Map<string, MaxChange>();
  const latest = new Map<string, LatestChange>();
  const unique = new Map<string, CounterRef & { set: Set<string> }>();

  for (const e of owned) {
    for (const [slug, value] of Object.entries(e.readings)) {
      const meter = catalog.meter(slug);
      if (!meter) throw new UnknownMeterError(slug);
      const ref: CounterRef = { customerId: e.customerId, period: e.period, meter: slug };
      const id = counterId(ref);
      const kind: Aggregation = meter.aggregation;
      switch (kind) {
        case 'SUM':
        case 'COUNT': {
          const cur = additive.get(id) ?? { ...ref, delta: '0', events: 0, sum: new Q(0) };
          cur.sum = cur.sum.plus(value);
          cur.events += 1;
          additive.set(id, cur);
          break;
        }
        case 'MAX': {
          const cur = max.get(id);
          if (!cur || compareQuantities(value, cur.value) > 0) max.set(id, { ...ref, value });
          break;
        }
        case 'LATEST': {
          const order = latestOrder(e);
          const cur = latest.get(id);
          if (!cur || compareUtf8(order, cur.order) > 0) latest.set(id, { ...ref, value, order });
          break;
        }
        case 'UNIQUE_COUNT': {
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
  return {
    additive: [...additive.values()].map(({ sum, ...c }) => ({ ...c, delta: canonical(sum) })).sort(byId),
    max: [...max.values()].sort(byId),
    latest: [...latest.values()].sort(byId),
    unique: [...unique.values()].map(({ set, ...c }) => ({ ...c, values: [...set].sort(compareUtf8) })).sort(byId),
    duplicates: [...dupes.values()].sort((a, b) => compareUtf8(`${a.customerId}\u0001${a.period}`, `${b.customerId}\u0001${b.period}`)),
  };
}
