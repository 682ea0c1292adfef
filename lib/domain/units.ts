import { dec, formatQuantity, type DecimalInput } from './money';

/**
 * Units in words. A meter's `unit` in the catalog is written as a plural ("calls", "seats", "GB"),
 * which reads wrong after exactly one: "1 seats". These helpers say "1 seat", "3 seats", "1 GB".
 */

/**
 * The singular of a catalog unit, by the regular English rules, on its last word: "seats" -> "seat",
 * "API calls" -> "API call", "queries" -> "query", "boxes" -> "box". A unit those rules cannot be
 * sure of stays as written: symbols and abbreviations ("GB", "kWh", "ms", "kbps"), words that are not
 * plurals ("status", "bonus") and "-ches"/"-shes" ("batches" but "caches").
 */
export function singularUnit(unit: string): string {
  const m = /^(.*?)([A-Za-z]+)$/.exec(unit);
  if (!m) return unit;
  const [, head, word] = m as unknown as [string, string, string];
  if (!/^[a-z]+$/.test(word) || word.length < 4) return unit;
  let one: string;
  if (/ies$/.test(word) && word.length > 4) one = `${word.slice(0, -3)}y`;
  else if (/(?:ch|sh)es$/.test(word) || /(?:ss|us|is|bps)$/.test(word)) return unit;
  else if (/(?:sses|xes|zzes)$/.test(word)) one = word.slice(0, -2);
  else if (/[a-z]s$/.test(word)) one = word.slice(0, -1);
  else return unit;
  return `${head}${one}`;
}

/** The unit that goes with a quantity: singular for exactly one (or minus one), else as written. */
export function unitFor(quantity: DecimalInput, unit: string): string {
  return dec(quantity, 'quantity').abs().eq(1) ? singularUnit(unit) : unit;
}

/** A quantity with its unit, exact and grouped: "1 seat", "10,000 calls", "-1 call", "1.5 GB". */
export function quantityWithUnit(quantity: DecimalInput, unit: string): string {
  const text = formatQuantity(quantity);
  return unit === '' ? text : `${text} ${unitFor(quantity, unit)}`;
}

/**
 * A tier's range in words, with the unit: "up to 10,000 calls", "10,000 to 100,000 calls",
 * "above 3 seats", and "any quantity" for a single open tier from 0 (a flat charge). Tiers are
 * half-open from below, (from, upTo]: the tier from 3 starts at the 4th seat, hence "above 3".
 */
export function tierRangeWords(from: string, upTo: string | null, unit: string): string {
  const zero = dec(from, 'from').isZero();
  if (upTo === null) return zero ? 'any quantity' : `above ${quantityWithUnit(from, unit)}`;
  if (zero) return `up to ${quantityWithUnit(upTo, unit)}`;
  return `${formatQuantity(from)} to ${quantityWithUnit(upTo, unit)}`;
}
