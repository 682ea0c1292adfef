import fc from 'fast-check';
import catalogJson from '../../catalog/catalog.json';
import { chargeSchema, compareDecimalStrings, parseCatalog, type Charge, type Plan } from '../../lib/domain/catalog';
import { dec, Money, toPlain } from '../../lib/domain/money';
import { flat, graduated, packaged, priceCharge, volume, type ChargeOf } from '../../lib/domain/pricing';

const catalog = parseCatalog(catalogJson);
const plan = (id: string): Plan => catalog.plans.find((p) => p.id === id)!;
function chargeOf<M extends Charge['model']>(planId: string, meter: string, model: M): ChargeOf<M> {
  const charge = plan(planId).charges.find((c) => c.meter === meter);
  if (!charge || charge.model !== model) throw new Error(`${planId}/${meter} is not a ${model} charge`);
  return charge as ChargeOf<M>;
}
const parseCharge = <M extends Charge['model']>(c: unknown): ChargeOf<M> => chargeSchema.parse(c) as ChargeOf<M>;

/** Decimal strings n / 10^scale built from digits, so generated quantities are exact. */
function decimalArb(maxUnits: bigint, maxScale = 4): fc.Arbitrary<string> {
  return fc.tuple(fc.bigInt({ min: 0n, max: maxUnits }), fc.integer({ min: 0, max: maxScale })).map(([n, scale]) => {
    const digits = n.toString().padStart(scale + 1, '0');
    return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  });
}
const positiveDecimalArb = (maxUnits: bigint, maxScale = 4) => decimalArb(maxUnits, maxScale).filter((s) => !dec(s).isZero());

/** 1..5 tiers with strictly increasing bounds (from positive widths), prices and optional flat fees. */
const tiersArb = fc
  .array(
    fc.record({ width: positiveDecimalArb(2_000_000n, 2), unitPrice: decimalArb(100_000n, 6), flatFee: fc.option(decimalArb(10_000n, 2), { nil: undefined }) }),
    { minLength: 1, maxLength: 5 },
  )
  .map((rows) => {
    let bound = dec('0');
    return rows.map((row, i) => {
      bound = bound.plus(row.width);
      return { upTo: i === rows.length - 1 ? null : toPlain(bound), unitPrice: row.unitPrice, ...(row.flatFee !== undefined ? { flatFee: row.flatFee } : {}) };
    });
  });
const graduatedArb = tiersArb.map((tiers) => ({ model: 'graduated' as const, meter: 'm', included: '0', tiers }));
const volumeArb = tiersArb.map((tiers) => ({ model: 'volume' as const, meter: 'm', included: '0', tiers }));
const quantityArb = decimalArb(10_000_000_000n, 4);

