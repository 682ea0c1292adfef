import * as z from 'zod';
import { authorize, requireUnbound, type Principal } from '../domain/apikey';
import { DECIMAL_PATTERN, type CatalogIndex } from '../domain/catalog';
import type { CursorCodec } from '../domain/cursor';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors';
import { budgetOf, termsFor } from '../domain/billing';
import { SUBJECT_PATTERN } from '../domain/events';
import { Period } from '../domain/period';
import { schedulePlan } from '../domain/plan-schedule';
import { CURRENCIES, currencyMinorDigits, dec, isOnMinorUnit, type Currency } from '../domain/money';
import { checkCustomerId } from './customer-id';
import type { AlertSubscriptions, CustomerRepository } from './ports/customers';
import type { Clock } from './ports/clock';
import type { InvoiceRepository } from './ports/invoicing';
import type { UsageEpoch } from './ports/usage';
import type { Customer } from '../domain/customer';
import type { InvoiceStatus } from '../domain/invoice-record';

/**
 * A budget's amount: the catalog's decimal, with an example a budget can take (the catalog's own,
 * "0.001", is a unit price, finer than any currency's minor unit: checkBudget refuses it).
 */
const BUDGET_AMOUNT_RULE = 'must be a decimal string, e.g. "500.00", with at most the currency\'s minor digits (2 for usd, eur, gbp; 0 for jpy)';
const budgetAmount = z.string({ error: (issue) => (issue.input === undefined ? undefined : BUDGET_AMOUNT_RULE) }).regex(DECIMAL_PATTERN, BUDGET_AMOUNT_RULE);

/**
 * The fields of a customer after its name. Left out: kept as it is (a new customer gets `default`
 * and none of the others). null: removed. No field is ever reset or unlinked because a request left
 * it out (docs/invoicing.md, "Customers").
 */
const customerFields = {
  /** Absent: keep the current plan (a new customer gets `default`). */
  planId: z.string().min(1).max(64).optional(),
  stripeCustomerId: z
    .string()
    .regex(/^cus_[A-Za-z0-9]{1,64}$/, 'must look like a Stripe customer id (cus_...)')
    .nullable()
    .optional(),
  alertEmail: z.email().max(254).nullable().optional(),
  budget: z
    .object({
      amount: budgetAmount,
      /** Absent: the currency of the plan in force for the current period (for a new customer, the plan asked for). */
      currency: z.enum(CURRENCIES).optional(),
    })
    .strict()
    .nullable()
    .optional(),
};
/** PUT: create, or replace the fields given. */
export const customerInput = z.object({ name: z.string().trim().min(1).max(256), ...customerFields }).strict();
export type CustomerInput = z.infer<typeof customerInput>;
/** PATCH: change the fields given of a customer that exists. */
export const customerPatch = z.object({ name: z.string().trim().min(1).max(256).optional(), ...customerFields }).strict();
export type CustomerPatch = z.infer<typeof customerPatch>;

export interface CustomerDeps {
  customers: CustomerRepository;
  catalog: CatalogIndex;
  clock: Clock;
  subscriptions: AlertSubscriptions;
  epoch: Pick<UsageEpoch, 'note'>;
  /** To refuse unlinking a customer whose invoices are on their way to Stripe. */
  invoices: Pick<InvoiceRepository, 'list'>;
}

function invalid(field: string, code: string, message: string): ValidationError {
  return new ValidationError(code, message, [{ field, code, message }]);
}

/** Creates or replaces a customer (PUT is idempotent); 201 when created, 200 when updated. */
export async function putCustomer(
  deps: CustomerDeps,
  principal: Principal,
  id: string,
  input: CustomerInput,
): Promise<{ created: boolean; customer: CustomerView }> {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkCustomerId(id);
  const existing = await deps.customers.get(id);
  return { created: !existing, customer: customerView(deps.catalog, await save(deps, id, existing, input)) };
}

