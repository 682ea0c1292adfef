import { dailySeries, daysSoFar } from '../../lib/domain/daily';
import { Period } from '../../lib/domain/period';

const november = Period.parse('2026-11');

describe('daysSoFar: one point per day of the period so far (UTC)', () => {
  it.each([
    ['before the period starts', '2026-10-31T23:59:59Z', 0, undefined, undefined],
    ['its first instant', '2026-11-01T00:00:00Z', 1, '2026-11-01', '2026-11-01'],
    ['mid-period, up to and with today', '2026-11-23T18:00:00Z', 23, '2026-11-01', '2026-11-23'],
    ['its last instant', '2026-11-30T23:59:59.999Z', 30, '2026-11-01', '2026-11-30'],
    ['after it ended: every day', '2027-03-01T00:00:00Z', 30, '2026-11-01', '2026-11-30'],
  ])('%s', (_, now, count, first, last) => {
    const days = daysSoFar(november, new Date(now));
    expect([days.length, days[0], days.at(-1)]).toEqual([count, first, last]);
  });

  it('knows February of a leap year', () => {
    expect(daysSoFar(Period.parse('2028-02'), new Date('2028-03-05T00:00:00Z'))).toHaveLength(29);
  });
});

describe('dailySeries: a value per day, from the daily counters', () => {
  const days = ['2026-11-01', '2026-11-02', '2026-11-03', '2026-11-04'];
  const counters = { '2026-11-02': '1500', '2026-11-04': '7.5' };

  it.each([
    ['SUM: the day total, 0 on a day without events', 'SUM', ['0', '1500', '0', '7.5']],
    ['COUNT: the same', 'COUNT', ['0', '1500', '0', '7.5']],
    ['MAX: the day peak, none on a day without readings', 'MAX', [null, '1500', null, '7.5']],
    ['LATEST: the latest reading as of the end of the day, carried over days without one', 'LATEST', [null, '1500', '1500', '7.5']],
  ] as const)('%s', (_, aggregation, values) => {
    expect(dailySeries(aggregation, days, counters)).toEqual(days.map((day, i) => ({ day, value: values[i] })));
  });

  it('ignores counters outside the days asked for (a day still to come has none)', () => {
    expect(dailySeries('SUM', days.slice(0, 2), counters)).toEqual([
      { day: '2026-11-01', value: '0' },
      { day: '2026-11-02', value: '1500' },
    ]);
  });
});