describe('graduated (default plan)', () => {
  const apiCalls = chargeOf('default', 'api_calls', 'graduated');
  const storage = chargeOf('default', 'storage_gb', 'graduated');
  const compute = chargeOf('default', 'compute_seconds', 'graduated');
  const seats = chargeOf('default', 'seats', 'graduated');

  it.each([
    // quantity, amount, tiers listed
    ['0', '0', [0]],
    ['1', '0', [0]],
    ['9999', '0', [0]],
    ['10000', '0', [0]], // exactly at the bound: the whole allowance, nothing priced yet
    ['10000.5', '0.0005', [0, 1]],
    ['10001', '0.001', [0, 1]],
    ['99999', '89.999', [0, 1]],
    ['100000', '90', [0, 1]],
    ['100001', '90.0005', [0, 1, 2]],
    ['123456', '101.728', [0, 1, 2]], // 90,000 × 0.001 + 23,456 × 0.0005 = 90 + 11.728
    ['999999', '539.9995', [0, 1, 2]],
    ['1000000', '540', [0, 1, 2]],
    ['1000001', '540.0002', [0, 1, 2, 3]],
    ['5000000', '1340', [0, 1, 2, 3]], // 90 + 450 + 4,000,000 × 0.0002
  ])('api_calls %s -> %s', (quantity, amount, indexes) => {
    const result = graduated.price(apiCalls, quantity);
    expect(result.amount).toBe(amount);
    expect(result.tiers.map((t) => t.index)).toEqual(indexes);
  });

  it.each([
    ['0', '0'],
    ['5', '0'],
    ['5.5', '0.125'],
    ['100', '23.75'],
    ['100.5', '23.825'],
    ['150', '31.25'], // 95 × 0.25 + 50 × 0.15 = 23.75 + 7.50
    ['1000', '158.75'],
  ])('storage_gb %s -> %s', (quantity, amount) => {
    expect(graduated.price(storage, quantity).amount).toBe(amount);
  });

  it.each([
    ['0', '0'],
    ['3600', '0'],
    ['3600.5', '0.0025'],
    ['3601', '0.005'],
    ['7200', '18'],
  ])('compute_seconds %s -> %s', (quantity, amount) => {
    expect(graduated.price(compute, quantity).amount).toBe(amount);
  });

  it.each([
    ['0', '0'],
    ['3', '0'],
    ['3.5', '4'],
    ['4', '8'],
    ['10', '56'], // 7 × 8.00
  ])('seats %s -> %s', (quantity, amount) => {
    expect(graduated.price(seats, quantity).amount).toBe(amount);
  });

  it('explains 123,456 calls tier by tier, the free allowance included', () => {
    expect(graduated.price(apiCalls, '123456').tiers).toEqual([
      { index: 0, from: '0', upTo: '10000', quantity: '10000', unitPrice: '0', amount: '0' },
      { index: 1, from: '10000', upTo: '100000', quantity: '90000', unitPrice: '0.001', amount: '90' },
      { index: 2, from: '100000', upTo: '1000000', quantity: '23456', unitPrice: '0.0005', amount: '11.728' },
    ]);
  });

  it('puts the fraction above a bound in the next tier', () => {
    expect(graduated.price(apiCalls, '10000.5').tiers[1]).toEqual({
      index: 1,
      from: '10000',
      upTo: '100000',
      quantity: '0.5',
      unitPrice: '0.001',
      amount: '0.0005',
    });
  });

  it('lists the open tier with upTo null', () => {
    expect(graduated.price(apiCalls, '5000000').tiers[3]).toEqual({
      index: 3,
      from: '1000000',
      upTo: null,
      quantity: '4000000',
      unitPrice: '0.0002',
      amount: '800',
    });
  });

  it('shows the empty first tier for zero usage', () => {
    expect(graduated.price(apiCalls, '0').tiers).toEqual([{ index: 0, from: '0', upTo: '10000', quantity: '0', unitPrice: '0', amount: '0' }]);
  });

  it('does not subtract included again: the allowance is the zero-price tier', () => {
    const withoutIncluded = { ...apiCalls, included: '0' };
    const withMoreIncluded = { ...apiCalls, included: '50000' };
    expect(graduated.price(withoutIncluded, '10001').amount).toBe('0.001');
    expect(graduated.price(withMoreIncluded, '10001').amount).toBe('0.001');
  });

  describe('tier flat fees', () => {
    const charge = parseCharge<'graduated'>({
      model: 'graduated',
      meter: 'm',
      tiers: [
        { upTo: '10', unitPrice: '1', flatFee: '5' },
        { upTo: null, unitPrice: '0.5', flatFee: '2' },
      ],
    });

    it.each([
      ['0', '0'], // nothing in the first tier yet: no fee
      ['1', '6'],
      ['10', '15'], // the second tier is not reached at its lower bound
      ['10.5', '17.25'], // 15 + 0.5 × 0.5 + 2
      ['20', '22'],
    ])('%s -> %s', (quantity, amount) => {
      expect(graduated.price(charge, quantity).amount).toBe(amount);
    });

    it('reports a fee only on the tiers that charged it', () => {
      const tiers = graduated.price(charge, '10.5').tiers;
      expect(tiers.map((t) => t.flatFee)).toEqual(['5', '2']);
      expect(graduated.price(charge, '0').tiers[0]).not.toHaveProperty('flatFee');
    });
  });
});

describe('volume (pro plan api_calls)', () => {
  const apiCalls = chargeOf('pro', 'api_calls', 'volume');

  it.each([
    ['0', '0', 0],
    ['1', '0', 0],
    ['50000', '0', 0], // at the bound: still the lower (free) tier
    ['50000.5', '40.0004', 1], // every unit at 0.0008
    ['50001', '40.0008', 1],
    ['1000000', '800', 1],
    ['1000001', '400.0004', 2], // crossing into the cheaper tier reprices all units
    ['2000000', '800', 2],
  ])('%s -> %s in tier %i', (quantity, amount, index) => {
    const result = volume.price(apiCalls, quantity);
    expect(result.amount).toBe(amount);
    expect(result.tiers).toHaveLength(1);
    expect(result.tiers[0]).toMatchObject({ index, quantity: toPlain(dec(quantity)), amount });
  });

  it('describes the reached tier with its bounds', () => {
    expect(volume.price(apiCalls, '1000001').tiers).toEqual([
      { index: 2, from: '1000000', upTo: null, quantity: '1000001', unitPrice: '0.0004', amount: '400.0004' },
    ]);
  });

  describe('tier flat fees', () => {
    const charge = parseCharge<'volume'>({
      model: 'volume',
      meter: 'm',
      tiers: [
        { upTo: '10', unitPrice: '1', flatFee: '5' },
        { upTo: null, unitPrice: '0.5', flatFee: '2' },
      ],
    });

    it.each([
      ['0', '0'],
      ['1', '6'],
      ['10', '15'],
      ['10.5', '7.25'],
      ['11', '7.5'],
    ])('%s -> %s', (quantity, amount) => {
      expect(volume.price(charge, quantity).amount).toBe(amount);
    });
  });
});