/** PATCH /customers/{id}: only the fields given change; a customer that does not exist is a 404, never created. */
export async function patchCustomer(deps: CustomerDeps, principal: Principal, id: string, input: CustomerPatch): Promise<CustomerView> {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkCustomerId(id);
  const existing = await deps.customers.get(id);
  if (!existing) throw new NotFoundError('customer_not_found', `customer "${id}" does not exist; PUT creates it`);
  return customerView(deps.catalog, await save(deps, id, existing, input));
}

/** A customer as the API shows it: a budget always names its currency (one stored before budgets had one: budgetOf). */
export type CustomerView = Omit<Customer, 'budget'> & { budget?: { amount: string; currency: Currency } };

function customerView(catalog: CatalogIndex, customer: Customer): CustomerView {
  const { budget: _, ...rest } = customer;
  const budget = budgetOf(catalog, customer);
  return budget ? { ...rest, budget } : rest;
}

/** What statuses mean an invoice is on its way to (or stuck before) the Stripe customer it was made for. */
const IN_FLIGHT: InvoiceStatus[] = ['pending', 'draft_created', 'items_added', 'blocked'];

async function save(deps: CustomerDeps, id: string, existing: Customer | undefined, input: CustomerPatch): Promise<Customer> {
  const keep = <T>(given: T | null | undefined, kept: T | undefined): T | undefined => (given === undefined ? kept : (given ?? undefined));
  const now = deps.clock.now();
  const current = Period.containing(now);
  const created = existing ? Period.containing(new Date(existing.createdAt)).key : current.key;
  const name = input.name ?? existing?.name;
  if (name === undefined) throw invalid('name', 'invalid_input', 'name is required for a new customer');

  // A plan asked for must be on sale; a customer kept on a plan since removed from the catalog keeps it.
  const planId = input.planId ?? existing?.planId ?? 'default';
  if (input.planId !== undefined && !deps.catalog.onSale(input.planId)) throw invalid('planId', 'unknown_plan', `plan "${planId}" is not in the catalog`);
  // In the month a customer was created nothing has been invoiced on its plan yet: a change corrects it from creation.
  const plans = schedulePlan(existing?.plans, planId, current.key, current.next().key, created);

  const stripeCustomerId = keep(input.stripeCustomerId, existing?.stripeCustomerId);
  if (existing?.stripeCustomerId !== undefined && stripeCustomerId !== existing.stripeCustomerId) await refuseWhileInFlight(deps, existing);

  const customer: Customer = { id, name, planId, plans, createdAt: existing?.createdAt ?? now.toISOString(), updatedAt: now.toISOString() };
  const budget = budgetFor(deps.catalog, existing, customer, input.budget);
  const alertEmail = keep(input.alertEmail, existing?.alertEmail);
  // Setting, changing or removing alertEmail subscribes, moves or unsubscribes its SNS email
  // subscription (filtered to this customer's alerts) before the customer is saved.
  const subscription = await deps.subscriptions.sync(
    id,
    { email: existing?.alertEmail, subscriptionArn: existing?.alertSubscriptionArn },
    { email: alertEmail },
  );
  Object.assign(
    customer,
    stripeCustomerId !== undefined ? { stripeCustomerId } : {},
    alertEmail !== undefined ? { alertEmail } : {},
    subscription.subscriptionArn !== undefined ? { alertSubscriptionArn: subscription.subscriptionArn } : {},
    budget !== undefined ? { budget } : {},
  );
  if (!existing) await deps.epoch.note(current.key);
  await deps.customers.put(customer);
  return customer;
}

