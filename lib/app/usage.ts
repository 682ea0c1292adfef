import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { ValidationError } from '../domain/errors';
import { budgetOf, estimatePeriod, type BillingCustomer, type BudgetUse } from '../domain/invoicing';
import { roundToMinor } from '../domain/money';
import { Period, PERIOD_RANGE, PERIOD_SHAPE } from '../domain/period';
import { checkCustomerId } from './customer-id';
import { gatherPeriod } from './invoicing/snapshot';
import type { Clock, CounterReads } from './ports';

export interface UsageDeps {
  counterReads: CounterReads;
  catalog: CatalogIndex;
  clock: Clock;
}

/** A period named by a caller (query string, body, CLI): 400 `invalid_period` unless it is YYYY-MM. */
export function parsePeriodInput(text: unknown, field = 'period'): Period {
  if (typeof text !== 'string' || !Period.isValidKey(text)) {
    const range = typeof text === 'string' && PERIOD_SHAPE.test(text) ? ` from ${PERIOD_RANGE.first} to ${PERIOD_RANGE.last}` : '';
    const message = `${field} must be YYYY-MM${range}${typeof text === 'string' ? `; got "${text.slice(0, 32)}"` : ''}`;
    throw new ValidationError('invalid_period', message, [{ field, code: 'invalid_period', message }]);
  }
  return Period.parse(text);
}

/** `?period=`: the named period, or the current one when absent. */
export function resolvePeriod(text: string | undefined, clock: Clock): Period {
  return text === undefined || text === '' ? Period.containing(clock.now()) : parsePeriodInput(text);
}

/** The period's estimate as the usage page, alerts and budgets see it: gathered, then computed. */
export async function estimate(deps: UsageDeps, customerId: string, period: Period) {
  const g = await gatherPeriod(deps, customerId, period);
  return { ...g, estimate: estimatePeriod({ catalog: deps.catalog, customer: g.customer, period, counters: g.counters, now: deps.clock.now() }) };
}

/**
 * The usage page: per meter the value, allowance used and estimated amount with its tiers; the subtotal
 * as it would be invoiced now (base fee included, rounded per line); the budget used; and a
 * projection to the period end.
 */
export async function readUsage(deps: UsageDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const { estimate: e, duplicatesDropped, customer } = await estimate(deps, customerId, period);
  const { plan } = e.terms;
  return {
    customerId,
    period: period.key,
    periodStart: period.start.toISOString(),
    periodEnd: period.end.toISOString(),
    planId: plan.id,
    planVersion: plan.version,
    currency: plan.currency,
    asOf: deps.clock.now().toISOString(),
    meters: e.meters.map((m) => {
      const meter = deps.catalog.meter(m.meter)!;
      return {
        meter: m.meter,
        displayName: meter.displayName,
        unit: meter.unit,
        aggregation: meter.aggregation,
        value: m.raw,
        included: m.included,
        percentUsed: m.percentUsed,
        amount: m.amount,
        tiers: m.tiers,
        projectedValue: m.projectedValue,
      };
    }),
    baseFee: e.baseFee,
    subtotal: e.subtotal,
    budget: budgetView(deps.catalog, customer, e.budget),
    projection: {
      subtotal: e.projectedSubtotal,
      method: 'SUM and COUNT meters scaled by the elapsed share of the period; peaks, latest and unique values as they are',
    },
    duplicatesDropped,
  };
}

/** The budget as the usage API shows it: with its currency, and no percentages for a period billed in another one. */
function budgetView(catalog: CatalogIndex, customer: BillingCustomer | undefined, use: BudgetUse | null) {
  const budget = budgetOf(catalog, customer);
  if (!budget) return null;
  if (!use) return { amount: roundToMinor(budget.amount, budget.currency), currency: budget.currency, percentUsed: null, projectedPercent: null };
  return { amount: use.amount, currency: budget.currency, percentUsed: use.percentUsed, projectedPercent: use.projectedPercent };
}