describe('package (pro plan storage_gb: 10 included, blocks of 50 GB at $10.00)', () => {
  const storage = chargeOf('pro', 'storage_gb', 'package');

  it.each([
    ['0', '0', '0'],
    ['10', '0', '0'],
    ['10.5', '1', '10'],
    ['60', '1', '10'],
    ['60.000001', '2', '20'],
    ['110', '2', '20'],
    ['120', '3', '30'],
    ['1010', '20', '200'],
  ])('%s GB -> %s packages, %s', (quantity, packages, amount) => {
    const result = packaged.price(storage, quantity);
    expect(result.amount).toBe(amount);
    expect(result.tiers).toEqual([{ index: 0, from: '10', upTo: null, quantity: packages, unitPrice: '10', amount }]);
  });

  it('takes the ceiling exactly for fractional package sizes', () => {
    const charge = parseCharge<'package'>({ model: 'package', meter: 'm', packageSize: '0.3', packagePrice: '1' });
    expect(packaged.price(charge, '0.9').tiers[0]?.quantity).toBe('3');
    expect(packaged.price(charge, '0.9000001').tiers[0]?.quantity).toBe('4');
    expect(packaged.price(charge, '1').tiers[0]?.quantity).toBe('4');
  });

  it('refuses a package size of 0', () => {
    expect(() => packaged.price({ ...storage, packageSize: '0' }, '1')).toThrow(/packageSize/);
  });
});

describe('flat (pro plan seats: $20.00)', () => {
  const seats = chargeOf('pro', 'seats', 'flat');

  it.each(['0', '25', '1000.5'])('charges 20 for %s seats', (quantity) => {
    expect(flat.price(seats, quantity)).toEqual({ amount: '20', tiers: [{ index: 0, from: '0', upTo: null, quantity: '1', unitPrice: '20', amount: '20' }] });
  });
});

describe('priceCharge', () => {
  it('dispatches every model of the real catalog to its module', () => {
    for (const p of catalog.plans) {
      for (const charge of p.charges) {
        const byModel = { graduated, volume, package: packaged, flat }[charge.model] as { price(c: Charge, q: string): unknown };
        expect(priceCharge(charge, '123456.5')).toEqual(byModel.price(charge, '123456.5'));
      }
    }
  });

  it('refuses an unknown model instead of pricing it as 0', () => {
    expect(() => priceCharge({ model: 'tiered', meter: 'm', included: '0' } as unknown as Charge, '1')).toThrow(/unknown charge model/);
  });

  it.each(['-1', '1e5', 'abc', '', '1,000'])('refuses the quantity %j', (quantity) => {
    expect(() => priceCharge(chargeOf('default', 'api_calls', 'graduated'), quantity)).toThrow();
  });

  it('refuses malformed tiers rather than mispricing them', () => {
    const tiers = (upTos: (string | null)[]) => ({
      model: 'graduated' as const,
      meter: 'm',
      included: '0',
      tiers: upTos.map((upTo) => ({ upTo, unitPrice: '1' })),
    });
    expect(() => priceCharge(tiers(['10', '10', null]), '1')).toThrow(/greater than/);
    expect(() => priceCharge(tiers([null, '10']), '1')).toThrow(/open-ended/);
    expect(() => priceCharge(tiers(['10']), '1')).toThrow(/open-ended/);
    expect(() => priceCharge({ ...tiers([null]), tiers: [] }, '1')).toThrow(/at least one tier/);
  });
});

