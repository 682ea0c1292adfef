import type { AlertCandidate } from '../../domain/alerts';

/** Claimed alerts (the outbox) and where they are published. lib/adapters implements it on AWS. */

/** An alert claimed for (customer, period, key): the outbox row that is sent exactly once. */
export interface AlertRecord extends AlertCandidate {
  customerId: string;
  period: string;
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
