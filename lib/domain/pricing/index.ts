import type { Charge } from '../catalog';
import { flat } from './flat';
import { graduated } from './graduated';
import { packaged } from './package';
import type { PriceResult } from './types';
import { volume } from './volume';

export type { ChargeOf, PriceResult, TierDetail } from './types';
export { flat, graduated, packaged, volume };

/**
 * Prices one charge for a period quantity (decimal string >= 0) with the module of its model.
 * The switch is exhaustive: a new model in the catalog schema does not compile until it is priced.
 */
export function priceCharge(charge: Charge, quantity: string): PriceResult {
  switch (charge.model) {
    case 'graduated':
      return graduated.price(charge, quantity);
    case 'volume':
      return volume.price(charge, quantity);
    case 'package':
      return packaged.price(charge, quantity);
    case 'flat':
      return flat.price(charge, quantity);
    default:
      return unknownModel(charge);
  }
}

function unknownModel(charge: never): never {
  throw new Error(`unknown charge model ${JSON.stringify((charge as { model?: unknown }).model)}`);
}
