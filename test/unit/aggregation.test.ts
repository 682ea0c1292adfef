import fc from 'fast-check';
import { compareUtf8, distinctEvents, latestOrder, planAggregation, UnknownMeterError } from '../../lib/domain/aggregation';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import type { MeteredEvent } from '../../lib/domain/events';
import fixture from '../fixtures/catalog.json';

const catalog = new CatalogIndex(parseCatalog(fixture));
const e = (id: string, readings: Record<string, string>, over: Partial<MeteredEvent> = {}): MeteredEvent => ({
  source: 's',
  id,
  type: 't',
  customerId: 'c1',
  time: '2026-11-23T18:00:00.000000000Z',
  period: '2026-11',
  readings,
  ...over,
});

describe('planAggregation', () => {
  it('sums SUM/COUNT exactly per (customer, period, meter)', () => {
    const plan = planAggregation(
      [e('1', { api_calls: '0.1', api_requests: '1' }), e('2', { api_calls: '0.2', api_requests: '1' }), e('3', { api_calls: '5' }, { customerId: 'c2' })],
      [],
      catalog,
    );
    expect(plan.additive).toEqual([
      { customerId: 'c1', period: '2026-11', meter: 'api_calls', delta: '0.3', events: 2 },
      { customerId: 'c1', period: '2026-11', meter: 'api_requests', delta: '2', events: 2 },
      { customerId: 'c2', period: '2026-11', meter: 'api_calls', delta: '5', events: 1 },
    ]);
  });

  it('keeps the maximum for MAX, by decimal value not text', () => {
    const plan = planAggregation([e('1', { storage_gb: '9.5' }), e('2', { storage_gb: '10' }), e('3', { storage_gb: '2' })], [], catalog);
    expect(plan.max).toEqual([{ customerId: 'c1', period: '2026-11', meter: 'storage_gb', value: '10' }]);
  });

  it('keeps the latest reading for LATEST by time, then source, then id', () => {
    const plan = planAggregation(
      [
        e('1', { queue_depth: '5' }, { time: '2026-11-23T18:00:01.000000000Z' }),
        e('2', { queue_depth: '9' }, { time: '2026-11-23T18:00:00.000000000Z' }),
        e('0', { queue_depth: '7' }, { time: '2026-11-23T18:00:01.000000000Z' }),
      ],
      [],
      catalog,
    );
    expect(plan.latest[0]!.value).toBe('5');
    expect(plan.latest[0]!.order).toContain('2026-11-23T18:00:01.000000000Z');
  });

  it('orders LATEST readings by the tuple (time, source, id), each compared as a string, never by a joined key', () => {
    // Joined with U+0001, ("a", "x") beat ("a\u0000", "x") and ("a\u0001b", "c") met ("a", "b\u0001c") on one key.
    const t = '2026-11-23T18:00:00.000000000Z';
    const latestOf = (...events: MeteredEvent[]) => planAggregation(events, [], catalog).latest[0]!.value;
    const a = e('x', { queue_depth: '1' }, { source: 'a' });
    const aNul = e('x', { queue_depth: '2' }, { source: 'a\u0000' });
    expect(latestOf(a, aNul)).toBe('2');
    expect(latestOf(aNul, a)).toBe('2');
    const left = e('c', { queue_depth: '3' }, { source: 'a\u0001b' });
    const right = e('b\u0001c', { queue_depth: '4' }, { source: 'a' });
    expect(latestOrder(left)).not.toBe(latestOrder(right));
    expect(latestOf(left, right)).toBe('3'); // "a\u0001b" > "a"
    expect(latestOf(right, left)).toBe('3');
    expect(latestOf(e('a\u0000', { queue_depth: '5' }, { time: t }), e('a', { queue_depth: '6' }, { time: t }))).toBe('5');
  });

  it('keeps the tuple order in the stored order key for any source and id (property, control characters included)', () => {
    const chars = fc.constantFrom('\u0000', '\u0001', '\u0002', 'a', 'b', '\uffff', '\u{1F600}', '\ue000');
    const text = fc.array(chars, { maxLength: 5 }).map((cs) => cs.join(''));
    const time = fc.constantFrom('2026-11-23T18:00:00.000000000Z', '2026-11-23T18:00:00.000000001Z');
    const sign = (n: number) => Math.sign(n);
    /** Strings compared as DynamoDB compares them: by their UTF-8 code units (which is code point order). */
    const byString = (x: string, y: string) => compareUtf8(x, y);
    fc.assert(
      fc.property(time, text, text, time, text, text, (t1, s1, i1, t2, s2, i2) => {
        const tuple = byString(t1, t2) || byString(s1, s2) || byString(i1, i2);
        const keys = compareUtf8(latestOrder(e(i1, {}, { time: t1, source: s1 })), latestOrder(e(i2, {}, { time: t2, source: s2 })));
        expect(sign(keys)).toBe(sign(tuple));
      }),
      { numRuns: 5000, seed: 20261207 },
    );
  });

  it('collects distinct values for UNIQUE_COUNT', () => {
    const plan = planAggregation([e('1', { active_users: 'b' }), e('2', { active_users: 'a' }), e('3', { active_users: 'b' })], [], catalog);
    expect(plan.unique).toEqual([{ customerId: 'c1', period: '2026-11', meter: 'active_users', values: ['a', 'b'] }]);
  });

  it('tallies duplicates per customer and period, separate from counters', () => {
    const plan = planAggregation([], [e('1', { api_calls: '1' }), e('1', { api_calls: '1' }), e('2', { api_calls: '1' }, { period: '2026-10' })], catalog);
    expect(plan.additive).toEqual([]);
    expect(plan.duplicates).toEqual([
      { customerId: 'c1', period: '2026-10', count: 1 },
      { customerId: 'c1', period: '2026-11', count: 2 },
    ]);
  });

  it('builds the same plan whatever the order of events (redeliveries rebuild identical transactions)', () => {
    const events = Array.from({ length: 30 }, (_, i) => e(String(i), { api_calls: String(i), active_users: `u${i % 4}` }, { customerId: `c${i % 3}` }));
    expect(planAggregation([...events].reverse(), [], catalog)).toEqual(planAggregation(events, [], catalog));
  });

  it('counts SUM and COUNT per UTC day of the event time too, beside the period counter', () => {
    const plan = planAggregation(
      [
        e('1', { api_calls: '1.5', api_requests: '1' }, { time: '2026-11-02T23:59:59.999999999Z' }),
        e('2', { api_calls: '2', api_requests: '1' }, { time: '2026-11-03T00:00:00.000000000Z' }),
        e('3', { api_calls: '0.5', api_requests: '1' }, { time: '2026-11-03T12:00:00.000000000Z' }),
      ],
      [],
      catalog,
    );
    expect(plan.additive).toEqual([
      { customerId: 'c1', period: '2026-11', meter: 'api_calls', delta: '4', events: 3 },
      { customerId: 'c1', period: '2026-11', meter: 'api_requests', delta: '3', events: 3 },
    ]);
    expect(plan.daily.additive).toEqual([
      { customerId: 'c1', period: '2026-11', meter: 'api_calls', day: '2026-11-02', delta: '1.5', events: 1 },
      { customerId: 'c1', period: '2026-11', meter: 'api_calls', day: '2026-11-03', delta: '2.5', events: 2 },
      { customerId: 'c1', period: '2026-11', meter: 'api_requests', day: '2026-11-02', delta: '1', events: 1 },
      { customerId: 'c1', period: '2026-11', meter: 'api_requests', day: '2026-11-03', delta: '2', events: 2 },
    ]);
  });

  it('keeps the peak and the latest reading per day for MAX and LATEST', () => {
    const plan = planAggregation(
      [
        e('1', { storage_gb: '9', queue_depth: '4' }, { time: '2026-11-02T08:00:00.000000000Z' }),
        e('2', { storage_gb: '3', queue_depth: '6' }, { time: '2026-11-02T09:00:00.000000000Z' }),
        e('3', { storage_gb: '5', queue_depth: '1' }, { time: '2026-11-03T01:00:00.000000000Z' }),
      ],
      [],
      catalog,
    );
    expect(plan.max).toEqual([{ customerId: 'c1', period: '2026-11', meter: 'storage_gb', value: '9' }]);
    expect(plan.daily.max).toEqual([
      { customerId: 'c1', period: '2026-11', meter: 'storage_gb', day: '2026-11-02', value: '9' },
      { customerId: 'c1', period: '2026-11', meter: 'storage_gb', day: '2026-11-03', value: '5' },
    ]);
    expect(plan.latest.map((c) => c.value)).toEqual(['1']);
    expect(plan.daily.latest.map((c) => [c.day, c.value])).toEqual([
      ['2026-11-02', '6'],
      ['2026-11-03', '1'],
    ]);
    expect(plan.daily.latest[0]!.order).toBe(latestOrder({ ...e('2', {}), time: '2026-11-02T09:00:00.000000000Z' }));
  });

  it('keeps no daily series for UNIQUE_COUNT (a marker per value per day would cost more than the counting) nor for duplicates', () => {
    const plan = planAggregation([e('1', { active_users: 'ann' })], [e('1', { api_calls: '1' })], catalog);
    expect(plan.unique).toHaveLength(1);
    expect(plan.daily).toEqual({ additive: [], max: [], latest: [] });
  });

  it('refuses a reading for a meter the catalog no longer has (the message is retried, not dropped)', () => {
    expect(() => planAggregation([e('1', { gone: '1' })], [], catalog)).toThrow(UnknownMeterError);
  });
});

describe('distinctEvents', () => {
  it('keeps the first of each (source, id) and returns the repeats', () => {
    const { distinct, repeats } = distinctEvents([e('1', {}), e('2', {}), e('1', {}), e('1', {}, { source: 'other' })]);
    expect(distinct.map((x) => `${x.source}/${x.id}`)).toEqual(['s/1', 's/2', 'other/1']);
    expect(repeats).toHaveLength(1);
  });
});
