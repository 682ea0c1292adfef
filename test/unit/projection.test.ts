import fc from 'fast-check';
import { AGGREGATIONS } from '../../lib/domain/catalog';
import { dec } from '../../lib/domain/money';
import { dayIncludedReached, MIN_ELAPSED_MS, projectedCrossing, projectToPeriodEnd, runningTotals } from '../../lib/domain/projection';

const november = { periodStart: new Date('2026-11-01T00:00:00Z'), periodEnd: new Date('2026-12-01T00:00:00Z') }; // 30 days
const february = { periodStart: new Date('2026-02-01T00:00:00Z'), periodEnd: new Date('2026-03-01T00:00:00Z') }; // 28 days
const at = (iso: string) => new Date(iso);

describe('projectToPeriodEnd', () => {
  it.each([
    ['SUM', '1000', '2026-11-16T00:00:00Z', '2000'], // half the month -> x2
    ['COUNT', '7', '2026-11-16T00:00:00Z', '14'],
    ['SUM', '1000', '2026-11-11T00:00:00Z', '3000'], // a third -> x3
    ['SUM', '100', '2026-11-08T00:00:00Z', '429'], // 100 × 30 / 7 = 428.57 -> half-up to the value's 0 decimals
    ['SUM', '1', '2026-11-08T00:00:00Z', '4'], // 4.2857
    ['SUM', '10.5', '2026-11-11T00:00:00Z', '31.5'],
    ['SUM', '0.25', '2026-11-08T00:00:00Z', '1.07'], // 1.0714
    ['SUM', '0', '2026-11-20T00:00:00Z', '0'],
    ['SUM', '1000', '2026-11-01T01:00:00Z', '720000'], // exactly one hour in: 720 hours in the month
  ])('%s %s at %s -> %s', (aggregation, value, now, expected) => {
    expect(projectToPeriodEnd({ value, aggregation: aggregation as 'SUM' | 'COUNT', ...november, now: at(now) })).toBe(expected);
  });

  it('uses the length of the period (28 days in February)', () => {
    expect(projectToPeriodEnd({ value: '1000', aggregation: 'SUM', ...february, now: at('2026-02-15T00:00:00Z') })).toBe('2000');
  });

  it.each([
    ['less than an hour in', '2026-11-01T00:59:59.999Z'],
    ['at the period start', '2026-11-01T00:00:00Z'],
    ['before the period', '2026-10-31T12:00:00Z'],
    ['at the period end', '2026-12-01T00:00:00Z'],
    ['after the period', '2026-12-05T00:00:00Z'],
  ])('returns the value as it is %s', (_, now) => {
    expect(projectToPeriodEnd({ value: '1000', aggregation: 'SUM', ...november, now: at(now) })).toBe('1000');
    expect(projectToPeriodEnd({ value: '1000', aggregation: 'COUNT', ...november, now: at(now) })).toBe('1000');
  });

  it.each(['MAX', 'LATEST', 'UNIQUE_COUNT'] as const)('does not extrapolate %s (a peak or level does not grow with time)', (aggregation) => {
    expect(projectToPeriodEnd({ value: '150.5', aggregation, ...november, now: at('2026-11-08T00:00:00Z') })).toBe('150.5');
  });

  it('refuses an empty or inverted period and invalid dates', () => {
    expect(() =>
      projectToPeriodEnd({ value: '1', aggregation: 'SUM', periodStart: november.periodEnd, periodEnd: november.periodStart, now: at('2026-11-08T00:00:00Z') }),
    ).toThrow(/after periodStart/);
    expect(() => projectToPeriodEnd({ value: '1', aggregation: 'SUM', ...november, now: at('not a date') })).toThrow(/valid dates/);
  });

  it('refuses a value that is not a decimal string', () => {
    expect(() => projectToPeriodEnd({ value: '1e3', aggregation: 'SUM', ...november, now: at('2026-11-08T00:00:00Z') })).toThrow();
  });

  it('refuses an unknown aggregation', () => {
    expect(() => projectToPeriodEnd({ value: '1', aggregation: 'MEDIAN' as 'SUM', ...november, now: at('2026-11-08T00:00:00Z') })).toThrow(
      /unknown aggregation/,
    );
  });

  it('covers every aggregation of the catalog', () => {
    for (const aggregation of AGGREGATIONS) {
      expect(() => projectToPeriodEnd({ value: '1', aggregation, ...november, now: at('2026-11-08T00:00:00Z') })).not.toThrow();
    }
  });

  it('property: SUM projects to value × period / elapsed within half a unit of the value’s last significant decimal, never below the value', () => {
    const periodMs = november.periodEnd.getTime() - november.periodStart.getTime();
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: MIN_ELAPSED_MS, max: periodMs - 1 }),
        (n, scale, elapsedMs) => {
          const digits = n.toString().padStart(scale + 1, '0');
          const value = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
          const now = new Date(november.periodStart.getTime() + elapsedMs);
          const projected = dec(projectToPeriodEnd({ value, aggregation: 'SUM', ...november, now }));
          const exact = dec(value).times(periodMs).div(elapsedMs);
          const places = dec(value).decimalPlaces(); // "12.50" has 1 significant decimal
          expect(
            projected
              .minus(exact)
              .abs()
              .lte(dec('0.5').div(dec('10').pow(places))),
          ).toBe(true);
          expect(projected.gte(value)).toBe(true);
          expect(projected.decimalPlaces()).toBeLessThanOrEqual(places);
        },
      ),
    );
  });
});

