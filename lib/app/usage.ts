import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { ValidationError } from '../domain/errors';
import { priceMeter, priceUsage } from '../domain/invoice';
import { dec, roundToMinor } from '../domain/money';
import { Period } from '../domain/period';
import { planFor } from '../domain/plan-schedule';
import { projectToPeriodEnd } from '../domain/projection';
import { billable } from '../domain/quantity';
import { checkCustomerId } from './customers';
import type { Clock, CustomerRepository, UsageLedger } from './ports';

export interface UsageDeps {
  ledger: UsageLedger;
  customers: CustomerRepository;
  catalog: CatalogIndex;
  clock: Clock;
}

/** A period named by a caller (query string, body, CLI): 400 `invalid_period` unless it is YYYY-MM. */
export function parsePeriodInput(text: unknown, field = 'period'): Period {
  if (typeof text !== 'string' || !Period.isValidKey(text)) {
    const message = `${field} must be YYYY-MM${typeof text === 'string' ? `; got "${text.slice(0, 32)}"` : ''}`;
    throw new ValidationError('invalid_period', message, [{ field, code: 'invalid_period', message }]);
  }
  return Period.parse(text);
}

/** `?period=`: the named period, or the current one when absent. */
export function resolvePeriod(text: string | undefined, clock: Clock): Period {
  return text === undefined || text === '' ? Period.containing(clock.now()) : parsePeriodInput(text);
}

/** The period's cost so far and projected to its end, as the usage page, alerts and budgets see it. */
export async function estimatePeriod(deps: UsageDeps, customerId: string, period: Period) {
  const now = deps.clock.now();
  const [counters, customer] = await Promise.all([deps.ledger.read(customerId, period.key), deps.customers.get(customerId)]);
  const plan = planFor(deps.catalog, customer?.plans, period.key);
  const meters = deps.catalog.meters();
  const values = Object.fromEntries(meters.map((m) => [m.slug, counters.values[m.slug] ?? '0']));
  const current = priceUsage({ plan, meters, usage: billable(values) });
  const projectedValues = billable(
    Object.fromEntries(
      meters.map((m) => [
        m.slug,
        projectToPeriodEnd({ value: values[m.slug]!, aggregation: m.aggregation, periodStart: period.start, periodEnd: period.end, now }),
      ]),
    ),
  );
  const projected = priceUsage({ plan, meters, usage: projectedValues });
  return {
    now,
    customer,
    plan,
    meters,
    values,
    projectedValues,
    subtotal: current.total,
    projectedSubtotal: projected.total,
    duplicatesDropped: counters.duplicatesDropped,
  };
}

/**
 * SPEC 6: per meter the value, allowance used and estimated amount with its tiers; the subtotal
 * as it would be invoiced now (base fee included, rounded per line); the budget used; and a
 * projection to the period end.
 */
export async function readUsage(deps: UsageDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const e = await estimatePeriod(deps, customerId, period);
  const priced = billable(e.values);
  const { plan, customer } = e;
  const baseFee = roundToMinor(plan.baseFee ?? '0', plan.currency);
  const percentOfBudget = (amount: string) =>
    customer?.budget && !dec(customer.budget.amount).isZero() ? dec(amount).div(customer.budget.amount).times(100).toFixed(2) : null;
  return {
    customerId,
    period: period.key,
    periodStart: period.start.toISOString(),
    periodEnd: period.end.toISOString(),
    planId: plan.id,
    currency: plan.currency,
    asOf: e.now.toISOString(),
    meters: e.meters.map((m) => {
      const meter = priceMeter(plan, m.slug, priced[m.slug]!);
      return {
        meter: m.slug,
        displayName: m.displayName,
        unit: m.unit,
        aggregation: m.aggregation,
        value: e.values[m.slug]!,
        included: meter.included,
        percentUsed: meter.percentUsed,
        amount: meter.amount,
        tiers: meter.tiers,
        projectedValue: e.projectedValues[m.slug]!,
      };
    }),
    baseFee,
    subtotal: e.subtotal,
    budget: customer?.budget
      ? {
          amount: roundToMinor(customer.budget.amount, plan.currency),
          percentUsed: percentOfBudget(e.subtotal),
          projectedPercent: percentOfBudget(e.projectedSubtotal),
        }
      : null,
    projection: {
      subtotal: e.projectedSubtotal,
      method: 'SUM and COUNT meters scaled by the elapsed share of the period; peaks, latest and unique values as they are',
    },
    duplicatesDropped: e.duplicatesDropped,
  };
}
