import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { parseEventTime, validateEvent } from '../../lib/domain/events';
import { Period } from '../../lib/domain/period';
import { parseReading } from '../../lib/domain/quantity';
import fixture from '../fixtures/catalog.json';

const catalog = new CatalogIndex(parseCatalog(fixture));
const now = new Date('2026-11-23T18:00:00Z');
const ctx = { catalog, now, maxAgeMs: 35 * 86_400_000 };
const ev = (over: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id: 'e1',
  source: 'src',
  type: 'api_calls',
  subject: 'cus_42',
  time: '2026-11-23T17:59:00Z',
  data: { value: 1 },
  ...over,
});
const codes = (raw: unknown) => {
  const v = validateEvent(raw, 0, ctx);
  return v.ok ? [] : v.errors.map((e) => `${e.field ?? ''}:${e.code}`);
};

describe('validateEvent', () => {
  it('turns a valid event into readings for every meter of its type', () => {
    const v = validateEvent(ev({ data: { value: 0.1 } }), 0, ctx);
    expect(v).toEqual({
      ok: true,
      event: {
        source: 'src',
        id: 'e1',
        type: 'api_calls',
        customerId: 'cus_42',
        time: '2026-11-23T17:59:00.000000000Z',
        period: '2026-11',
        readings: { api_calls: '0.1', api_requests: '1' },
      },
    });
  });

  it.each([
    [{ specversion: '1.1' }, 'specversion:invalid_specversion'],
    [{ id: '' }, 'id:invalid_field'],
    [{ id: 'x'.repeat(257) }, 'id:invalid_field'],
    [{ id: 'a\ud800' }, 'id:invalid_unicode'],
    [{ source: '\udfffb' }, 'source:invalid_unicode'],
    [{ source: undefined }, 'source:missing_field'],
    [{ subject: 'a/b' }, 'subject:invalid_field'],
    [{ subject: 'x'.repeat(129) }, 'subject:invalid_field'],
    [{ subject: '.' }, 'subject:invalid_field'],
    [{ subject: '..' }, 'subject:invalid_field'],
    [{ type: 'nope' }, 'type:unknown_type'],
    [{ type: 42 }, 'type:invalid_field'],
    [{ time: undefined }, 'time:missing_field'],
    [{ time: '2026-11-23 17:00:00' }, 'time:invalid_time'],
    [{ time: '2026-02-30T00:00:00Z' }, 'time:invalid_time'],
    [{ time: '2026-11-23T18:05:01Z' }, 'time:event_in_future'],
    [{ time: '2026-10-19T17:59:59Z' }, 'time:event_too_old'],
    [{ data: [] }, 'data:invalid_field'],
    [{ data: { value: -0.5 } }, 'data.value:negative_value'],
    [{ data: { value: 'ten' } }, 'data.value:invalid_value'],
    [{ data: { value: true } }, 'data.value:invalid_value'],
    [{ data: { value: 1e15 } }, 'data.value:invalid_value'],
    [{ data: { value: '0.0000000000001' } }, 'data.value:invalid_value'],
    [{ data: { other: 1 } }, 'data.value:value_missing'],
    [{ datacontenttype: 'text/xml' }, 'datacontenttype:invalid_field'],
  ])('rejects %j with %s', (over, code) => {
    expect(codes(ev(over))).toContain(code);
  });

  it('accepts the edges: exactly 5 minutes ahead, 35 days old, numeric strings, offsets', () => {
    expect(codes(ev({ time: '2026-11-23T18:05:00Z' }))).toEqual([]);
    expect(codes(ev({ time: '2026-10-19T18:00:00Z' }))).toEqual([]);
    expect(codes(ev({ data: { value: '12.000000000001' } }))).toEqual([]);
    expect(codes(ev({ time: '2026-11-23T19:00:00+01:00' }))).toEqual([]);
  });

  it('allows negative LATEST readings but not negative SUM or MAX', () => {
    expect(codes(ev({ type: 'queue_depth', data: { depth: -3 } }))).toEqual([]);
    expect(codes(ev({ type: 'storage_gb', data: { value: -3 } }))).toEqual(['data.value:negative_value']);
  });

  it('reads UNIQUE_COUNT values as text and COUNT without a value', () => {
    const v = validateEvent(ev({ type: 'user_activity', data: { userId: 'u-1' } }), 0, ctx);
    expect(v.ok && v.event.readings).toEqual({ active_users: 'u-1' });
    expect(codes(ev({ type: 'user_activity', data: { userId: { nested: 1 } } }))).toEqual(['data.userId:invalid_value']);
  });

  const messages = (raw: unknown) => {
    const v = validateEvent(raw, 0, ctx);
    return v.ok ? [] : v.errors.map((e) => e.message);
  };

  it('says what is wrong with a time that is not a string, and what a number would be as an RFC 3339 string', () => {
    expect(codes(ev({ time: 1796662889535 }))).toEqual(['time:invalid_field']);
    expect(messages(ev({ time: 1796662889535 }))).toEqual([
      'time must be an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"; got a number (1796662889535) (as Unix time in milliseconds, that is "2026-12-07T17:01:29.535Z")',
    ]);
    expect(messages(ev({ time: 1796662889 }))).toEqual([
      'time must be an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"; got a number (1796662889) (as Unix time in seconds, that is "2026-12-07T17:01:29Z")',
    ]);
    expect(messages(ev({ time: null }))).toEqual(['time must be an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"; got null']);
    expect(messages(ev({ time: { at: 'x' } }))).toEqual(['time must be an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"; got an object']);
    expect(messages(ev({ time: undefined }))).toEqual(['time is required: an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"']);
    // The example the message gives is itself accepted.
    expect(codes(ev({ time: '2026-11-23T18:00:00Z' }))).toEqual([]);
  });

  it('lists the event types the meters read when a type is read by none', () => {
    expect(messages(ev({ type: 'api_call' }))).toEqual([
      'type "api_call" is not read by any meter; the types read are "api_calls", "compute_seconds", "queue_depth", "seats", "storage_gb", "user_activity"',
    ]);
  });

  it('keeps the list of types short in a catalog with many', () => {
    const many = parseCatalog({
      ...fixture,
      meters: [
        ...fixture.meters,
        ...Array.from({ length: 60 }, (_, i) => ({
          slug: `m${i}`,
          displayName: `M${i}`,
          unit: 'units',
          eventType: `type_${String(i).padStart(2, '0')}_${'x'.repeat(100)}`,
          aggregation: 'COUNT',
        })),
      ],
    });
    const v = validateEvent(ev({ type: 'nope' }), 0, { ...ctx, catalog: new CatalogIndex(many) });
    const message = v.ok ? undefined : v.errors[0]!.message;
    expect(message!.length).toBeLessThan(600);
    expect(message).toMatch(/^type "nope" is not read by any meter; the types read are "api_calls", .* and \d+ more$/);
    const listed = message!.match(/"[^"]+"/g)!.length - 1; // less the type itself
    expect(Number(/and (\d+) more$/.exec(message!)![1]) + listed).toBe(66);
  });

  it('reports every problem of an event at once', () => {
    expect(codes({ specversion: '1.0' }).length).toBeGreaterThanOrEqual(5);
    expect(codes('string')).toEqual([':invalid_event']);
  });
});

