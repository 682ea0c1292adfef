import type { Plan } from './catalog';
import { Money } from './money';
import { billable } from './quantity';

/**
 * Entitlements: may this customer use this meter now? A charge's `limit` is a hard cap per period;
 * once the period's usage reaches it, `hasAccess` is false (the platform stops serving; metering
 * itself never refuses an event). A meter without a limit, or not charged by the plan, is always
 * accessible. Quantities are exact decimal strings.
 */
export interface Entitlement {
  meter: string;
  usage: string;
  included: string;
  /** The hard cap, or null when the meter has none. */
  limit: string | null;
  /** limit - usage, never below 0; null without a limit. */
  remaining: string | null;
  hasAccess: boolean;
}

export function entitlements(plan: Plan, meters: string[], counters: Record<string, string>): Entitlement[] {
  const values = billable(counters);
  return meters.map((meter) => {
    const charge = plan.charges.find((c) => c.meter === meter);
    const usage = new Money(values[meter] ?? '0');
    const limit = charge?.limit === undefined ? null : new Money(charge.limit);
    return {
      meter,
      usage: usage.toFixed(),
      included: new Money(charge?.included ?? '0').toFixed(),
      limit: limit === null ? null : limit.toFixed(),
      remaining: limit === null ? null : Money.max(0, limit.minus(usage)).toFixed(),
      hasAccess: limit === null || usage.lt(limit),
    };
  });
}
