import Decimal from 'decimal.js';

/**
 * Quantities (meter values) are exact decimals. They travel as canonical decimal strings
 * ("1234.5", never "1.2345e3"), are summed with decimal.js and stored as DynamoDB numbers,
 * which are exact decimals of up to 38 significant digits.
 *
 * Limits keep every sum inside DynamoDB's 38 digits: |value| < 10^15 and at most 12 decimals,
 * so even 10^9 maximal events in one counter need 15 + 9 + 12 = 36 digits.
 */
export const Q = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -100, toExpPos: 100 });
export type Quantity = InstanceType<typeof Q>;

export const MAX_DECIMALS = 12;
const LIMIT = new Q('1e15');
const NUMERIC_STRING = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export type QuantityParse = { ok: true; value: string } | { ok: false; code: string; message: string };

/** Reads a number or numeric string as an exact decimal; JSON numbers keep their shortest round-trip text. */
export function parseQuantity(raw: unknown): QuantityParse {
  let d: Quantity;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { ok: false, code: 'invalid_value', message: 'value must be a finite number' };
    d = new Q(String(raw));
  } else if (typeof raw === 'string' && NUMERIC_STRING.test(raw.trim())) {
    d = new Q(raw.trim());
  } else if (raw === undefined || raw === null) {
    return { ok: false, code: 'value_missing', message: 'value is required by the meter' };
  } else {
    return { ok: false, code: 'invalid_value', message: 'value must be a finite number or a numeric string' };
  }
  if (d.abs().gte(LIMIT)) return { ok: false, code: 'invalid_value', message: 'value must be smaller than 10^15 in magnitude' };
  if (d.decimalPlaces() > MAX_DECIMALS) {
    return { ok: false, code: 'invalid_value', message: `value may have at most ${MAX_DECIMALS} decimal places` };
  }
  return { ok: true, value: canonical(d) };
}

export function canonical(d: Quantity): string {
  const s = d.toFixed();
  return s === '-0' ? '0' : s;
}

export function sumQuantities(values: Iterable<string>): string {
  let total = new Q(0);
  for (const v of values) total = total.plus(v);
  return canonical(total);
}

export function compareQuantities(a: string, b: string): number {
  return new Q(a).comparedTo(b);
}

export function isNegative(value: string): boolean {
  return value.startsWith('-');
}
