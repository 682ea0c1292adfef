import { InexactNumber } from './json';
import { Money } from './money';

/**
 * Quantities (meter values) are exact decimals. They travel as canonical decimal strings
 * ("1234.5", never "1.2345e3"), are summed with decimal.js and stored as DynamoDB numbers,
 * which are exact decimals of up to 38 significant digits.
 *
 * Limits keep every sum inside DynamoDB's 38 digits: |value| < 10^15 and at most 12 decimals,
 * so even 10^9 maximal events in one counter need 15 + 9 + 12 = 36 digits.
 */
/** The same decimal configuration as money (lib/domain/money.ts): one set of rules for every number. */
export const Q = Money;
export type Quantity = InstanceType<typeof Q>;

const MAX_DECIMALS = 12;
const LIMIT = new Q('1e15');
const NUMERIC_STRING = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export type QuantityParse = { ok: true; value: string } | { ok: false; code: string; message: string };

/**
 * Reads an event's value (a number or numeric string) as an exact decimal. A JSON number counts
 * as the shortest text of its double, which is its own text whenever the double carries it
 * exactly; one it cannot carry (InexactNumber) is refused rather than rounded.
 */
export function parseReading(raw: unknown): QuantityParse {
  let d: Quantity;
  if (raw instanceof InexactNumber) {
    // Within the limits, the only problem is the transport: the same text as a JSON string is exact.
    const checked = withinLimits(new Q(raw.text));
    if (!checked.ok) return checked;
    return {
      ok: false,
      code: 'inexact_number',
      message: `${raw.text} has more digits than a JSON number (a double) carries exactly; send it as a string ("${checked.value}")`,
    };
  } else if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { ok: false, code: 'invalid_value', message: 'value must be a finite number' };
    d = new Q(String(raw));
  } else if (typeof raw === 'string' && NUMERIC_STRING.test(raw.trim())) {
    d = new Q(raw.trim());
  } else if (raw === undefined || raw === null) {
    return { ok: false, code: 'value_missing', message: 'value is required by the meter' };
  } else {
    return { ok: false, code: 'invalid_value', message: 'value must be a finite number or a numeric string' };
  }
  return withinLimits(d);
}

function withinLimits(d: Quantity): QuantityParse {
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

export function compareQuantities(a: string, b: string): number {
  return new Q(a).comparedTo(b);
}

export function isNegative(value: string): boolean {
  return value.startsWith('-');
}

/** Quantities as they are priced: a negative reading (possible for LATEST meters) prices as zero. */
export function billable(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, isNegative(v) ? '0' : v]));
}
