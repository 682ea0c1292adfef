import type { Currency } from './money';
import type { PlanChange } from './plan-schedule';

/** A customer as stored: who they are, their plans over time, where their invoices and alerts go. */
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
  budget?: Budget;
  createdAt: string;
  updatedAt: string;
}

/** A monthly budget in its currency (a budget stored before budgets had one: budgetOf, lib/domain/billing.ts). */
interface Budget {
  amount: string;
  currency?: Currency;
}
