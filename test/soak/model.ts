import type { SoakEvent } from './workload';

/**
 * The soak's own account of what must be counted, written apart from the product: every distinct
 * (source, id) the clients got a 202 for, folded per (customer, period, meter) with exact decimals
 * (BigInt, 12 decimal places), and the bounds on `duplicatesDropped` that the clients' requests
 * allow.
 */
const PLACES = 12;
const ONE = 10n ** BigInt(PLACES);

export function scaled(text: string): bigint {
  const negative = text.startsWith('-');
  const [int = '0', frac = ''] = (negative ? text.slice(1) : text).split('.');
  const v = BigInt(int) * ONE + BigInt((frac + '0'.repeat(PLACES)).slice(0, PLACES));
  return negative ? -v : v;
}

function unscaled(v: bigint): string {
  const negative = v < 0n;
  const abs = negative ? -v : v;
  const frac = (abs % ONE).toString().padStart(PLACES, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / ONE}${frac ? `.${frac}` : ''}`;
}

/** The meters of the test catalog (test/fixtures/catalog.json) and what feeds them. */
export const METERS = ['api_calls', 'api_requests', 'compute_seconds', 'storage_gb', 'seats', 'active_users', 'queue_depth'] as const;
export type Meter = (typeof METERS)[number];

interface Counters {
  /** Distinct events, of every type. */
  events: number;
  api_calls: bigint;
  api_requests: bigint;
  compute_seconds: bigint;
  storage_gb: bigint | undefined;
  seats: bigint | undefined;
  active_users: Set<string>;
  queue_depth: { order: string; value: bigint } | undefined;
}

const cpKey = (customer: string, period: string) => `${customer}|${period}`;

export class UsageModel {
  private readonly accepted: Uint8Array;
  private readonly counters = new Map<string, Counters>();
  distinct = 0;

  constructor(totalEvents: number) {
    this.accepted = new Uint8Array(totalEvents);
  }

  /** A 202 for these events: each distinct one counts once, whatever else happened to it. */
  accept(events: SoakEvent[]): void {
    for (const e of events) {
      if (this.accepted[e.index]) continue;
      this.accepted[e.index] = 1;
      this.distinct++;
      this.fold(e);
    }
  }

  isAccepted(index: number): boolean {
    return this.accepted[index] === 1;
  }

  private fold(e: SoakEvent): void {
    const key = cpKey(e.customer, e.period);
    let c = this.counters.get(key);
    if (!c) {
      c = {
        events: 0,
        api_calls: 0n,
        api_requests: 0n,
        compute_seconds: 0n,
        storage_gb: undefined,
        seats: undefined,
        active_users: new Set(),
        queue_depth: undefined,
      };
      this.counters.set(key, c);
    }
    c.events++;
    switch (e.type) {
      case 'api_calls':
        c.api_calls += scaled(e.value);
        c.api_requests += ONE;
        break;
      case 'compute_seconds':
        c.compute_seconds += scaled(e.value);
        break;
      case 'storage_gb':
      case 'seats': {
        const v = scaled(e.value);
        const current = c[e.type];
        if (current === undefined || v > current) c[e.type] = v;
        break;
      }
      case 'user_activity':
        c.active_users.add(e.value);
        break;
      case 'queue_depth': {
        // Latest by event time, then source, then id (all fixed-width ASCII here).
        const order = `${e.time}\u0000${e.source}\u0000${e.id}`;
        if (c.queue_depth === undefined || order > c.queue_depth.order) c.queue_depth = { order, value: scaled(e.value) };
        break;
      }
    }
  }

  /** Expected values per meter as exact decimal strings ("0" for a meter without events). */
  expected(customer: string, period: string): Record<Meter, string> {
    const c = this.counters.get(cpKey(customer, period));
    return {
      api_calls: unscaled(c?.api_calls ?? 0n),
      api_requests: unscaled(c?.api_requests ?? 0n),
      compute_seconds: unscaled(c?.compute_seconds ?? 0n),
      storage_gb: unscaled(c?.storage_gb ?? 0n),
      seats: unscaled(c?.seats ?? 0n),
      active_users: String(c?.active_users.size ?? 0),
      queue_depth: unscaled(c?.queue_depth?.value ?? 0n),
    };
  }

  /** Does the customer have any counted event in the period? */
  has(customer: string, period: string): boolean {
    return this.counters.has(cpKey(customer, period));
  }

  /** Distinct events per (customer, period). */
  distinctIn(customer: string, period: string): number {
    return this.counters.get(cpKey(customer, period))?.events ?? 0;
  }
}

/**
 * `duplicatesDropped` cannot be predicted exactly from the client's side (a request that timed out
 * may or may not have been queued), but it can be bounded. Requests with the same Idempotency-Key
 * queue the same batches (one "group"); a request without a key is a group of its own. Every copy
 * of an event in a group that surely queued, beyond the first, must be dropped as a duplicate
 * (lower bound); copies in groups that may have queued (a 503 or a lost answer) may be too (upper).
 */
export type GroupOutcome = 'none' | 'possible' | 'definite';
const RANK: Record<GroupOutcome, number> = { none: 0, possible: 1, definite: 2 };

export class DuplicateBounds {
  private readonly groups = new Map<string, { outcome: GroupOutcome; perCp: Map<string, number> }>();

  record(group: string, events: SoakEvent[], outcome: GroupOutcome): void {
    let g = this.groups.get(group);
    if (!g) {
      const perCp = new Map<string, number>();
      for (const e of events) perCp.set(cpKey(e.customer, e.period), (perCp.get(cpKey(e.customer, e.period)) ?? 0) + 1);
      g = { outcome: 'none', perCp };
      this.groups.set(group, g);
    }
    if (RANK[outcome] > RANK[g.outcome]) g.outcome = outcome;
  }

  /** [lower, upper] of duplicatesDropped for each (customer, period), given the distinct counts. */
  bounds(distinct: (customer: string, period: string) => number): Map<string, { lower: number; upper: number }> {
    const sure = new Map<string, number>();
    const maybe = new Map<string, number>();
    for (const g of this.groups.values()) {
      const into = g.outcome === 'definite' ? sure : g.outcome === 'possible' ? maybe : undefined;
      if (!into) continue;
      for (const [cp, n] of g.perCp) into.set(cp, (into.get(cp) ?? 0) + n);
    }
    const out = new Map<string, { lower: number; upper: number }>();
    for (const cp of new Set([...sure.keys(), ...maybe.keys()])) {
      const [customer, period] = cp.split('|') as [string, string];
      const lower = (sure.get(cp) ?? 0) - distinct(customer, period);
      out.set(cp, { lower, upper: lower + (maybe.get(cp) ?? 0) });
    }
    return out;
  }
}
