/**
 * A small, obviously correct model of what a period costs, written apart from the production code:
 * plain loops over the catalog, integers only (BigInt, quantities and prices scaled by 10^12), each
 * line rounded half-up to the currency's minor unit, the total the sum of the lines.
 */
interface ModelTier {
  upTo: string | null;
  unitPrice: string;
  flatFee?: string;
}
type ModelCharge =
  | { meter: string; model: 'graduated' | 'volume'; included?: string; tiers: ModelTier[] }
  | { meter: string; model: 'package'; included?: string; packageSize: string; packagePrice: string }
  | { meter: string; model: 'flat'; included?: string; amount: string };
export interface ModelPlan {
  id: string;
  currency: 'usd' | 'jpy';
  baseFee?: string;
  charges: ModelCharge[];
}

const SCALE = 12;
const ONE = 10n ** BigInt(SCALE);

/** "12.5" -> 12.5 × 10^12 as a BigInt. */
function scaled(text: string): bigint {
  const negative = text.startsWith('-');
  const [int = '0', frac = ''] = (negative ? text.slice(1) : text).split('.');
  const value = BigInt(int) * ONE + BigInt((frac + '0'.repeat(SCALE)).slice(0, SCALE));
  return negative ? -value : value;
}

const DIGITS = { usd: 2, jpy: 0 } as const;

/** An amount scaled by 10^(2 × 12) rounded half-up (away from zero) to minor units. */
function roundProduct(product: bigint, currency: 'usd' | 'jpy'): bigint {
  const divisor = 10n ** BigInt(2 * SCALE - DIGITS[currency]);
  const negative = product < 0n;
  const abs = negative ? -product : product;
  const rounded = (abs + divisor / 2n) / divisor;
  return negative ? -rounded : rounded;
}
/** A fixed amount (scaled by 10^12) in minor units. */
const fixedMinor = (amount: string, currency: 'usd' | 'jpy') => roundProduct(scaled(amount) * ONE, currency);

/** What `quantity` of a meter costs under one charge, as a list of rounded lines in minor units. */
function chargeLines(charge: ModelCharge, quantity: bigint, fees: boolean, currency: 'usd' | 'jpy'): bigint[] {
  const lines: bigint[] = [];
  switch (charge.model) {
    case 'graduated': {
      // Each unit in the tier it falls in: [0, upTo1), [upTo1, upTo2), ... [upToN, infinity).
      let from = 0n;
      for (let i = 0; i < charge.tiers.length; i++) {
        const tier = charge.tiers[i]!;
        if (i > 0 && quantity <= from) break;
        const upTo = tier.upTo === null ? null : scaled(tier.upTo);
        const top = upTo === null || quantity < upTo ? quantity : upTo;
        const inTier = top - from;
        lines.push(roundProduct(inTier * scaled(tier.unitPrice), currency));
        if (tier.flatFee !== undefined && inTier > 0n) lines.push(fixedMinor(tier.flatFee, currency));
        if (upTo !== null) from = upTo;
      }
      return lines;
    }
    case 'volume': {
      const tier = charge.tiers.find((t) => t.upTo === null || quantity <= scaled(t.upTo))!;
      lines.push(roundProduct(quantity * scaled(tier.unitPrice), currency));
      if (tier.flatFee !== undefined && quantity > 0n) lines.push(fixedMinor(tier.flatFee, currency));
      return lines;
    }
    case 'package': {
      const billable = quantity - scaled(charge.included ?? '0');
      if (billable <= 0n) return [];
      const size = scaled(charge.packageSize);
      const packages = (billable + size - 1n) / size;
      return [roundProduct(packages * ONE * scaled(charge.packagePrice), currency)];
    }
    case 'flat':
      return fees ? [fixedMinor(charge.amount, currency)] : [];
  }
}

/** A period's price in minor units: base fee (when fees are owed) plus every charge's rounded lines. */
export function modelPrice(plan: ModelPlan, usage: Record<string, string>, fees: boolean): bigint {
  let total = fees && plan.baseFee !== undefined ? fixedMinor(plan.baseFee, plan.currency) : 0n;
  for (const charge of plan.charges) {
    const raw = scaled(usage[charge.meter] ?? '0');
    for (const line of chargeLines(charge, raw < 0n ? 0n : raw, fees, plan.currency)) total += line;
  }
  return total;
}
