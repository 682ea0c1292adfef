import type { AggregationPlan } from '../domain/aggregation';
import type { ApiKeyRecord } from '../domain/apikey';
import type { MeteredEvent } from '../domain/events';
import type { InvoiceLine } from '../domain/invoice';
import type { PlanChange } from '../domain/plan-schedule';

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

export type ClaimOutcome = 'owned' | 'duplicate';

export interface UsageLedger {
  /** Claims each event for this batch: 'owned' if unclaimed or already claimed by this same batch. */
  claim(batchId: string, events: MeteredEvent[]): Promise<ClaimOutcome[]>;
  /** Applies the plan exactly once for this batch, however often it is called. */
  apply(batchId: string, plan: AggregationPlan): Promise<void>;
  /** Counters of one customer and period: meter -> value, plus duplicates dropped. */
  read(customerId: string, period: string): Promise<{ values: Record<string, string>; duplicatesDropped: number }>;
  /** Every customer with a counter in the period (the invoice run's list). */
  customersWithUsage(period: string): Promise<string[]>;
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
  budget?: { amount: string };
  createdAt: string;
  updatedAt: string;
}

export interface CustomerRepository {
  get(id: string): Promise<Customer | undefined>;
  put(customer: Customer): Promise<void>;
  list(limit: number, cursor?: string): Promise<{ items: Customer[]; cursor?: string }>;
  allIds(): Promise<string[]>;
}

export interface ApiKeyRepository {
  get(keyId: string): Promise<ApiKeyRecord | undefined>;
  create(record: ApiKeyRecord): Promise<void>;
  revoke(keyId: string, at: string): Promise<boolean>;
  list(): Promise<ApiKeyRecord[]>;
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

export type InvoiceStatus = 'pending' | 'draft_created' | 'items_added' | 'finalized' | 'no_charge' | 'not_synced';
export const TERMINAL_INVOICE_STATUSES: InvoiceStatus[] = ['finalized', 'no_charge', 'not_synced'];

/** One (customer, period) invoice: its frozen lines and where it stands with Stripe. */
export interface InvoiceRecord {
  customerId: string;
  period: string;
  status: InvoiceStatus;
  planId: string;
  currency: string;
  lines: InvoiceLine[];
  total: string;
  totalMinor: number;
  /** The period's usage this invoice billed (frozen when the record was made). */
  quantities: Record<string, string>;
  /** What has been billed for this period so far, corrections included: the baseline of the next correction. */
  invoicedQuantities: Record<string, string>;
  /** Bumped on every change of invoicedQuantities (optimistic concurrency). */
  invoicedVersion: number;
  /** Earlier periods this invoice corrected, and the totals it billed them up to. */
  corrections: { period: string; quantities: Record<string, string> }[];
  stripeCustomerId?: string;
  stripeInvoiceId?: string;
  stripeStatus?: string;
  stripeNumber?: string | null;
  hostedInvoiceUrl?: string | null;
  /** Set before the first Stripe write of a step, so a later attempt knows to look for what it may have made. */
  draftRequested?: boolean;
  itemsRequested?: boolean;
  attempts: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
}

export interface InvoiceRepository {
  get(customerId: string, period: string): Promise<InvoiceRecord | undefined>;
  list(customerId: string): Promise<InvoiceRecord[]>;
  /**
   * Stores a new invoice and moves the baselines of the earlier periods it corrects, atomically.
   * Returns false when the invoice exists already (another attempt made it first).
   */
  create(
    record: InvoiceRecord,
    baselines: { record: InvoiceRecord | undefined; customerId: string; period: string; quantities: Record<string, string> }[],
  ): Promise<boolean>;
  /** Applies `changes` if the stored status is still `expected` and returns the record as stored; undefined otherwise. */
  update(customerId: string, period: string, expected: InvoiceStatus, changes: Partial<InvoiceRecord>): Promise<InvoiceRecord | undefined>;
}

export type RunMemberStatus = 'pending' | 'done' | 'skipped' | 'failed';
export interface InvoiceRun {
  period: string;
  total: number;
  done: number;
  skipped: number;
  failed: number;
  startedAt: string;
  /** Every member has been added and enqueued (until then the counts are still growing). */
  fannedOut?: boolean;
}

export interface InvoiceRunRepository {
  get(period: string): Promise<InvoiceRun | undefined>;
  /** Whether the period's run was ever started (one read, unlike `get`, which counts the members). */
  exists(period: string): Promise<boolean>;
  /** Creates the run if it does not exist. */
  ensure(period: string, now: string): Promise<void>;
  /** False while a (re)started run is adding members; true once all are added and enqueued. */
  setFannedOut(period: string, fannedOut: boolean): Promise<void>;
  /** Adds a customer to the run once; returns its member status. */
  addMember(period: string, customerId: string): Promise<RunMemberStatus>;
  /** Moves a pending (or failed) member to its final status; a final status never changes. */
  finish(period: string, customerId: string, status: Exclude<RunMemberStatus, 'pending'>): Promise<void>;
}

/** One customer's invoice, or the fan-out of a run (`start_run`). */
export type InvoiceJob = { period: string; customerId: string } | { period: string; action: 'start_run' };
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
  status: 'pending' | 'sent';
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
