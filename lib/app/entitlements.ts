import type { CatalogIndex } from '../domain/catalog';
import { entitlements } from '../domain/entitlements';
import { NotFoundError } from '../domain/errors';
import { termsFor } from '../domain/billing';
import { Period } from '../domain/period';
import { checkCustomerId } from './customer-id';
import type { Clock } from './ports/clock';
import type { CounterReads } from './ports/usage';

export interface EntitlementDeps {
  catalog: CatalogIndex;
  counterReads: CounterReads;
  clock: Clock;
}

/**
 * GET /customers/{id}/entitlements[/{meter}]: per meter the period's usage, the included allowance,
 * the hard limit and whether the customer may still use it, for the current period, from one
 * DynamoDB read. On the hot path of the platform's own API (asked on every request), so nothing
 * else is read: the plan comes from the customer record, the meters from the catalog.
 */
export async function readEntitlements(deps: EntitlementDeps, customerId: string, meter?: string) {
  checkCustomerId(customerId);
  if (meter !== undefined && !deps.catalog.meter(meter)) throw new NotFoundError('meter_not_found', `meter "${meter.slice(0, 64)}" is not in the catalog`);
  const period = Period.containing(deps.clock.now());
  const meters = meter !== undefined ? [meter] : deps.catalog.meters().map((m) => m.slug);
  const { customer, counters } = await deps.counterReads.read(customerId, [period.key], meters);
  const { plan } = termsFor(deps.catalog, customer, period.key);
  const list = entitlements(plan, meters, counters[period.key]!);
  return { customerId, period: period.key, planId: plan.id, entitlements: list };
}