describe('properties', () => {
  it('graduated: the amount never decreases as the quantity grows', () => {
    fc.assert(
      fc.property(graduatedArb, quantityArb, quantityArb, (charge, a, b) => {
        const [low, high] = compareDecimalStrings(a, b) <= 0 ? [a, b] : [b, a];
        expect(dec(graduated.price(charge, low).amount).lte(graduated.price(charge, high).amount)).toBe(true);
      }),
    );
  });

  it('graduated: tier quantities add up to the quantity, amounts to the amount, each within its tier', () => {
    fc.assert(
      fc.property(graduatedArb, quantityArb, (charge, quantity) => {
        const result = graduated.price(charge, quantity);
        const sumOf = (key: 'quantity' | 'amount') => result.tiers.reduce((acc, t) => acc.plus(t[key]), new Money(0));
        expect(sumOf('quantity').eq(quantity)).toBe(true);
        expect(sumOf('amount').eq(result.amount)).toBe(true);
        for (const t of result.tiers) {
          if (t.upTo !== null) expect(dec(t.quantity).lte(dec(t.upTo).minus(t.from))).toBe(true);
          expect(
            dec(t.amount).eq(
              dec(t.quantity)
                .times(t.unitPrice)
                .plus(t.flatFee ?? '0'),
            ),
          ).toBe(true);
        }
      }),
    );
  });

  it('graduated: for whole units, equals pricing unit by unit ([u, u+1) in the tier that holds u)', () => {
    const smallTiers = fc
      .array(
        fc.record({ width: fc.integer({ min: 1, max: 20 }), unitPrice: decimalArb(1000n, 3), flatFee: fc.option(decimalArb(1000n, 2), { nil: undefined }) }),
        { minLength: 1, maxLength: 5 },
      )
      .map((rows) => {
        let bound = dec('0');
        return rows.map((row, i) => {
          bound = bound.plus(row.width);
          return { upTo: i === rows.length - 1 ? null : toPlain(bound), unitPrice: row.unitPrice, flatFee: row.flatFee };
        });
      });
    fc.assert(
      fc.property(smallTiers, fc.integer({ min: 0, max: 150 }), (tiers, units) => {
        let expected = new Money(0);
        const feeCharged = new Set<number>();
        for (let u = 0; u < units; u++) {
          const i = tiers.findIndex((t) => t.upTo === null || dec(String(u)).lt(t.upTo));
          const tier = tiers[i]!;
          expected = expected.plus(tier.unitPrice);
          if (tier.flatFee !== undefined && !feeCharged.has(i)) {
            feeCharged.add(i);
            expected = expected.plus(tier.flatFee);
          }
        }
        const charge = {
          model: 'graduated' as const,
          meter: 'm',
          included: '0',
          tiers: tiers.map((t) => ({ upTo: t.upTo, unitPrice: t.unitPrice, ...(t.flatFee ? { flatFee: t.flatFee } : {}) })),
        };
        expect(graduated.price(charge, String(units)).amount).toBe(toPlain(expected));
      }),
    );
  });

  it('volume: the amount is quantity × the reached tier price (+ its fee), the tier being the first whose upTo >= quantity', () => {
    fc.assert(
      fc.property(volumeArb, quantityArb, (charge, quantity) => {
        const reached = charge.tiers.findIndex((t) => t.upTo === null || compareDecimalStrings(quantity, t.upTo) <= 0);
        const tier = charge.tiers[reached]!;
        const fee = dec(quantity).isZero() ? '0' : (tier.flatFee ?? '0');
        const result = volume.price(charge, quantity);
        expect(result.amount).toBe(toPlain(dec(quantity).times(tier.unitPrice).plus(fee)));
        expect(result.tiers[0]?.index).toBe(reached);
      }),
    );
  });

  it('package: the amount is a whole number of packages, the fewest that cover the billable units', () => {
    const packageArb = fc.record({
      model: fc.constant('package' as const),
      meter: fc.constant('m'),
      included: decimalArb(1_000_000n, 2),
      packageSize: positiveDecimalArb(1_000_000n, 3),
      packagePrice: positiveDecimalArb(100_000n, 2),
    });
    fc.assert(
      fc.property(packageArb, quantityArb, (charge, quantity) => {
        const result = packaged.price(charge, quantity);
        const packages = dec(result.amount).div(charge.packagePrice);
        expect(packages.isInteger()).toBe(true);
        const billable = Money.max(0, dec(quantity).minus(charge.included));
        expect(packages.times(charge.packageSize).gte(billable)).toBe(true);
        if (packages.gt(0)) expect(packages.minus(1).times(charge.packageSize).lt(billable)).toBe(true);
      }),
    );
  });
});
