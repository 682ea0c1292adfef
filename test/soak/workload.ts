import { hash32, unitOf } from './random';

/**
 * What the soak's clients send: events generated from their index (so a duplicate is always the
 * very event sent first), grouped into requests of up to 1,000, 10% of them re-sent copies of
 * earlier events. Indices [0, previousEvents) fall in the previous period (sent first, then
 * invoiced), the rest in the current one.
 */
type EventType = 'api_calls' | 'compute_seconds' | 'storage_gb' | 'seats' | 'user_activity' | 'queue_depth';

export interface WorkloadShape {
  seed: number;
  /** Distinguishes this run's event ids and sources. */
  runId: string;
  customers: number;
  /** Distinct events of each period. */
  previousEvents: number;
  currentEvents: number;
  /** Both periods' time windows (ms since epoch, inclusive). */
  previous: { key: string; from: number; to: number };
  current: { key: string; from: number; to: number };
}

export interface SoakEvent {
  index: number;
  customer: string;
  period: string;
  type: EventType;
  /** The value as an exact decimal string (the user id for user_activity). */
  value: string;
  /** ISO time with milliseconds, UTC: also the LATEST ordering key. */
  time: string;
  source: string;
  id: string;
}

/** Events of one customer come in runs of this many consecutive indices: a request touches a few customers, as an API server's would. */
const RUN_LENGTH = 125;

export const customerId = (n: number) => `cus_${String(n).padStart(4, '0')}`;

/** Skewed towards low numbers: a few big customers (who cross their alert thresholds) and a long tail. */
function customerOfIndex(shape: WorkloadShape, index: number): number {
  const u = unitOf(shape.seed, 11, Math.floor(index / RUN_LENGTH));
  return Math.min(shape.customers - 1, Math.floor(shape.customers * u ** 2.2));
}

const TYPES: [EventType, number][] = [
  ['api_calls', 0.5],
  ['compute_seconds', 0.15],
  ['storage_gb', 0.1],
  ['seats', 0.05],
  ['user_activity', 0.08],
  ['queue_depth', 0.12],
];

function typeOf(u: number): EventType {
  let acc = 0;
  for (const [type, share] of TYPES) {
    acc += share;
    if (u < acc) return type;
  }
  return 'api_calls';
}

/** An exact decimal string of `scaled / 10^places`, without trailing zeros. */
function decimalText(scaled: bigint, places: number): string {
  const negative = scaled < 0n;
  const digits = (negative ? -scaled : scaled).toString().padStart(places + 1, '0');
  const int = digits.slice(0, digits.length - places);
  const frac = digits.slice(digits.length - places).replace(/0+$/, '');
  return `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

function valueOf(type: EventType, h: number): string {
  switch (type) {
    case 'api_calls':
      // Whole calls, now and then a half (a partial unit some products meter).
      return h % 10 === 0 ? `${(h >>> 4) % 40}.5` : String(1 + ((h >>> 4) % 40));
    case 'compute_seconds':
      return decimalText(BigInt(1 + (h % 30_000)), 3);
    case 'storage_gb':
      return decimalText(BigInt(h % 20_000), 2);
    case 'seats':
      return String(1 + (h % 12));
    case 'user_activity':
      return `user-${h % 60}`;
    case 'queue_depth':
      // LATEST: may go down and below zero.
      return String((h % 600) - 50);
  }
}

export function eventAt(shape: WorkloadShape, index: number): SoakEvent {
  const window = index < shape.previousEvents ? shape.previous : shape.current;
  const type = typeOf(unitOf(shape.seed, 12, index));
  const h = hash32(shape.seed, 13, index);
  const at = window.from + Math.floor(unitOf(shape.seed, 14, index) * (window.to - window.from + 1));
  return {
    index,
    customer: customerId(customerOfIndex(shape, index)),
    period: window.key,
    type,
    value: valueOf(type, h),
    time: new Date(at).toISOString(),
    // Fixed width, so that (time, source, id) order is the order of their concatenation too.
    source: `soak-${shape.runId}-s${index % 5}`,
    id: `e${String(index).padStart(10, '0')}`,
  };
}

/** The event as a client sends it: values as JSON numbers when a double carries them exactly, else as strings. */
export function wireEvent(e: SoakEvent): Record<string, unknown> {
  let data: Record<string, unknown>;
  if (e.type === 'user_activity') data = { userId: e.value };
  else {
    const asNumber = /^-?\d+$/.test(e.value) && e.index % 2 === 0;
    const value = asNumber ? Number(e.value) : e.value;
    data = e.type === 'queue_depth' ? { depth: value } : { value };
  }
  return { specversion: '1.0', id: e.id, source: e.source, type: e.type, subject: e.customer, time: e.time, data };
}

export interface PlannedRequest {
  /** 1, 2, ... in the order requests were planned. */
  n: number;
  indices: number[];
  duplicates: number;
}

/**
 * Hands out requests to the clients: new events in index order plus about `duplicateRate` of
 * copies of events planned earlier (in other requests), shuffled; half of the requests of 1,000, the others of 1 to 999.
 */
export class RequestPlanner {
  private next: number;
  private planned = 0;
  constructor(
    private readonly shape: WorkloadShape,
    readonly phase: 'previous' | 'current',
    private readonly opts: { maxRequestEvents: number; duplicateRate: number; random: () => number },
    private readonly firstIndex = phase === 'previous' ? 0 : shape.previousEvents,
  ) {
    this.next = firstIndex;
  }

  private get end(): number {
    return this.phase === 'previous' ? this.shape.previousEvents : this.shape.previousEvents + this.shape.currentEvents;
  }

  take(): PlannedRequest | undefined {
    if (this.next >= this.end) return undefined;
    const r = this.opts.random;
    const max = this.opts.maxRequestEvents;
    const size = r() < 0.5 ? max : 1 + Math.floor(r() * (max - 1));
    // Copies of events already planned (a request never copies its own new events).
    const duplicates = this.next === 0 ? 0 : Math.round(size * this.opts.duplicateRate);
    const fresh = Math.min(size - duplicates, this.end - this.next);
    const indices: number[] = [];
    for (let i = 0; i < fresh; i++) indices.push(this.next + i);
    for (let i = 0; i < duplicates; i++) indices.push(Math.floor(r() * this.next));
    this.next += fresh;
    for (let i = indices.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [indices[i], indices[j]] = [indices[j]!, indices[i]!];
    }
    return { n: ++this.planned, indices, duplicates };
  }
}
