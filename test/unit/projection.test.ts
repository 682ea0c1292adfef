import fc from 'fast-check';
import { AGGREGATIONS } from '../../lib/domain/catalog';
import { dec } from '../../lib/domain/money';
import { MIN_ELAPSED_MS, projectToPeriodEnd } from '../../lib/domain/projection';

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
