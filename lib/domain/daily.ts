import type { Aggregation } from './catalog';
import type { Period } from './period';

/**
 * The usage page's daily series (docs/portal.md), from the daily counters the aggregator keeps.
 * Days are UTC dates, like the event times that decide them.
 */
const DAY_MS = 86_400_000;

/** The days of a period up to and with the day of `now` (every day once it has ended; none before it starts). */
export function daysSoFar(period: Period, now: Date): string[] {
  const end = Math.min(period.end.getTime(), Math.floor(now.getTime() / DAY_MS) * DAY_MS + DAY_MS);
  const days: string[] = [];
  for (let t = period.start.getTime(); t < end; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

export interface DailyPoint {
  day: string;
  /** null: no reading that day (MAX), or none yet (LATEST). */
  value: string | null;
}

/**
 * One point per day. SUM and COUNT: the day's total, 0 without events. MAX: the day's peak, none
 * without readings. LATEST: the latest reading as of the end of the day, carried over days without
 * one. UNIQUE_COUNT has no daily counters (a marker per value per day would cost more than counting).
 */
export function dailySeries(aggregation: Exclude<Aggregation, 'UNIQUE_COUNT'>, days: string[], counters: Record<string, string>): DailyPoint[] {
  let carried: string | null = null;
  return days.map((day) => {
    const v = counters[day];
    switch (aggregation) {
      case 'SUM':
      case 'COUNT':
        return { day, value: v ?? '0' };
      case 'MAX':
        return { day, value: v ?? null };
      case 'LATEST':
        carried = v ?? carried;
        return { day, value: carried };
    }
  });
}
