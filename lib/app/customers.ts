import * as z from 'zod';
import { authorize, requireUnbound, type Principal } from '../domain/apikey';
import { decimalString, type CatalogIndex } from '../domain/catalog';
import type { CursorCodec } from '../domain/cursor';
import { NotFoundError, ValidationError } from '../domain/errors';
import { SUBJECT_PATTERN } from '../domain/events';
import { Period } from '../domain/period';
import { schedulePlan } from '../domain/plan-schedule';
import { currencyMinorDigits, dec, isOnMinorUnit } from '../domain/money';
import { checkCustomerId } from './customer-id';
import type { AlertSubscriptions, Clock, Customer, CustomerRepository, UsageEpoch } from './ports';

export const customerInput = z
  .object({
    name: z.string().trim().min(1).max(256),
    /** Absent: keep the current plan (a new customer gets `default`). */
    planId: z.string().min(1).max(64).optional(),
    stripeCustomerId: z
      .string()
      .regex(/^cus_[A-Za-z0-9]{1,64}$/, 'must look like a Stripe customer id (cus_...)')
      .optional(),
    alertEmail: z.email().max(254).optional(),
    budget: z.object({ amount: decimalString }).strict().optional(),
  })
  .strict();
export type CustomerInput = z.infer<typeof customerInput>;

export interface CustomerDeps {
  customers: CustomerRepository;
  catalog: CatalogIndex;
  clock: Clock;
  subscriptions: AlertSubscriptions;
  epoch: Pick<UsageEpoch, 'note'>;
}

function invalid(field: string, code: string, message: string): ValidationError {
  return new ValidationError(code, message, [{ field, code, message }]);
}

export { checkCustomerId };

/** Creates or replaces a customer (PUT is idempotent); 201 when created, 200 when updated. */
export async function putCustomer(
  deps: CustomerDeps,
  principal: Principal,
  id: string,
  input: CustomerInput,
): Promise<{ created: boolean; customer: Customer }> {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkCustomerId(id);
  const existing = await deps.customers.get(id);
  // Without planId the plan stays; an explicit change applies from the next period.
  const planId = input.planId ?? existing?.planId ?? 'default';
  // A plan asked for must be on sale; a customer kept on a plan since removed from the catalog keeps it.
  if (input.planId !== undefined && !deps.catalog.onSale(input.planId)) throw invalid('planId', 'unknown_plan', `plan "${planId}" is not in the catalog`);
  const now = deps.clock.now().toISOString();
  const current = Period.containing(deps.clock.now());
  const plan = deps.catalog.planVersion(planId, current.key);
  if (!plan) throw invalid('planId', 'unknown_plan', `plan "${planId}" is not in the catalog`);
  if (input.budget !== undefined) checkBudget(input.budget.amount, plan.currency);
  const customer: Customer = {
    id,
    name: input.name,
    planId,
    plans: schedulePlan(existing?.plans, planId, current.key, current.next().key),
    stripeCustomerId: input.stripeCustomerId,
    alertEmail: input.alertEmail,
    // Setting, changing or removing alertEmail subscribes, moves or unsubscribes its SNS email
    // subscription (filtered to this customer's alerts) before the customer is saved.
    alertSubscriptionArn: (
      await deps.subscriptions.sync(id, { email: existing?.alertEmail, subscriptionArn: existing?.alertSubscriptionArn }, { email: input.alertEmail })
    ).subscriptionArn,
    budget: input.budget,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  if (!existing) await deps.epoch.note(current.key);
  await deps.customers.put(customer);
  return { created: !existing, customer };
}

/** A budget is a positive amount the plan's currency can bill: 0.004 dollars would be a budget of nothing. */
function checkBudget(amount: string, currency: string): void {
  if (dec(amount).isZero()) throw invalid('budget.amount', 'invalid_budget', 'budget.amount must be greater than 0; leave budget out for no budget');
  if (!isOnMinorUnit(amount, currency)) {
    throw invalid(
      'budget.amount',
      'invalid_budget',
      `budget.amount ${amount} is finer than the ${currency} minor unit (${currencyMinorDigits(currency)} decimals)`,
    );
  }
}

export async function getCustomer(deps: CustomerDeps, principal: Principal, id: string): Promise<Customer> {
  authorize(principal, 'read', id);
  checkCustomerId(id);
  const customer = await deps.customers.get(id);
  if (!customer) throw new NotFoundError('customer_not_found', `customer "${id}" does not exist`);
  return customer;
}

export async function listCustomers(
  deps: Pick<CustomerDeps, 'customers'> & { customerCursors: CursorCodec },
  principal: Principal,
  limitText: string | undefined,
  cursor: string | undefined,
) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  const limit = limitText === undefined ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new ValidationError('invalid_limit', 'limit must be an integer from 1 to 200', [
      { field: 'limit', code: 'invalid_limit', message: 'limit must be an integer from 1 to 200' },
    ]);
  }
  // A cursor is signed (CursorCodec): a forged or truncated one is a 400, never a read from elsewhere.
  const after = cursor === undefined ? undefined : deps.customerCursors.decode(cursor, (id) => SUBJECT_PATTERN.test(id));
  const page = await deps.customers.list(limit, after);
  return { customers: page.items, nextCursor: page.lastId === undefined ? null : deps.customerCursors.encode(page.lastId) };
}
