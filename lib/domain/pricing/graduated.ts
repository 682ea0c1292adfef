import type { Decimal } from 'decimal.js';
import { Money, parseQuantity, sum, toPlain, ZERO } from '../money';
import { tierRanges } from './tiers';
import type { ChargeModelPricer, TierDetail } from './types';

/**
 * Graduated tiers: each unit is priced by the tier it falls in.
 *
 * Tier i covers the half-open range [from, upTo) with from = the previous tier's upTo (0 for the
 * first). Quantities are continuous, so a quantity q puts min(q, upTo) - from units in every tier it
 * reaches (q > from). With tiers [0, 10000) free and [10000, 100000) at 0.001, q = 10000 costs 0 and
 * q = 10000.5 costs 0.0005.
 *
 * The details list every tier the quantity reaches, free ones included (the first tier is always
 * listed, even for q = 0), so a usage page shows how much of the free allowance is used; the
 * detail quantities add up to q. A tier's `flatFee` is charged once when some quantity (> 0) falls
 * in it.
 *
 * `included` is NOT subtracted: the catalog expresses the free allowance as a leading zero-price
 * tier, and `included` only tells alerts and "percent used" how big that allowance is. Subtracting
 * it as well would give the allowance away twice.
 */
export const graduated: ChargeModelPricer<'graduated'> = {
  model: 'graduated',
  price(charge, quantity) {
    const q = parseQuantity(quantity);
    const details: TierDetail[] = [];
    const amounts: Decimal[] = [];
    for (const tier of tierRanges(charge.tiers)) {
      if (tier.index > 0 && q.lte(tier.from)) break;
      const top = tier.upTo === null ? q : Money.min(q, tier.upTo);
      const inTier = top.minus(tier.from);
      const fee = tier.flatFee !== null && inTier.gt(ZERO) ? tier.flatFee : null;
      const amount = inTier.times(tier.unitPrice).plus(fee ?? ZERO);
      amounts.push(amount);
      details.push({
        index: tier.index,
        from: toPlain(tier.from),
        upTo: tier.upTo === null ? null : toPlain(tier.upTo),
        quantity: toPlain(inTier),
        unitPrice: toPlain(tier.unitPrice),
        ...(fee !== null ? { flatFee: toPlain(fee) } : {}),
        amount: toPlain(amount),
      });
    }
    return { amount: toPlain(sum(amounts)), tiers: details };
  },
};
