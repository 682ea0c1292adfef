import { dec, parseQuantity, toPlain } from '../money';
import type { ChargeModelPricer } from './types';

/** Flat: the fixed `amount` per period, whatever the quantity (the quantity is still validated). */
export const flat: ChargeModelPricer<'flat'> = {
  model: 'flat',
  price(charge, quantity) {
    parseQuantity(quantity);
    const amount = toPlain(dec(charge.amount, 'amount'));
    return { amount, tiers: [{ index: 0, from: '0', upTo: null, quantity: '1', unitPrice: amount, amount }] };
  },
};
