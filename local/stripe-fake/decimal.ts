/**
 * Just enough exact decimal arithmetic for `unit_amount_decimal * quantity`.
 *
 * Floating point would turn 0.1 * 3 into 0.30000000000000004 and, after
 * rounding, occasionally produce an amount that differs by one minor unit from
 * what Stripe computes. BigInt keeps it exact.
 */

interface Dec {
  /** value = units / 10^scale */
  units: bigint;
  scale: number;
}

function parse(text: string): Dec {
  const negative = text.startsWith('-');
  const body = negative ? text.slice(1) : text;
  const [int = '0', frac = ''] = body.split('.');
  const units = BigInt(int + frac) * (negative ? -1n : 1n);
  return { units, scale: frac.length };
}

/** Multiplies two decimal strings and rounds half away from zero to an integer. */
export function multiplyToInteger(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  const units = x.units * y.units;
  const divisor = 10n ** BigInt(x.scale + y.scale);
  const negative = units < 0n;
  const abs = negative ? -units : units;
  let q = abs / divisor;
  if ((abs % divisor) * 2n >= divisor) q += 1n;
  return Number(negative ? -q : q);
}

/** Integer part of a non-negative decimal string (Stripe's `quantity` next to `quantity_decimal`). */
export function truncate(text: string): number {
  const d = parse(text);
  return Number(d.units / 10n ** BigInt(d.scale));
}