describe('parseEventTime', () => {
  it('normalizes to UTC with nanosecond digits so text order is time order', () => {
    expect(parseEventTime('2026-11-23T18:00:00.123456789Z')?.normalized).toBe('2026-11-23T18:00:00.123456789Z');
    expect(parseEventTime('2026-11-23T19:00:00.5+01:00')?.normalized).toBe('2026-11-23T18:00:00.500000000Z');
    expect(parseEventTime('2026-12-01T00:30:00+01:00')?.instant.toISOString()).toBe('2026-11-30T23:30:00.000Z');
    const a = parseEventTime('2026-11-23T18:00:00.1Z')!.normalized;
    const b = parseEventTime('2026-11-23T18:00:00.09Z')!.normalized;
    expect(a > b).toBe(true);
  });
});

describe('parseEventTime: leap seconds (RFC 3339 allows second 60)', () => {
  it.each([
    ['2026-12-31T23:59:60Z', '2026-12-31T23:59:59.999999999Z'],
    ['2026-12-31T23:59:60.5Z', '2026-12-31T23:59:59.999999999Z'],
    ['2027-01-01T00:59:60+01:00', '2026-12-31T23:59:59.999999999Z'],
    ['2026-06-30T18:59:60-05:00', '2026-06-30T23:59:59.999999999Z'],
  ])('accepts %s as the last instant of its minute, %s, in the same period', (text, normalized) => {
    const t = parseEventTime(text);
    expect(t?.normalized).toBe(normalized);
    expect(t?.instant.toISOString()).toBe(`${normalized.slice(0, 19)}.999Z`);
  });

  it.each(['2026-12-31T23:58:60Z', '2026-12-31T22:59:60Z', '2027-01-01T00:59:60Z', '2026-12-31T23:59:61Z'])('refuses %s (not 23:59:60 UTC)', (text) => {
    expect(parseEventTime(text)).toBeUndefined();
  });
});

