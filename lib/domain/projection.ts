import type { Aggregation } from './catalog';
import { dec, Money, toPlain, ZERO } from './money';

export interface ProjectionInput {
  /** The meter's value so far in the period (decimal string). */
  value: string;
  aggregation: Aggregation;
  /** The period, half-open [periodStart, periodEnd). */
  periodStart: Date;
  periodEnd: Date;
  /** The injected clock's time; the domain never reads the system clock. */
  now: Date;
}

/** Before this much of the period has passed, a run rate is noise (one burst at 00:05 would project x8000). */
export const MIN_ELAPSED_MS = 60 * 60 * 1000;

/**
 * Projects a meter's value to the end of its period, for the usage page and forecast alerts.
 *
 * - SUM and COUNT accumulate, so they are scaled linearly by the elapsed share of the period:
 *   value × periodLength / elapsed. Less than one hour into the period there is no meaningful run
 *   rate and the value itself is returned; at or after the period end the value is final.
 * - MAX, LATEST and UNIQUE_COUNT are returned as they are: a peak or a current level does not grow
 *   with time, and distinct users do not add up linearly (the same users come back), so
 *   extrapolating them would overstate the bill.
 *
 * The result is an estimate, rounded half-up to the value's significant decimal places ("12.50"
 * has one; integer counters project to integers), and computed with decimals like every quantity.
 */
export function projectToPeriodEnd(input: ProjectionInput): string {
  const { aggregation, periodStart, periodEnd, now } = input;
  const value = dec(input.value, 'value');
  const start = periodStart.getTime();
  const end = periodEnd.getTime();
  const at = now.getTime();
  if (![start, end, at].every(Number.isFinite)) throw new RangeError('periodStart, periodEnd and now must be valid dates');
  if (end <= start) throw new RangeError('periodEnd must be after periodStart');
  switch (aggregation) {
    case 'MAX':
    case 'LATEST':
    case 'UNIQUE_COUNT':
      return toPlain(value);
    case 'SUM':
    case 'COUNT': {
      // Epoch milliseconds are integers; the ratio is taken in decimals.
      const elapsed = new Money(at).minus(start);
      if (elapsed.lt(MIN_ELAPSED_MS) || at >= end) return toPlain(value);
      const projected = value.times(new Money(end).minus(start)).div(elapsed);
      return toPlain(projected.toDecimalPlaces(value.decimalPlaces(), Money.ROUND_HALF_UP));
    }
    default:
      return unknownAggregation(aggregation);
  }
}

function unknownAggregation(aggregation: never): never {
  throw new Error(`unknown aggregation ${JSON.stringify(aggregation)}`);
}

// ---------------------------------------------------------------------------------------------
// Summed meters against their allowance (the usage page's running-total chart)

/** A day of a summed meter: its own value and the running total of the period through it. */
export interface RunningPoint {
  day: string;
  value: string;
  total: string;
}

/** Running totals of a SUM or COUNT meter's daily values, exact (a day without a value adds 0). */
export function runningTotals(points: readonly { day: string; value: string | null }[]): RunningPoint[] {
  let total = ZERO;
  return points.map((p) => {
    const value = dec(p.value ?? '0', 'value');
    total = total.plus(value);
    return { day: p.day, value: toPlain(value), total: toPlain(total) };
  });
}

/** The first day whose running total reaches `included` (>= it, as the alerts count); undefined if none does or nothing is included. */
export function dayIncludedReached(running: readonly RunningPoint[], included: string): string | undefined {
  const limit = dec(included, 'included');
  if (limit.lte(0)) return undefined;
  return running.find((p) => dec(p.total, 'total').gte(limit))?.day;
}

export interface CrossingInput extends ProjectionInput {
  /** The units included in the plan (decimal string). */
  included: string;
}

/**
 * When a summed meter is projected to reach its included units, at the run rate of
 * projectToPeriodEnd (the value so far over the time gone): the instant value × t / elapsed
 * = included, i.e. periodStart + included × elapsed / value, rounded up to the millisecond, and its
 * UTC day. Null when that is not within the period (the projection stays at or below the included
 * units), when the units are reached already, when nothing is included, for meters that are not
 * scaled with time (MAX, LATEST, UNIQUE_COUNT), and when projectToPeriodEnd would not project
 * (less than an hour in, or the period over).
 */
export function projectedCrossing(input: CrossingInput): { at: Date; day: string } | null {
  const { aggregation, periodStart, periodEnd, now } = input;
  const value = dec(input.value, 'value');
  const included = dec(input.included, 'included');
  const start = periodStart.getTime();
  const end = periodEnd.getTime();
  const at = now.getTime();
  if (![start, end, at].every(Number.isFinite)) throw new RangeError('periodStart, periodEnd and now must be valid dates');
  if (end <= start) throw new RangeError('periodEnd must be after periodStart');
  if (aggregation !== 'SUM' && aggregation !== 'COUNT') return null;
  if (included.lte(0) || value.lte(0) || value.gte(included)) return null;
  const elapsed = new Money(at).minus(start);
  if (elapsed.lt(MIN_ELAPSED_MS) || at >= end) return null;
  const crossing = included.times(elapsed).div(value).toDecimalPlaces(0, Money.ROUND_UP).plus(start);
  if (crossing.gte(end)) return null;
  const instant = new Date(crossing.toNumber());
  return { at: instant, day: instant.toISOString().slice(0, 10) };
}
