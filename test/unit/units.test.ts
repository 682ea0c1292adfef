import catalogJson from '../../catalog/catalog.json';
import { parseCatalog } from '../../lib/domain/catalog';
import { quantityWithUnit, singularUnit, tierRangeWords } from '../../lib/domain/units';

describe('units in words', () => {
  it.each([
    ['calls', 'call'],
    ['seats', 'seat'],
    ['users', 'user'],
    ['seconds', 'second'],
    ['API calls', 'API call'],
    ['GB-hours', 'GB-hour'],
    ['queries', 'query'],
    ['boxes', 'box'],
    ['addresses', 'address'],
    // Not sure, or not a plural: as written.
    ['GB', 'GB'],
    ['kWh', 'kWh'],
    ['ms', 'ms'],
    ['hrs', 'hrs'],
    ['kbps', 'kbps'],
    ['status', 'status'],
    ['batches', 'batches'],
    ['', ''],
  ])('the singular of %j is %j', (plural, singular) => {
    expect(singularUnit(plural)).toBe(singular);
  });

  it("gives every unit of the repository's catalog a singular that is a word", () => {
    const units = parseCatalog(catalogJson).meters.map((m) => [m.unit, singularUnit(m.unit)]);
    expect(units).toEqual([
      ['calls', 'call'],
      ['GB', 'GB'],
      ['seconds', 'second'],
      ['seats', 'seat'],
      ['users', 'user'],
    ]);
  });

  it('is singular after exactly one (or minus one) and plural otherwise, digits exact', () => {
    expect(['1', '1.0', '-1', '0', '2', '0.5', '1.5', '1000'].map((q) => quantityWithUnit(q, 'seats'))).toEqual([
      '1 seat',
      '1 seat',
      '-1 seat',
      '0 seats',
      '2 seats',
      '0.5 seats',
      '1.5 seats',
      '1,000 seats',
    ]);
  });

  it('names a tier\'s range with its unit: "up to", "to", "above", never "to more"', () => {
    expect(tierRangeWords('0', '10000', 'calls')).toBe('up to 10,000 calls');
    expect(tierRangeWords('10000', '100000', 'calls')).toBe('10,000 to 100,000 calls');
    expect(tierRangeWords('3', null, 'seats')).toBe('above 3 seats');
    expect(tierRangeWords('1', null, 'seats')).toBe('above 1 seat');
    expect(tierRangeWords('0', '1', 'seats')).toBe('up to 1 seat');
    expect(tierRangeWords('0', null, 'seats')).toBe('any quantity');
  });
});
