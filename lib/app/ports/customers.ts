import type { Customer } from '../../domain/customer';

/** Customers and where their alert e-mails go. lib/adapters implements it on AWS. */

export interface CustomerRepository {
  get(id: string): Promise<Customer | undefined>;
  put(customer: Customer): Promise<void>;
  /** Up to `limit` customers after the one with id `after`; `lastId` is where the next page starts. */
  list(limit: number, after?: string): Promise<{ items: Customer[]; lastId?: string }>;
}

export interface AlertSubscriptions {
  sync(customerId: string, previous: { email?: string; subscriptionArn?: string }, next: { email?: string }): Promise<{ subscriptionArn?: string }>;
}