describe('runningTotals and dayIncludedReached', () => {
  it('adds the days up exactly (no float: 0.1 + 0.2 is 0.3) and finds the day the included units were reached', () => {
    const running = runningTotals([
      { day: '2026-11-01', value: '0.1' },
      { day: '2026-11-02', value: '0.2' },
      { day: '2026-11-03', value: null },
      { day: '2026-11-04', value: '9999.7' },
    ]);
    expect(running).toEqual([
      { day: '2026-11-01', value: '0.1', total: '0.1' },
      { day: '2026-11-02', value: '0.2', total: '0.3' },
      { day: '2026-11-03', value: '0', total: '0.3' },
      { day: '2026-11-04', value: '9999.7', total: '10000' },
    ]);
    expect(dayIncludedReached(running, '10000')).toBe('2026-11-04'); // reached counts, as for the alerts (>=)
    expect(dayIncludedReached(running, '0.3')).toBe('2026-11-02');
    expect(dayIncludedReached(running, '10000.1')).toBeUndefined();
    expect(dayIncludedReached(running, '0')).toBeUndefined(); // nothing included: nothing to reach
  });
});

describe('projectedCrossing', () => {
  const input = (value: string, included: string, now: string, aggregation: 'SUM' | 'COUNT' | 'MAX' = 'SUM') => ({
    value,
    included,
    aggregation,
    ...november,
    now: at(now),
  });

  it('is the instant the run rate so far reaches the included units: 2,000 in 5 days against 10,000 is day 25', () => {
    // 400 a day: 10,000 after 25 days, at the start of 2026-11-26; the projection says 12,000.
    expect(projectedCrossing(input('2000', '10000', '2026-11-06T00:00:00Z'))).toEqual({ at: at('2026-11-26T00:00:00Z'), day: '2026-11-26' });
    expect(projectToPeriodEnd({ value: '2000', aggregation: 'SUM', ...november, now: at('2026-11-06T00:00:00Z') })).toBe('12000');
    // 7 in the first hour against 10: 10 × 3,600,000 / 7 = 5,142,857.14 ms in, rounded up to the millisecond.
    expect(projectedCrossing(input('7', '10', '2026-11-01T01:00:00Z', 'COUNT'))).toEqual({ at: at('2026-11-01T01:25:42.858Z'), day: '2026-11-01' });
  });

  it.each([
    ['the projection stays within the included units', input('1000', '10000', '2026-11-06T00:00:00Z')], // 6,000 projected
    ['the projection ends exactly at the included units', input('2000', '12000', '2026-11-06T00:00:00Z')], // reached at the period end, not in it
    ['the included units are reached already', input('10000', '10000', '2026-11-06T00:00:00Z')],
    ['nothing is included', input('1000', '0', '2026-11-06T00:00:00Z')],
    ['nothing is used yet', input('0', '10000', '2026-11-06T00:00:00Z')],
    ['a peak is not scaled with time', input('2000', '10000', '2026-11-06T00:00:00Z', 'MAX')],
    ['less than an hour in', input('5000', '10000', '2026-11-01T00:30:00Z')],
    ['the period is over', input('2000', '10000', '2026-12-01T00:00:00Z')],
  ])('is null when %s', (_, i) => {
    expect(projectedCrossing(i)).toBeNull();
  });

  it('property: the day is where the projection line reaches the included units, and there is one exactly when the projection passes them', () => {
    const start = november.periodStart.getTime();
    const periodMs = november.periodEnd.getTime() - start;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: MIN_ELAPSED_MS, max: periodMs - 1 }),
        (v, inc, elapsedMs) => {
          const [value, included] = [String(v), String(inc)];
          const now = new Date(start + elapsedMs);
          const crossing = projectedCrossing({ value, included, aggregation: 'SUM', ...november, now });
          const runRateAt = (ms: number) =>
            dec(value)
              .times(ms - start)
              .div(elapsedMs); // the projection line
          const passes = v < inc && dec(value).times(periodMs).gt(dec(included).times(elapsedMs));
          expect(crossing !== null).toBe(passes);
          if (crossing) {
            const t = crossing.at.getTime();
            expect(runRateAt(t).gte(included)).toBe(true);
            expect(runRateAt(t - 1).lt(included)).toBe(true);
            expect(t).toBeGreaterThan(now.getTime());
            expect(t).toBeLessThan(november.periodEnd.getTime());
            expect(crossing.day).toBe(crossing.at.toISOString().slice(0, 10));
            expect(dec(projectToPeriodEnd({ value, aggregation: 'SUM', ...november, now })).gte(included)).toBe(true);
          }
        },
      ),
    );
  });
});
