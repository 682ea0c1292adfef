import type { AggregationPlan } from '../../domain/aggregation';
import type { ArchiveGroup, ArchivedEvent } from '../../domain/archive';
import type { MeteredEvent } from '../../domain/events';
import type { Customer } from '../../domain/customer';
import type { UsageBatch } from '../messages';

/** Counting and reading usage: the queue of accepted events, the exactly-once ledger, counters, the event archive, voids and reconciliation. lib/adapters implements it on AWS. */

export interface UsageQueue {
  /** Resolves only when every batch is durably queued; throws otherwise (the caller may retry all). */
  enqueue(batches: UsageBatch[]): Promise<void>;
}

export interface UsageLedger {
  /**
   * Claims each event for this batch unless it is claimed already, and returns the batch that holds
   * each event's claim: this one (unclaimed before, or claimed by an earlier delivery of it), or
   * another (a duplicate, or the part of this message deferred to a later delivery). The claim
   * remembers where the event lives: customer, period and archive group.
   */
  claim(batchId: string, events: MeteredEvent[], groupOf: (e: MeteredEvent) => number): Promise<string[]>;
  /** Applies the plan exactly once for this batch, however often it is called. */
  apply(batchId: string, plan: AggregationPlan): Promise<void>;
  /** Counters of one customer and period: meter -> value, plus duplicates dropped. */
  read(customerId: string, period: string): Promise<{ values: Record<string, string>; duplicatesDropped: number }>;
  /** The period's daily counters: meter -> UTC day (YYYY-MM-DD) -> value; days without a counter are absent. */
  readDaily(customerId: string, period: string): Promise<Record<string, Record<string, string>>>;
  /** Which of `periods` the customer has a counter in (one small read each). */
  periodsWithUsage(customerId: string, periods: string[]): Promise<string[]>;
}

/** The event archive (docs/exactly-once.md): what was counted, as evidence, one object per message group. */
export interface EventArchive {
  /** Writes a group's object; the same group always gives the same bytes at the same key. */
  put(group: ArchiveGroup): Promise<void>;
  /** Object keys of a customer's period in key order, after `startAfter`. */
  list(customerId: string, period: string, startAfter?: string, limit?: number): Promise<{ keys: string[]; next?: string }>;
  read(key: string): Promise<ArchivedEvent[]>;
  /** The key of a message group's object (its key also names its meters), or undefined if none was written. */
  groupObject(customerId: string, period: string, batchId: string, group: number): Promise<string | undefined>;
  /** Customers with archived events in the period. */
  customers(period: string): Promise<string[]>;
}

/** Where a counted event lives, from its claim marker. */
export interface LocatedEvent {
  customerId: string;
  period: string;
  batchId: string;
  group: number;
  /** The event's message has been applied in full (counters moved): it can be voided. */
  settled: boolean;
}

export interface VoidRecord {
  source: string;
  id: string;
  reason: string;
  voidedAt: string;
  voidedBy: string;
}

/** A counter as stored: its value and, for LATEST meters, the order of the reading it holds. */
export interface CounterState {
  value: string;
  order?: string;
  /** The stored items of a sharded counter (value is their sum); absent for a single item. */
  shards?: { sk: string; value: string }[];
}

/** What voids and reconciliation need of the counters, beside counting. */
export interface AuditLedger {
  /** Where a counted event of the customer lives, found by its claim. */
  locate(customerId: string, source: string, id: string): Promise<LocatedEvent | undefined>;
  voids(customerId: string, period: string): Promise<VoidRecord[]>;
  /**
   * Records the void and subtracts the event's SUM/COUNT readings from their period counters and
   * from their counters of `day` (the event's UTC day) in one transaction, exactly once: false when
   * the event was voided already (nothing changes then).
   */
  recordVoid(customerId: string, period: string, record: VoidRecord, subtract: { meter: string; value: string }[], day: string): Promise<boolean>;
  /** A period counter, or with `day` that meter's counter of one UTC day. */
  counter(customerId: string, period: string, meter: string, day?: string): Promise<CounterState | undefined>;
  /** Sets a counter (of the period, or of `day`) to `next` (undefined: removes it) if it still holds `expected`; false when it moved meanwhile. */
  setCounter(
    customerId: string,
    period: string,
    meter: string,
    expected: CounterState | undefined,
    next: CounterState | undefined,
    day?: string,
  ): Promise<boolean>;
  /** Makes a UNIQUE_COUNT meter's distinct-value markers exactly `values` (the counter is set separately). */
  syncUnique(customerId: string, period: string, meter: string, values: Iterable<string>): Promise<void>;
  /** Keeps who changed a counter by hand, when, from what to what. */
  audit(
    customerId: string,
    period: string,
    entry: { meter: string; day?: string; before: string; after: string; by: string; at: string; reason: string },
  ): Promise<void>;
}

/** The counter of duplicates dropped for a customer and period, read like a meter's (meter slugs start with a letter). */
export const DUPLICATES_COUNTER = '_duplicates';

/**
 * The customer and its counters of some meters in some periods, read together (one request where
 * the store allows): what the usage page, an alert evaluation, an entitlement check and an
 * invoice's gather need on their hot paths. `DUPLICATES_COUNTER` may be asked for like a meter.
 */
export interface CounterReads {
  read(customerId: string, periods: string[], meters: string[]): Promise<{ customer: Customer | undefined; counters: Record<string, Record<string, string>> }>;
}

/** The earliest period the system has seen usage or a customer in (runs before it are refused). */
export interface UsageEpoch {
  /** Records that `period` had usage or a new customer; keeps the earliest. */
  note(period: string): Promise<void>;
  earliest(): Promise<string | undefined>;
}

/** One page of customer ids and where the next one starts (absent: this was the last). */
export interface IdPage {
  ids: string[];
  cursor?: string;
}

/** The customers with usage in a period (the usage table's byPeriod index), a page at a time. */
export interface UsageIndex {
  /** About `limit` distinct customers per page; a customer may appear on two consecutive pages. */
  customersWithUsage(period: string, page: { cursor?: string; limit: number }): Promise<IdPage>;
}
