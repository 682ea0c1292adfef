import type { AggregationPlan } from '../domain/aggregation';
import type { ArchiveGroup, ArchivedEvent } from '../domain/archive';
import type { ApiKeyRecord, KeyLimits } from '../domain/apikey';
import type { Plan } from '../domain/catalog';
import type { MeteredEvent } from '../domain/events';
import type { InvoiceLine } from '../domain/invoice';
import type { InvoiceKind } from '../domain/invoicing';
import type { PlanChange } from '../domain/plan-schedule';
import type { LimitWindow } from '../domain/rate-limit';

/** What the use cases need from the outside world; lib/adapters implements them on AWS. */

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

/** One queue message: a stable id (survives redelivery AND DLQ redrive) and the events it carries. */
export interface UsageBatch {
  v: 1;
  batchId: string;
  receivedAt: string;
  events: MeteredEvent[];
}

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

export interface Customer {
  id: string;
  name: string;
  /** The plan asked for last; it prices periods from `plans`' matching entry on. */
  planId: string;
  /** When each plan applies (a change takes effect next period). */
  plans?: PlanChange[];
  stripeCustomerId?: string;
  alertEmail?: string;
  /** The SNS subscription that delivers this customer's alerts to alertEmail. */
  alertSubscriptionArn?: string;
  /** The monthly budget and its currency (absent on budgets stored before they had one: budgetOf). */
  budget?: { amount: string; currency?: string };
  createdAt: string;
  updatedAt: string;
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

export interface CustomerRepository {
  get(id: string): Promise<Customer | undefined>;
  put(customer: Customer): Promise<void>;
  /** Up to `limit` customers after the one with id `after`; `lastId` is where the next page starts. */
  list(limit: number, after?: string): Promise<{ items: Customer[]; lastId?: string }>;
}

export interface ApiKeyRepository {
  get(keyId: string): Promise<ApiKeyRecord | undefined>;
  create(record: ApiKeyRecord): Promise<void>;
  revoke(keyId: string, at: string): Promise<boolean>;
  /** Replaces the key's own limits (an empty object: the defaults); false if there is no such key. */
  setLimits(keyId: string, limits: Partial<KeyLimits>): Promise<boolean>;
  list(): Promise<ApiKeyRecord[]>;
}

/** Counters of the keys' limit windows (lib/domain/rate-limit.ts). */
export interface RateLimiter {
  /** Adds `count` to the window unless that would take it past `limit`: false (nothing added) then. */
  take(window: LimitWindow, count: number, limit: number): Promise<boolean>;
}

export interface IdempotencyRecord {
  scope: string;
  key: string;
  requestHash: string;
  response?: { status: number; body: unknown };
}

export interface IdempotencyStore {
  /** Records the key for this request hash unless it exists; returns the existing record if any. */
  begin(scope: string, key: string, requestHash: string): Promise<IdempotencyRecord | undefined>;
  complete(scope: string, key: string, response: { status: number; body: unknown }): Promise<void>;
}

/**
 * pending -> draft_created -> items_added -> finalized walk an invoice through the provider.
 * Terminal without a provider call: no_charge (total 0), not_synced (no provider customer),
 * credit_carried (a negative total, carried to the next invoice). blocked: the provider can never
 * take it as it is (e.g. an amount over its limit); the record keeps why, an operator decides.
 */
export type InvoiceStatus = 'pending' | 'draft_created' | 'items_added' | 'finalized' | 'no_charge' | 'not_synced' | 'credit_carried' | 'blocked';
export const TERMINAL_INVOICE_STATUSES: InvoiceStatus[] = ['finalized', 'no_charge', 'not_synced', 'credit_carried', 'blocked'];

/** One invoice of a customer: its frozen lines and where it stands with the provider. */
export interface InvoiceRecord {
  customerId: string;
  /** `<period>` for the period's own invoice, `<period>#<currency>` for corrections billed in another currency. */
  key: string;
  period: string;
  kind: InvoiceKind;
  status: InvoiceStatus;
  planId: string;
  /** The plan version that priced the period (own invoices); records made before versions: absent (1). */
  planVersion?: number;
  /** Own invoices: a copy of that version; corrections of the period are priced with it (docs/invoicing.md, "Plan versions"). */
  plan?: Plan;
  currency: string;
  /** Whether the period owed its fixed fees (own invoices). */
  fees: boolean;
  lines: InvoiceLine[];
  total: string;
  /** The total as an exact integer of minor units. */
  totalMinor: string;
  /** The period's usage this invoice billed (frozen when the record was made). */
  quantities: Record<string, string>;
  /** Own invoices: what has been billed for this period so far, corrections included (the baseline of the next correction). */
  invoicedQuantities?: Record<string, string>;
  /** Bumped on every change of invoicedQuantities (optimistic concurrency). */
  invoicedVersion?: number;
  /** Earlier periods this invoice corrected, and the totals it billed them up to. */
  corrections: { period: string; quantities: Record<string, string> }[];
  /** A carried credit (credit_carried): the key of the invoice that used it. */
  creditAppliedTo?: string;
  /** A carried credit an operator settled outside invoices (refunded or written off): never applied after. */
  creditSettlement?: CreditSettlement;
  stripeCustomerId?: string;
  stripeInvoiceId?: string;
  stripeStatus?: string;
  stripeNumber?: string | null;
  hostedInvoiceUrl?: string | null;
  /** Set before the first provider write of a step, so a later attempt knows to look for what it may have made. */
  draftRequested?: boolean;
  itemsRequested?: boolean;
  /** blocked: the state it was blocked in (a later job resumes from there). */
  blockedFrom?: InvoiceStatus;
  attempts: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
}

export interface CreditSettlement {
  as: 'refund' | 'write_off';
  reason: string;
  /** Where the money went (a Stripe refund or credit note id); required for a refund. */
  reference?: string;
  at: string;
  /** The key (id) of whoever settled it. */
  by: string;
}

export type CreateInvoicesOutcome = 'created' | 'exists' | 'moved';

export interface InvoiceRepository {
  get(customerId: string, key: string): Promise<InvoiceRecord | undefined>;
  /** Every invoice record of the customer, newest first. */
  list(customerId: string): Promise<InvoiceRecord[]>;
  /**
   * Stores a period's new invoices, moves the baselines of the earlier periods they correct and
   * marks the credits they use, atomically. 'exists': the period's own invoice is there already
   * (another attempt made it); 'moved': a baseline or credit changed since it was read.
   */
  create(
    records: InvoiceRecord[],
    baselines: { customerId: string; period: string; quantities: Record<string, string>; version: number }[],
    credits: { customerId: string; key: string; appliedTo: string }[],
  ): Promise<CreateInvoicesOutcome>;
  /** Settles a carried credit that is still open (neither applied nor settled); false otherwise. */
  settleCredit(customerId: string, key: string, settlement: CreditSettlement): Promise<boolean>;
  /** Applies `changes` if the stored status is still `expected` and returns the record as stored; undefined otherwise. */
  update(customerId: string, key: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>): Promise<InvoiceRecord | undefined>;
}

/** The earliest period the system has seen usage or a customer in (runs before it are refused). */
export interface UsageEpoch {
  /** Records that `period` had usage or a new customer; keeps the earliest. */
  note(period: string): Promise<void>;
  earliest(): Promise<string | undefined>;
}

/** waiting: invoiced, but recorded without a Stripe customer (not_synced); the next job or run of the period sends it once one is linked. */
export type RunMemberStatus = 'pending' | 'done' | 'skipped' | 'failed' | 'waiting';
export interface InvoiceRun {
  period: string;
  total: number;
  done: number;
  skipped: number;
  failed: number;
  waiting: number;
  /** Correction lines of earlier periods that the run's invoices carried. */
  corrections: number;
  startedAt: string;
  /** Every member has been added and enqueued (until then the counts are still growing). */
  fannedOut?: boolean;
}

/**
 * Where a run's fan-out stands: the page that the one step message holding `token` reads next.
 * Each step reads one page and hands the next to a new step with a new token; a step message whose
 * token is not the position's (a duplicate, a redelivery after the position moved, a step of a
 * chain that a new start replaced) stops.
 */
export interface FanOutPosition {
  token: string;
  /** The token of the step that sent this one (absent for a chain's first step). */
  after?: string;
  /** The chain: `<run period>:<token of its first step>`; members it takes carry it. */
  chain: string;
  /** `customers`, then `usage:<period>` for the period and the ones before it the run may correct. */
  source: string;
  /** Where the source continues; absent at its start. */
  cursor?: string;
  /** Pages read before this one in this chain. */
  page: number;
  /**
   * The page as the step's first attempt read it: every later attempt takes the same customers
   * (the table may have changed in between), so none that an attempt took is left without a job.
   */
  pinned?: IdPage;
}

/** How a fan-out step takes customers into a run (see InvoiceRunRepository.takeMembers). */
export interface MemberTake {
  chain: string;
  step: string;
  /** A member that exists gets another job if its status is one of these and no step of this chain took it yet ... */
  again: RunMemberStatus[];
  /** ... and, when given, only if the chain that took it last starts with this. */
  againIfTakenBy?: string;
}

export interface InvoiceRunRepository {
  get(period: string): Promise<InvoiceRun | undefined>;
  /** Whether the period's run was ever started (one read, unlike `get`, which counts the members). */
  exists(period: string): Promise<boolean>;
  /**
   * Creates the run if it does not exist and (re)starts its fan-out at `position`, not fanned out:
   * a chain that was still under way finds its token replaced and stops.
   */
  beginFanOut(period: string, now: string, position: FanOutPosition): Promise<void>;
  /** The fan-out position (one read); undefined once the run has fanned out. */
  fanOutPosition(period: string): Promise<FanOutPosition | undefined>;
  /**
   * Pins the page the step holding `token` reads, unless an attempt of that step pinned one first;
   * returns the pinned page, or undefined if the position is not that step's any more.
   */
  pinFanOutPage(period: string, token: string, page: IdPage): Promise<IdPage | undefined>;
  /** Moves the position from the step holding `token` to `next`; false if it was not that step's any more. */
  advanceFanOut(period: string, token: string, next: FanOutPosition): Promise<boolean>;
  /** The last step: the run has fanned out. False if the position was not that step's any more. */
  endFanOut(period: string, token: string): Promise<boolean>;
  /**
   * Takes customers into the run for a fan-out step, each at most once per chain; returns those
   * whose job the step must enqueue: customers that were no members yet, or were taken by this
   * very step (a step done again after a crash), or that `take.again` lets be asked again. A failed
   * member taken again is pending again, so that the run is not completed while its job runs.
   */
  takeMembers(period: string, customerIds: string[], take: MemberTake): Promise<string[]>;
  /**
   * Moves a pending (failed, or waiting) member to its final status; a final status never changes.
   * `error` says why it failed; `corrections`, how many correction lines its invoices carried.
   */
  finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>, error?: string, corrections?: number): Promise<void>;
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

/**
 * One customer's invoice, or a step of a run's fan-out (`start_run`): `token` is the step's, `after`
 * the token of the step that sent it. Without a token it starts the fan-out (messages sent before
 * fan-outs were chains of steps).
 */
export type InvoiceJob = { period: string; customerId: string } | { period: string; action: 'start_run'; token?: string; after?: string };
export interface InvoiceJobQueue {
  enqueue(jobs: InvoiceJob[]): Promise<void>;
}

/** An alert claimed for (customer, period, key): the outbox row that is sent exactly once. */
export interface AlertRecord {
  customerId: string;
  period: string;
  key: string;
  kind: string;
  meter: string | null;
  threshold: number;
  value: string;
  limit: string;
  percent: string;
  subject: string;
  body: object;
  attributes: { customerId: string; kind: string; meter: string; threshold: string };
  /** superseded: passed in the same update as a higher threshold of its kind and meter; never sent. */
  status: 'pending' | 'sent' | 'superseded';
  /** The key of the higher alert that was sent instead (superseded only). */
  supersededBy?: string;
  claimedAt: string;
  sentAt?: string;
  messageId?: string;
  attempts: number;
  lastError?: string;
}

export interface AlertRepository {
  list(customerId: string, period: string): Promise<AlertRecord[]>;
  /** Conditional create: true for the one caller that claims the key, false for everyone else. */
  claim(record: AlertRecord): Promise<boolean>;
  markSent(record: AlertRecord, messageId: string, at: string): Promise<void>;
  markFailed(record: AlertRecord, error: string): Promise<void>;
  /** Claimed but not sent since before `before` (the outbox the sweeper drains). */
  pending(before: string, limit: number): Promise<AlertRecord[]>;
}

export interface AlertPublisher {
  publish(message: { subject: string; body: object; attributes: AlertRecord['attributes'] }): Promise<string>;
}

export interface AlertSubscriptions {
  sync(customerId: string, previous: { email?: string; subscriptionArn?: string }, next: { email?: string }): Promise<{ subscriptionArn?: string }>;
}