/** Unlinking (or relinking) while an invoice is on its way to the Stripe customer it was made for would strand it. */
async function refuseWhileInFlight(deps: CustomerDeps, existing: Customer): Promise<void> {
  const inFlight = (await deps.invoices.list(existing.id)).filter((r) => IN_FLIGHT.includes(r.status) && r.stripeCustomerId === existing.stripeCustomerId);
  if (inFlight.length === 0) return;
  const which = inFlight.map((r) => `${r.key} (${r.status})`).join(', ');
  throw new ConflictError(
    'invoices_in_flight',
    `${existing.id} has invoices on their way to ${existing.stripeCustomerId} (${which}); let their invoice jobs finish (or unblock them) before changing its Stripe customer`,
    [{ field: 'stripeCustomerId', code: 'invoices_in_flight', message: `invoices not yet in Stripe: ${which}` }],
  );
}

/**
 * The budget after a request, with its currency. A budget given without one takes the currency of
 * the plan in force for the current period (for a new customer, the plan asked for); one given
 * with a currency must be that of the current plan or of a plan scheduled. A budget kept from
 * before across a change to a plan in another currency is refused (409): it would be read in a
 * currency it was never meant in, and money is never converted silently.
 */
function budgetFor(catalog: CatalogIndex, existing: Customer | undefined, next: Customer, given: CustomerPatch['budget']) {
  const current = Period.containing(new Date(next.updatedAt)).key;
  /** The currencies the customer bills in from the current period on: its plan now and every plan scheduled. */
  const currencies = (c: Customer | undefined) =>
    c ? [...new Set([current, ...(c.plans ?? []).filter((p) => p.from > current).map((p) => p.from)].map((p) => termsFor(catalog, c, p).plan.currency))] : [];
  const after = currencies(next);
  if (given === null) return undefined;
  if (given === undefined) {
    const kept = budgetOf(catalog, existing);
    if (!kept) return undefined;
    const before = currencies(existing);
    const introduced = after.find((c) => c !== kept.currency && !before.includes(c));
    if (introduced !== undefined) {
      throw new ConflictError(
        'budget_currency_mismatch',
        `the budget is ${kept.amount} ${kept.currency.toUpperCase()} and plan "${next.planId}" bills in ${introduced.toUpperCase()}: send a budget with the plan change (in either currency), or budget: null`,
        [
          {
            field: 'budget',
            code: 'budget_currency_mismatch',
            message: `a budget for ${introduced.toUpperCase()} is needed with this plan change, or budget: null`,
          },
        ],
      );
    }
    return kept;
  }
  const currency = given.currency ?? after[0]!;
  if (!after.includes(currency)) {
    throw invalid(
      'budget.currency',
      'invalid_budget',
      `budget.currency ${currency} is neither the currency of the plan in force (${after[0]}) nor of a plan scheduled (${after.join(', ')})`,
    );
  }
  checkBudget(given.amount, currency);
  return { amount: given.amount, currency };
}

/** A budget is a positive amount its currency can bill: 0.004 dollars would be a budget of nothing. */
function checkBudget(amount: string, currency: string): void {
  if (dec(amount).isZero()) throw invalid('budget.amount', 'invalid_budget', 'budget.amount must be greater than 0; send budget: null for no budget');
  if (!isOnMinorUnit(amount, currency)) {
    throw invalid(
      'budget.amount',
      'invalid_budget',
      `budget.amount ${amount} is finer than the ${currency} minor unit (${currencyMinorDigits(currency)} decimals)`,
    );
  }
}

export async function getCustomer(deps: Pick<CustomerDeps, 'customers' | 'catalog'>, principal: Principal, id: string): Promise<CustomerView> {
  authorize(principal, 'read', id);
  checkCustomerId(id);
  const customer = await deps.customers.get(id);
  if (!customer) throw new NotFoundError('customer_not_found', `customer "${id}" does not exist`);
  return customerView(deps.catalog, customer);
}

export async function listCustomers(
  deps: Pick<CustomerDeps, 'customers' | 'catalog'> & { customerCursors: CursorCodec },
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
  return {
    customers: page.items.map((c) => customerView(deps.catalog, c)),
    nextCursor: page.lastId === undefined ? null : deps.customerCursors.encode(page.lastId),
  };
}
