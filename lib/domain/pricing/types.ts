import type { Charge, ChargeModel } from '../catalog';

/** The charge of one model, e.g. `ChargeOf<'package'>` has `packageSize` and `packagePrice`. */
export type ChargeOf<M extends ChargeModel> = Extract<Charge, { model: M }>;

/**
 * How one tier (or package block, or flat fee) contributed to a charge. All numbers are exact
 * decimal strings; nothing here is rounded (rounding happens once per invoice line).
 */
export interface TierDetail {
  /** Position of the tier in the catalog (0-based); 0 for package and flat charges. */
  index: number;
  /** Lower bound of the tier's range (package: the included units billing starts above). */
  from: string;
  /** Upper bound of the tier's range, null when open-ended. */
  upTo: string | null;
  /** Units priced in this tier (package: number of packages; flat: "1"). */
  quantity: string;
  /** Price per unit (package: price per package; flat: the flat amount). */
  unitPrice: string;
  /** The tier's flat fee, present only when it is charged (some quantity fell in the tier). */
  flatFee?: string;
  /** quantity × unitPrice + flatFee, exact. */
  amount: string;
}

export interface PriceResult {
  /** Exact, unrounded amount of the charge: the sum of the details' amounts. */
  amount: string;
  tiers: TierDetail[];
}

/** One charge model: prices a charge of that model for a period quantity (decimal string >= 0). */
export interface ChargeModelPricer<M extends ChargeModel> {
  readonly model: M;
  price(charge: ChargeOf<M>, quantity: string): PriceResult;
}
