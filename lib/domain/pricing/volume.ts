import { parseQuantity, toPlain, ZERO } from '../money';
import { tierRanges } from './tiers';
import type { ChargeModelPricer } from './types';

/**
 * Volume tiers: every unit is priced at the tier the period total falls in.
 *
 * Tier i covers (from, upTo]: a total exactly at a bound still belongs to the lower tier (with
 * [0, 50000] free and (50000, 1000000] at 0.0008, 50000 costs 0 and 50001 costs 40.0008). A total
 * of 0 is in the first tier and costs nothing, not even that tier's flat fee (the fee is charged,
 * with the units, only when there is usage). One detail: the reached tier with the whole quantity.
 *
 * `included` is informational only (alerts, percent used); the free allowance is a leading
 * zero-price tier in the catalog and is not subtracted again.
 */
export const volume: ChargeModelPricer<'volume'> = {
  model: 'volume',
  price(charge, quantity) {
    const q = parseQuantity(quantity);
    const tier = tierRanges(charge.tiers).find((t) => t.upTo === null || q.lte(t.upTo));
    if (!tier) throw new RangeError(`quantity ${toPlain(q)} is above the last tier`);
    const fee = tier.flatFee !== null && q.gt(ZERO) ? tier.flatFee : null;
    const amount = q.times(tier.unitPrice).plus(fee ?? ZERO);
    return {
      amount: toPlain(amount),
      tiers: [
        {
          index: tier.index,
          from: toPlain(tier.from),
          upTo: tier.upTo === null ? null : toPlain(tier.upTo),
          quantity: toPlain(q),
          unitPrice: toPlain(tier.unitPrice),
          ...(fee !== null ? { flatFee: toPlain(fee) } : {}),
          amount: toPlain(amount),
        },
      ],
    };
  },
};
