import { Decimal } from 'decimal.js';

/**
 * Money and quantities as exact decimals.
 *
 * Every amount and every quantity enters and leaves the domain as a decimal string and is computed
 * with this decimal.js clone, never with JavaScript numbers (binary floats cannot hold 0.001 exactly,
 * and a bill must be right to the cent). The clone is private to money so a global `Decimal.set`
 * elsewhere cannot change how we bill.
 *
 * - precision 80 significant digits: catalog values have at most 15 integer and 12 fraction digits,
 *   so a quantity times a unit price (<= 54 digits) is always exact; only a division (percent used,
 *   projections) can need rounding, and those results are rounded explicitly.
 * - ROUND_HALF_UP: decimal.js rounds halves away from zero, so 0.125 -> 0.13 and -0.125 -> -0.13
 *   (a negative correction is the mirror image of the positive one).
 * - exponent limits wide open so `toFixed()`/`toString()` never switch to exponential notation.
 */
export const Money = Decimal.clone({
  precision: 80,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -9e15,
  toExpPos: 9e15,
  minE: -9e15,
  maxE: 9e15,
});
export type DecimalInput = string | Decimal;

/** The currencies a plan may be priced in, ISO 4217 in lower case. */
export const CURRENCIES = ['usd', 'eur', 'gbp', 'jpy'] as const;
export type Currency = (typeof CURRENCIES)[number];

const CURRENCY_INFO: Record<Currency, { digits: number; symbol: string }> = {
  usd: { digits: 2, symbol: '$' },
  eur: { digits: 2, symbol: '€' },
  gbp: { digits: 2, symbol: '£' },
  jpy: { digits: 0, symbol: '¥' },
};

const DECIMAL_STRING = /^-?\d+(\.\d+)?$/;

/** Parses a plain decimal string ("12", "-0.5", "10000.25"); exponents, blanks and numbers are refused. */
export function dec(value: DecimalInput, what = 'value'): Decimal {
  if (Decimal.isDecimal(value)) {
    if (!value.isFinite()) throw new RangeError(`${what} must be a finite decimal`);
    return new Money(value);
  }
  if (typeof value !== 'string' || !DECIMAL_STRING.test(value)) {
    throw new TypeError(`${what} must be a decimal string like "12.5", got ${JSON.stringify(value)}`);
  }
  return new Money(value);
}

/** Parses a quantity: a decimal string >= 0 (fractions allowed: seconds, gigabytes). */
export function parseQuantity(value: DecimalInput, what = 'quantity'): Decimal {
  const d = dec(value, what);
  if (d.isNegative() && !d.isZero()) throw new RangeError(`${what} must be >= 0, got ${d.toFixed()}`);
  return d;
}

/** The exact value as a plain decimal string without trailing zeros ("8.00" -> "8"); never "-0". */
export function toPlain(value: Decimal): string {
  return value.isZero() ? '0' : value.toFixed();
}

export const ZERO = new Money(0);

export function sum(values: Decimal[]): Decimal {
  return values.reduce<Decimal>((acc, v) => acc.plus(v), ZERO);
}

export function currencyMinorDigits(currency: string): number {
  return currencyInfo(currency).digits;
}

function currencyInfo(currency: string): (typeof CURRENCY_INFO)[Currency] {
  const key = currency.toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(CURRENCY_INFO, key)) throw new RangeError(`unsupported currency "${currency}"`);
  return CURRENCY_INFO[key as Currency];
}

/**
 * Rounds an exact amount half-up (away from zero) to the currency's minor unit and returns it with
 * exactly that many decimals: ("0.125", "usd") -> "0.13", ("100.5", "jpy") -> "101". Never "-0.00".
 */
export function roundToMinor(amount: DecimalInput, currency: string): string {
  const digits = currencyMinorDigits(currency);
  const rounded = dec(amount, 'amount').toDecimalPlaces(digits, Decimal.ROUND_HALF_UP);
  return (rounded.isZero() ? rounded.abs() : rounded).toFixed(digits);
}

/**
 * A rounded amount as an exact integer count of minor units (cents, yen), as a decimal string:
 * ("76.73", "usd") -> "7673". A string because a bill may exceed 2^53 minor units; whoever sends it
 * to a provider checks the provider's own limit there. Throws when the amount is not already on the
 * minor unit (rounding belongs to the caller, once per line, so a second silent rounding here would
 * hide a bug).
 */
export function toMinorUnits(amount: DecimalInput, currency: string): string {
  const digits = currencyMinorDigits(currency);
  const minor = dec(amount, 'amount').times(new Money(10).pow(digits));
  if (!minor.isInteger()) throw new RangeError(`amount ${toPlain(dec(amount))} has more than ${digits} decimals for ${currency}; round it first`);
  return toPlain(minor);
}

/** Whether a decimal amount has no more decimals than the currency's minor unit ("49.5" is not a yen amount). */
export function isOnMinorUnit(amount: DecimalInput, currency: string): boolean {
  return dec(amount, 'amount').decimalPlaces() <= currencyMinorDigits(currency);
}

/**
 * value / limit × 100 with 2 decimals, truncated: it never shows 80.00 for 79.996, so for the whole
 * percent thresholds of alerts "percent >= threshold" is exactly "value >= threshold% of limit",
 * and the page and the alert always agree.
 */
export function percentOf(value: DecimalInput, limit: DecimalInput): string {
  return dec(value, 'value').div(dec(limit, 'limit')).times(100).toDecimalPlaces(2, Decimal.ROUND_DOWN).toFixed(2);
}

/** Inserts thousands separators into a non-negative plain decimal string. */
function group(plain: string): string {
  const [int = '0', frac] = plain.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/**
 * Money for descriptions: the currency symbol, thousands separators, and every significant decimal
 * but at least the currency's minor digits, so a unit price is shown as priced:
 * "$0.001", "$8.00", "€1.50", "¥100", "$1,234.50", "-$2.10". It never rounds.
 */
export function formatMoney(amount: DecimalInput, currency: string): string {
  const { digits, symbol } = currencyInfo(currency);
  const d = dec(amount, 'amount');
  const abs = d.abs();
  const text = group(abs.toFixed(Math.max(digits, abs.decimalPlaces())));
  return `${d.isNegative() && !d.isZero() ? '-' : ''}${symbol}${text}`;
}

/** A quantity for descriptions, exact, with thousands separators: "90,000", "1,234.5", "-1,500". */
export function formatQuantity(quantity: DecimalInput): string {
  const d = dec(quantity, 'quantity');
  return `${d.isNegative() && !d.isZero() ? '-' : ''}${group(toPlain(d.abs()))}`;
}
