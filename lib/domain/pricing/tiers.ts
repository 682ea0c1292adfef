import type { Decimal } from 'decimal.js';
import type { Tier } from '../catalog';
import { dec, ZERO } from '../money';

/** A catalog tier with its range made explicit: from = previous upTo (the first starts at 0). */
export interface TierRange {
  index: number;
  from: Decimal;
  upTo: Decimal | null;
  unitPrice: Decimal;
  flatFee: Decimal | null;
}

/**
 * Resolves tier ranges, re-checking what the catalog schema guarantees (bounds strictly increase,
 * only the last tier is open-ended) because a price computed from a malformed tier list would be
 * silently wrong.
 */
export function tierRanges(tiers: Tier[]): TierRange[] {
  if (tiers.length === 0) throw new RangeError('a tiered charge needs at least one tier');
  let from: Decimal = ZERO;
  return tiers.map((tier, index) => {
    const last = index === tiers.length - 1;
    const upTo = tier.upTo === null ? null : dec(tier.upTo, `tiers[${index}].upTo`);
    if (upTo === null && !last) throw new RangeError(`tiers[${index}]: only the last tier may be open-ended`);
    if (upTo !== null && last) throw new RangeError(`tiers[${index}]: the last tier must be open-ended (upTo: null)`);
    if (upTo !== null && (index === 0 ? upTo.lt(from) : upTo.lte(from))) {
      throw new RangeError(`tiers[${index}]: upTo must be greater than the previous tier's upTo`);
    }
    const range: TierRange = {
      index,
      from,
      upTo,
      unitPrice: dec(tier.unitPrice, `tiers[${index}].unitPrice`),
      flatFee: tier.flatFee === undefined ? null : dec(tier.flatFee, `tiers[${index}].flatFee`),
    };
    if (upTo !== null) from = upTo;
    return range;
  });
}
