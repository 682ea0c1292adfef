import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { ValidationError } from '../domain/errors';
import { Period } from '../domain/period';
import { checkCustomerId } from './customers';
import type { Clock, CustomerRepository, UsageLedger } from './ports';

export interface UsageDeps {
  ledger: UsageLedger;
  customers: CustomerRepository;
  catalog: CatalogIndex;
  clock: Clock;
}

export function resolvePeriod(text: string | undefined, clock: Clock): Period {
  if (text === undefined || text === '') return Period.containing(clock.now());
  if (!Period.isValidKey(text)) {
    throw new ValidationError('invalid_period', 'period must be YYYY-MM', [{ field: 'period', code: 'invalid_period', message: `period "${text.slice(0, 32)}" must be YYYY-MM` }]);
  }
  return Period.parse(text);
}

/** SPEC 6: per-meter values of one customer and period, as counted so far. */
export async function readUsage(deps: UsageDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const [counters, customer] = await Promise.all([deps.ledger.read(customerId, period.key), deps.customers.get(customerId)]);
  const plan = (customer && deps.catalog.plan(customer.planId)) || deps.catalog.defaultPlan();
  return {
    customerId,
    period: period.key,
    periodStart: period.start.toISOString(),
    periodEnd: period.end.toISOString(),
    planId: plan.id,
    currency: plan.currency,
    asOf: deps.clock.now().toISOString(),
    meters: deps.catalog.meters().map((m) => ({
      meter: m.slug,
      displayName: m.displayName,
      unit: m.unit,
      aggregation: m.aggregation,
      value: counters.values[m.slug] ?? '0',
    })),
    duplicatesDropped: counters.duplicatesDropped,
  };
}
