import { Decimal } from 'decimal.js';
import fc from 'fast-check';
import {
  currencyMinorDigits,
  dec,
  formatMoney,
  formatQuantity,
  isOnMinorUnit,
  Money,
  parseQuantity,
  roundToMinor,
  toMinorUnits,
  toPlain,
} from '../../lib/domain/money';

/** n / 10^scale as a plain decimal string, built from digits only (no float involved). */
function scaled(n: bigint, scale: number): string {
  const negative = n < 0n;
  const digits = (negative ? -n : n).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** Reference half-up (away from zero) rounding of n / 10^scale to `digits` decimals, in BigInt. */
function referenceRound(n: bigint, scale: number, digits: number): string {
  if (scale <= digits) return scaled(n * 10n ** BigInt(digits - scale), digits);
  const unit = 10n ** BigInt(scale - digits);
  const abs = n < 0n ? -n : n;
  let q = abs / unit;
  if ((abs % unit) * 2n >= unit) q += 1n;
  return scaled(n < 0n && q !== 0n ? -q : q, digits);
}

describe('decimal configuration', () => {
  it('adds decimals exactly where floats drift', () => {
    expect(dec('0.1').plus('0.2').toFixed()).toBe('0.3');
    expect(dec('0.0005').times('23456').toFixed()).toBe('11.728');
  });

  it('keeps the full product of the largest catalog values (15 + 12 digits each)', () => {
    const product = dec('999999999999999.999999999999').times('999999999999999.999999999999');
    expect(product.toFixed()).toBe('999999999999999999999999998000.000000000000000000000001');
  });

  it('never switches to exponential notation', () => {
    expect(toPlain(dec('0.000000000001').times('0.000000000001'))).toBe('0.000000000000000000000001');
    expect(toPlain(dec('100000000000000000000000'))).toBe('100000000000000000000000');
  });

  it('is configured for money: >= 60 significant digits, half-up', () => {
    expect(Money.precision).toBeGreaterThanOrEqual(60);
    expect(Money.rounding).toBe(Money.ROUND_HALF_UP);
  });

  it('is a clone: changing the global Decimal does not change money', () => {
    const saved = { precision: Decimal.precision, rounding: Decimal.rounding };
    Decimal.set({ precision: 5, rounding: Decimal.ROUND_DOWN });
    try {
      expect(dec('1').div('3').toFixed().length).toBeGreaterThan(60);
      expect(dec('123456789').times('1.1').toFixed()).toBe('135802467.9');
    } finally {
      Decimal.set(saved);
    }
  });
});

describe('parsing', () => {
  it.each(['', ' 1', '1e3', '1.', '.5', '0x10', 'NaN', 'Infinity', '1,000', '+1'])('rejects %j as a decimal string', (text) => {
    expect(() => dec(text)).toThrow(TypeError);
  });

  it('rejects numbers: quantities must arrive as strings', () => {
    expect(() => dec(0.1 as unknown as string)).toThrow(TypeError);
  });

  it.each(['-1', '-0.000001'])('rejects the negative quantity %s', (text) => {
    expect(() => parseQuantity(text)).toThrow(RangeError);
  });

  it('accepts zero, fractions and long integers as quantities', () => {
    expect(toPlain(parseQuantity('0'))).toBe('0');
    expect(toPlain(parseQuantity('10000.5'))).toBe('10000.5');
    expect(toPlain(parseQuantity('123456789012345678901234567890'))).toBe('123456789012345678901234567890');
  });

  it('prints values without trailing zeros and never as -0', () => {
    expect(toPlain(dec('8.00'))).toBe('8');
    expect(toPlain(dec('-0.000'))).toBe('0');
  });
});

describe('currencyMinorDigits', () => {
  it.each([
    ['usd', 2],
    ['eur', 2],
    ['gbp', 2],
    ['jpy', 0],
    ['USD', 2],
  ])('%s has %i minor digits', (currency, digits) => {
    expect(currencyMinorDigits(currency)).toBe(digits);
  });

  it('refuses a currency it cannot round', () => {
    expect(() => currencyMinorDigits('xyz')).toThrow(/unsupported currency/);
    expect(() => currencyMinorDigits('toString')).toThrow(/unsupported currency/);
  });
});

describe('roundToMinor (half-up, away from zero)', () => {
  it.each([
    ['0.125', 'usd', '0.13'],
    ['0.124999', 'usd', '0.12'],
    ['0.005', 'usd', '0.01'],
    ['0.0049999999', 'usd', '0.00'],
    ['0.115', 'usd', '0.12'], // 0.115 is 0.11499999... as a float; exact decimals round it up
    ['1.005', 'eur', '1.01'], // the classic float failure: (1.005).toFixed(2) === '1.00'
    ['101.728', 'usd', '101.73'],
    ['11.728', 'usd', '11.73'],
    ['8', 'usd', '8.00'],
    ['0', 'gbp', '0.00'],
    ['-0.125', 'usd', '-0.13'],
    ['-0.124', 'usd', '-0.12'],
    ['-0.001', 'usd', '0.00'],
    ['100.5', 'jpy', '101'],
    ['100.4999', 'jpy', '100'],
    ['0.5', 'jpy', '1'],
    ['123456789012345.675', 'usd', '123456789012345.68'],
  ])('%s %s -> %s', (amount, currency, expected) => {
    expect(roundToMinor(amount, currency)).toBe(expected);
  });

  it('agrees with a BigInt half-up reference for any amount', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.integer({ min: 0, max: 8 }), fc.constantFrom('usd', 'jpy'), (n, scale, currency) => {
        expect(roundToMinor(scaled(n, scale), currency)).toBe(referenceRound(n, scale, currencyMinorDigits(currency)));
      }),
    );
  });
});