describe('Period (UTC months, half-open)', () => {
  it.each([
    ['2026-11-30T23:59:59.999Z', '2026-11'],
    ['2026-12-01T00:00:00.000Z', '2026-12'],
    ['2026-12-31T23:59:59.999Z', '2026-12'],
    ['2027-01-01T00:00:00.000Z', '2027-01'],
    ['2028-02-29T12:00:00.000Z', '2028-02'],
  ])('%s belongs to %s', (iso, key) => {
    const p = Period.containing(new Date(iso));
    expect(p.key).toBe(key);
    expect(p.contains(new Date(iso))).toBe(true);
    expect(p.contains(p.end)).toBe(false);
    expect(p.contains(p.start)).toBe(true);
  });

  it('knows its neighbours and bounds', () => {
    const p = Period.parse('2026-12');
    expect(p.next().key).toBe('2027-01');
    expect(Period.parse('2027-01').previous().key).toBe('2026-12');
    expect(p.start.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(p.end.toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(() => Period.parse('2026-13')).toThrow(RangeError);
  });

  it('takes only periods whose bounds are real RFC 3339 instants: 1970-01 to 9998-12', () => {
    // 9999-12 would end in year 10000 ("+010000-01-01..."); before 1970 Date.UTC read years under 100 as 19xx.
    for (const key of ['9999-12', '9999-01', '1969-12', '0050-03', '0000-01']) {
      expect(Period.isValidKey(key)).toBe(false);
      expect(() => Period.parse(key)).toThrow(RangeError);
    }
    for (const key of ['1970-01', '9998-12', '2000-02']) expect(Period.isValidKey(key)).toBe(true);
    expect(Period.parse('9998-12').end.toISOString()).toBe('9999-01-01T00:00:00.000Z');
    expect(Period.parse('1970-01').start.toISOString()).toBe('1970-01-01T00:00:00.000Z');
  });
});

describe('parseReading', () => {
  it('keeps decimals exact and canonical', () => {
    expect(parseReading(0.1)).toEqual({ ok: true, value: '0.1' });
    expect(parseReading('1e3')).toEqual({ ok: true, value: '1000' });
    expect(parseReading('-0')).toEqual({ ok: true, value: '0' });
    expect(parseReading(1e-7)).toEqual({ ok: true, value: '0.0000001' });
    expect(parseReading(Number.NaN)).toMatchObject({ ok: false, code: 'invalid_value' });
    expect(parseReading(Number.POSITIVE_INFINITY)).toMatchObject({ ok: false, code: 'invalid_value' });
    expect(parseReading(null)).toMatchObject({ ok: false, code: 'value_missing' });
  });
});
