import type { Aggregation } from './catalog';
import { dec, Money, toPlain } from './money';

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