describe('toMinorUnits', () => {
  it.each([
    ['76.73', 'usd', '7673'],
    ['-1.50', 'usd', '-150'],
    ['0.00', 'usd', '0'],
    ['1', 'eur', '100'],
    ['100', 'jpy', '100'],
    ['90071992547409.91', 'usd', String(Number.MAX_SAFE_INTEGER)],
  ])('%s %s -> %s', (amount, currency, minor) => {
    expect(toMinorUnits(amount, currency)).toBe(minor);
  });

  it('returns "0", not "-0", for a negative zero', () => {
    expect(toMinorUnits('-0.00', 'usd')).toBe('0');
  });

  it('refuses an amount that was not rounded to the minor unit', () => {
    expect(() => toMinorUnits('1.005', 'usd')).toThrow(/round it first/);
    expect(() => toMinorUnits('1.5', 'jpy')).toThrow(/round it first/);
  });

  it('stays exact beyond 2^53 minor units (a 1e14-seat bill)', () => {
    expect(toMinorUnits('90071992547409.92', 'usd')).toBe('9007199254740992');
    expect(toMinorUnits('-800000000000000000.00', 'usd')).toBe('-80000000000000000000');
  });

  it('matches the rounded string digit for digit', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 6 }), (n, scale) => {
        const rounded = roundToMinor(scaled(n, scale), 'usd');
        expect(toMinorUnits(rounded, 'usd')).toBe(BigInt(rounded.replace('.', '')).toString());
      }),
    );
  });
});

describe('isOnMinorUnit', () => {
  it.each([
    ['49.5', 'jpy', false],
    ['49', 'jpy', true],
    ['0.001', 'usd', false],
    ['19.99', 'usd', true],
    ['19.990', 'usd', true],
  ])('%s %s -> %s', (amount, currency, expected) => {
    expect(isOnMinorUnit(amount, currency)).toBe(expected);
  });
});

describe('formatMoney', () => {
  it.each([
    ['0.001', 'usd', '$0.001'],
    ['8.00', 'usd', '$8.00'],
    ['8', 'usd', '$8.00'],
    ['0.25', 'usd', '$0.25'],
    ['0.0005', 'usd', '$0.0005'],
    ['1.5', 'eur', '€1.50'],
    ['2', 'gbp', '£2.00'],
    ['100', 'jpy', '¥100'],
    ['1.5', 'jpy', '¥1.5'],
    ['1234.5', 'usd', '$1,234.50'],
    ['1234567.891', 'usd', '$1,234,567.891'],
    ['-2.1', 'usd', '-$2.10'],
    ['-0.00', 'usd', '$0.00'],
  ])('%s %s -> %s', (amount, currency, expected) => {
    expect(formatMoney(amount, currency)).toBe(expected);
  });
});

describe('formatQuantity', () => {
  it.each([
    ['0', '0'],
    ['999', '999'],
    ['1000', '1,000'],
    ['90000', '90,000'],
    ['1000000', '1,000,000'],
    ['1234.5', '1,234.5'],
    ['10000.50', '10,000.5'],
    ['0.000001', '0.000001'],
    ['-1500', '-1,500'],
  ])('%s -> %s', (quantity, expected) => {
    expect(formatQuantity(quantity)).toBe(expected);
  });
});
