import type { AggregationPlan } from '../domain/aggregation';
import type { ApiKeyRecord } from '../domain/apikey';
import type { MeteredEvent } from '../domain/events';

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
}

export interface Customer {
  id: string;
  name: string;
  planId: string;
  stripeCustomerId?: string;
  alertEmail?: string;
  budget?: { amount: string };
  createdAt: string;
  updatedAt: string;
}

export interface CustomerRepository {
  get(id: string): Promise<Customer | undefined>;
  put(customer: Customer): Promise<void>;
  list(limit: number, cursor?: string): Promise<{ items: Customer[]; cursor?: string }>;
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
