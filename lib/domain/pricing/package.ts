import { dec, Money, parseQuantity, toPlain, ZERO } from '../money';
import type { ChargeModelPricer } from './types';

/**
 * Package pricing: units above `included` are sold in blocks of `packageSize`, a started block is a
 * whole block. billable = max(0, q - included); packages = ceil(billable / packageSize);
 * amount = packages × packagePrice. Here `included` IS subtracted: a package charge has no tiers
 * to express an allowance.
 *
 * The ceiling is taken with exact integer division plus a remainder check, so no rounded quotient
 * can turn 2.9999… into 3 or 3 into 4.
 */
export const packaged: ChargeModelPricer<'package'> = {
  model: 'package',
  price(charge, quantity) {
    const q = parseQuantity(quantity);
    const included = dec(charge.included, 'included');
    const size = dec(charge.packageSize, 'packageSize');
    const price = dec(charge.packagePrice, 'packagePrice');
    if (size.lte(ZERO)) throw new RangeError('packageSize must be greater than 0');
    const billable = Money.max(ZERO, q.minus(included));
    const whole = billable.dividedToIntegerBy(size);
    const packages = whole.times(size).lt(billable) ? whole.plus(1) : whole;
    const amount = packages.times(price);
    return {
      amount: toPlain(amount),
      tiers: [{ index: 0, from: toPlain(included), upTo: null, quantity: toPlain(packages), unitPrice: toPlain(price), amount: toPlain(amount) }],
    };
  },
};
