import fc from 'fast-check';
import catalogJson from '../../catalog/catalog.json';
import { parseCatalog, planSchema, type Plan } from '../../lib/domain/catalog';
import { correctionLines, invoiceDraft, priceMeter, priceUsage, type InvoiceLine } from '../../lib/domain/invoice-lines';
import { dec, roundToMinor, toMinorUnits } from '../../lib/domain/money';

const catalog = parseCatalog(catalogJson);
const meters = catalog.meters;
const plan = (id: string): Plan => catalog.plans.find((p) => p.id === id)!;
const defaultPlan = plan('default');
const proPlan = plan('pro');
const customPlan = (p: Record<string, unknown>): Plan => planSchema.parse({ id: 'custom', name: 'Custom', ...p });

const amounts = (lines: InvoiceLine[]) => lines.map((l) => [l.lineKey, l.amount]);
const meterTotal = (lines: InvoiceLine[], meter: string) => lines.filter((l) => l.meter === meter).reduce((acc, l) => acc.plus(l.amount), dec('0'));

function decimalArb(maxUnits: bigint, maxScale = 3): fc.Arbitrary<string> {
  return fc.tuple(fc.bigInt({ min: 0n, max: maxUnits }), fc.integer({ min: 0, max: maxScale })).map(([n, scale]) => {
    const digits = n.toString().padStart(scale + 1, '0');
    return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  });
}
/** Quantities that often sit on or next to a tier bound of the real catalog. */
const quantityArb = fc.oneof(
  decimalArb(20_000_000_000n, 4),
  fc
    .constantFrom('0', '3', '5', '10', '60', '3600', '10000', '36000', '50000', '100000', '1000000')
    .chain((b) => fc.constantFrom('-0.5', '0', '0.5', '1').map((d) => dec(b).plus(d).toFixed()))
    .filter((s) => !s.startsWith('-')),
);
const usageArb = fc.record({ api_calls: quantityArb, storage_gb: quantityArb, compute_seconds: quantityArb, seats: quantityArb });
const planArb = fc.constantFrom(defaultPlan, proPlan);

describe('priceUsage on the default plan', () => {
  it('keeps the golden total: 10,000,000 API calls cost 90.00 + 450.00 + 1,800.00 = 2,340.00', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '10000000' } });
    expect(amounts(draft.lines)).toEqual([
      ['api_calls:tier:1', '90.00'],
      ['api_calls:tier:2', '450.00'],
      ['api_calls:tier:3', '1800.00'],
    ]);
    expect(draft.total).toBe('2340.00');
  });

  it('prices 123,456 API calls as two rounded tier lines: 90.00 + 11.73 = 101.73', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '123456' } });
    expect(draft.lines).toEqual([
      {
        kind: 'usage',
        meter: 'api_calls',
        tier: 1,
        description: 'API Calls: 90,000 calls × $0.001 (10,000–100,000)',
        quantity: '90000',
        unitAmount: '0.001',
        amount: '90.00',
        amountMinor: '9000',
        lineKey: 'api_calls:tier:1',
      },
      {
        kind: 'usage',
        meter: 'api_calls',
        tier: 2,
        description: 'API Calls: 23,456 calls × $0.0005 (100,000–1,000,000)',
        quantity: '23456',
        unitAmount: '0.0005',
        amount: '11.73',
        amountMinor: '1173',
        lineKey: 'api_calls:tier:2',
      },
    ]);
    expect(draft).toMatchObject({ currency: 'usd', total: '101.73' });
  });

  it('prices a 150 GB storage peak at 23.75 + 7.50 = 31.25', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { storage_gb: '150' } });
    expect(amounts(draft.lines)).toEqual([
      ['storage_gb:tier:1', '23.75'],
      ['storage_gb:tier:2', '7.50'],
    ]);
    expect(draft.lines[1]?.description).toBe('Storage (peak): 50 GB × $0.15 (above 100)');
    expect(draft.total).toBe('31.25');
  });

  it('prices 10 seats at 7 × $8.00 = 56.00', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { seats: '10' } });
    expect(draft.lines).toEqual([
      expect.objectContaining({
        description: 'Seats (peak): 7 seats × $8.00 (above 3)',
        quantity: '7',
        unitAmount: '8.00',
        amount: '56.00',
        lineKey: 'seats:tier:1',
      }),
    ]);
    expect(draft.total).toBe('56.00');
  });

  it('says "1 seat", not "1 seats": a unit after exactly one is singular, in usage, package and correction lines', () => {
    const seats = priceUsage({ plan: defaultPlan, meters, usage: { seats: '4' } });
    expect(seats.lines.map((l) => l.description)).toEqual(['Seats (peak): 1 seat × $8.00 (above 3)']);
    const compute = priceUsage({ plan: defaultPlan, meters, usage: { compute_seconds: '3601' } });
    expect(compute.lines.map((l) => l.description)).toEqual(['Compute: 1 second × $0.005 (above 3,600)']);
    const storage = priceUsage({ plan: proPlan, meters, usage: { storage_gb: '11' } });
    expect(storage.lines.filter((l) => l.meter === 'storage_gb').map((l) => l.description)).toEqual([
      'Storage (peak): 1 × 50 GB package × $10.00 (1 GB above the 10 GB included)',
    ]);
  });

  it('describes the open tier as "above"', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '1500000' } });
    expect(draft.lines.map((l) => l.description)).toEqual([
      'API Calls: 90,000 calls × $0.001 (10,000–100,000)',
      'API Calls: 900,000 calls × $0.0005 (100,000–1,000,000)',
      'API Calls: 500,000 calls × $0.0002 (above 1,000,000)',
    ]);
    expect(draft.total).toBe('640.00'); // 90 + 450 + 100
  });

  it('adds the meters up: 101.73 + 31.25 + 18.00 + 56.00 = 206.98', () => {
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '123456', storage_gb: '150', compute_seconds: '7200', seats: '10' } });
    expect(draft.lines.map((l) => l.lineKey)).toEqual([
      'api_calls:tier:1',
      'api_calls:tier:2',
      'storage_gb:tier:1',
      'storage_gb:tier:2',
      'compute_seconds:tier:1',
      'seats:tier:1',
    ]);
    expect(draft.total).toBe('206.98');
  });

  it('has no lines and a zero total when everything is within the free tiers', () => {
    expect(priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '10000', storage_gb: '5', compute_seconds: '3600', seats: '3' } })).toEqual({
      currency: 'usd',
      lines: [],
      total: '0.00',
    });
    expect(priceUsage({ plan: defaultPlan, meters, usage: {} })).toEqual({ currency: 'usd', lines: [], total: '0.00' });
  });

  it('prices 1 call above a bound at 0.001 (and so emits no line for it)', () => {
    expect(priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '10001' } }).total).toBe('0.00');
    expect(priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '10005' } }).lines).toEqual([
      expect.objectContaining({ amount: '0.01', amountMinor: '1' }),
    ]); // 0.005 half-up
    expect(priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '10004.99' } }).lines).toEqual([]); // 0.00499
  });

  it('reads only own keys of the usage map (a meter may be called "constructor")', () => {
    const odd = customPlan({ currency: 'usd', charges: [{ meter: 'constructor', model: 'graduated', tiers: [{ upTo: null, unitPrice: '1' }] }] });
    expect(priceUsage({ plan: odd, meters, usage: {} }).total).toBe('0.00');
    expect(priceUsage({ plan: odd, meters, usage: { constructor: '2' } }).lines).toEqual([
      expect.objectContaining({ description: 'constructor: 2 units × $1.00', amount: '2.00' }),
    ]);
  });

  it('ignores usage of meters the plan does not charge', () => {
    expect(priceUsage({ plan: defaultPlan, meters, usage: { active_users: '1000000' } }).lines).toEqual([]);
  });

  it('refuses a malformed quantity rather than billing 0', () => {
    expect(() => priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '1e6' } })).toThrow();
    expect(() => priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '-5' } })).toThrow();
  });
});

describe('rounding: each line once, the total is the sum of the lines', () => {
  it('rounds lines, not the total: 0.0025 + 0.0025 over two meters is 0.00, not 0.01', () => {
    // api_calls 100,005: 90.00 + 5 × 0.0005 = 0.0025 -> 0.00; compute 3,600.5 s: 0.5 × 0.005 = 0.0025 -> 0.00
    const draft = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '100005', compute_seconds: '3600.5' } });
    expect(amounts(draft.lines)).toEqual([['api_calls:tier:1', '90.00']]);
    expect(draft.total).toBe('90.00');
  });

  it('rounds half-up at .005 within a line', () => {
    // storage 100.5 GB: 23.75 + 0.5 × 0.15 = 0.075 -> 0.08
    expect(amounts(priceUsage({ plan: defaultPlan, meters, usage: { storage_gb: '100.5' } }).lines)).toEqual([
      ['storage_gb:tier:1', '23.75'],
      ['storage_gb:tier:2', '0.08'],
    ]);
  });

  it('prices yen with 0 decimals: 3 × ¥1.5 = 4.5 -> ¥5', () => {
    const yen = customPlan({
      currency: 'jpy',
      baseFee: '1000',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          tiers: [
            { upTo: '100', unitPrice: '0' },
            { upTo: null, unitPrice: '1.5' },
          ],
        },
      ],
    });
    const draft = priceUsage({ plan: yen, meters, usage: { api_calls: '103' } });
    expect(draft.lines).toEqual([
      expect.objectContaining({ kind: 'base_fee', amount: '1000', amountMinor: '1000', unitAmount: '1000' }),
      expect.objectContaining({ description: 'API Calls: 3 calls × ¥1.5 (above 100)', unitAmount: '1.5', amount: '5', amountMinor: '5' }),
    ]);
    expect(draft.total).toBe('1005');
  });

  it('totals lines given to invoiceDraft as they are', () => {
    const lines = priceUsage({ plan: defaultPlan, meters, usage: { api_calls: '123456' } }).lines;
    const corrections = correctionLines(defaultPlan, meters, { seats: '4' }, { seats: '3' }, '2026-10');
    expect(invoiceDraft('usd', [...lines, ...corrections]).total).toBe('109.73');
  });
});

describe('priceUsage on the pro plan', () => {
  it('puts the base fee first, then volume, package and flat lines', () => {
    const draft = priceUsage({ plan: proPlan, meters, usage: { api_calls: '60000', storage_gb: '120', seats: '10' } });
    expect(draft.lines).toEqual([
      { kind: 'base_fee', description: 'Pro: base fee', quantity: '1', unitAmount: '49.00', amount: '49.00', amountMinor: '4900', lineKey: 'base_fee' },
      {
        kind: 'usage',
        meter: 'api_calls',
        tier: 1,
        description: 'API Calls: 60,000 calls × $0.0008 (all units, volume tier 50,000–1,000,000)',
        quantity: '60000',
        unitAmount: '0.0008',
        amount: '48.00',
        amountMinor: '4800',
        lineKey: 'api_calls:tier:1',
      },
      {
        kind: 'usage',
        meter: 'storage_gb',
        description: 'Storage (peak): 3 × 50 GB packages × $10.00 (110 GB above the 10 GB included)',
        quantity: '3',
        unitAmount: '10.00',
        amount: '30.00',
        amountMinor: '3000',
        lineKey: 'storage_gb:package',
      },
      {
        kind: 'flat',
        meter: 'seats',
        description: 'Seats (peak): flat fee for the period',
        quantity: '1',
        unitAmount: '20.00',
        amount: '20.00',
        amountMinor: '2000',
        lineKey: 'seats:flat',
      },
    ]);
    expect(draft.total).toBe('147.00');
  });

  it('charges the base fee and the flat fee with no usage at all', () => {
    expect(priceUsage({ plan: proPlan, meters, usage: {} }).total).toBe('69.00');
  });

  it('omits a zero base fee', () => {
    const free = customPlan({ currency: 'usd', baseFee: '0.00', charges: [] });
    expect(priceUsage({ plan: free, meters, usage: {} }).lines).toEqual([]);
  });

  it('splits a tier flat fee into its own line so quantity × unitAmount stays the line amount', () => {
    const withFee = customPlan({
      currency: 'eur',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          tiers: [
            { upTo: '10', unitPrice: '0' },
            { upTo: null, unitPrice: '0.5', flatFee: '2' },
          ],
        },
      ],
    });
    expect(priceUsage({ plan: withFee, meters, usage: { api_calls: '13' } }).lines).toEqual([
      expect.objectContaining({ lineKey: 'api_calls:tier:1', description: 'API Calls: 3 calls × €0.50 (above 10)', amount: '1.50' }),
      expect.objectContaining({
        lineKey: 'api_calls:tier:1:flat_fee',
        description: 'API Calls: tier flat fee (above 10)',
        quantity: '1',
        unitAmount: '2.00',
        amount: '2.00',
      }),
    ]);
  });
});

describe('priceMeter', () => {
  it('reports value, allowance used, rounded and exact amounts and every reached tier', () => {
    const result = priceMeter(defaultPlan, 'api_calls', '123456');
    expect(result).toEqual({
      meter: 'api_calls',
      value: '123456',
      included: '10000',
      percentUsed: '1234.56',
      amount: '101.73',
      exactAmount: '101.728',
      tiers: [
        { index: 0, from: '0', upTo: '10000', quantity: '10000', unitPrice: '0', amount: '0' },
        { index: 1, from: '10000', upTo: '100000', quantity: '90000', unitPrice: '0.001', amount: '90' },
        { index: 2, from: '100000', upTo: '1000000', quantity: '23456', unitPrice: '0.0005', amount: '11.728' },
      ],
    });
  });

  it('shows the free tier in use while the amount is still 0', () => {
    expect(priceMeter(defaultPlan, 'api_calls', '8000')).toMatchObject({ percentUsed: '80.00', amount: '0.00', tiers: [{ index: 0, quantity: '8000' }] });
  });

  it.each([
    ['1', '33.33'],
    ['2', '66.66'],
    ['3', '100.00'],
    ['0', '0.00'],
  ])('truncates %s of 3 included seats to %s percent (never rounded up to an alert threshold)', (value, percent) => {
    expect(priceMeter(defaultPlan, 'seats', value).percentUsed).toBe(percent);
  });

  it('has no percent for a meter the plan does not charge', () => {
    expect(priceMeter(defaultPlan, 'active_users', '42')).toEqual({
      meter: 'active_users',
      value: '42',
      included: '0',
      percentUsed: null,
      amount: '0.00',
      exactAmount: '0',
      tiers: [],
    });
  });

  it('amounts to what the invoice lines of the meter add up to, not the rounded exact price', () => {
    // two tiers of 0.006 each: lines 0.01 + 0.01 = 0.02, while the exact 0.012 would round to 0.01
    const split = customPlan({
      currency: 'usd',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          included: '0',
          tiers: [
            { upTo: '1', unitPrice: '0.006' },
            { upTo: null, unitPrice: '0.006' },
          ],
        },
      ],
    });
    expect(priceMeter(split, 'api_calls', '2')).toMatchObject({ amount: '0.02', exactAmount: '0.012', percentUsed: null });
    expect(priceUsage({ plan: split, meters, usage: { api_calls: '2' } }).total).toBe('0.02');
  });
});

describe('correctionLines (late usage of an invoiced period)', () => {
  it('charges 1,500 late calls above the allowance at 0.001: +1.50', () => {
    expect(correctionLines(defaultPlan, meters, { api_calls: '11500' }, { api_calls: '10000' }, '2026-10')).toEqual([
      {
        kind: 'correction',
        meter: 'api_calls',
        period: '2026-10',
        description: 'API Calls: correction for 2026-10 (+1,500 calls)',
        quantity: '1',
        unitAmount: '1.50',
        amount: '1.50',
        amountMinor: '150',
        lineKey: 'api_calls:correction:2026-10',
      },
    ]);
  });

  it('prices late usage at the tier where it lands, not at the first priced tier', () => {
    // invoiced 99,000 (89.00); now 101,000: 90.00 + 0.50 = 90.50 -> +1.50 (not 2,000 × 0.001 = 2.00)
    const [line] = correctionLines(defaultPlan, meters, { api_calls: '101000' }, { api_calls: '99000' }, '2026-10');
    expect(line).toMatchObject({ amount: '1.50', description: 'API Calls: correction for 2026-10 (+2,000 calls)' });
  });

  it('emits nothing when the late usage stays in the free tier or changes no rounded line', () => {
    expect(correctionLines(defaultPlan, meters, { api_calls: '9000' }, { api_calls: '5000' }, '2026-10')).toEqual([]);
    expect(correctionLines(defaultPlan, meters, { api_calls: '100004' }, { api_calls: '100000' }, '2026-10')).toEqual([]); // 0.002 -> 0.00
    expect(correctionLines(proPlan, meters, { seats: '40' }, { seats: '10' }, '2026-10')).toEqual([]); // flat
  });

  it('credits usage that went down, with a negative line', () => {
    expect(correctionLines(defaultPlan, meters, { seats: '4' }, { seats: '5' }, '2026-10')).toEqual([
      expect.objectContaining({ description: 'Seats (peak): correction for 2026-10 (-1 seat)', unitAmount: '-8.00', amount: '-8.00', amountMinor: '-800' }),
    ]);
  });

  it('corrects volume and package charges by their whole price difference', () => {
    expect(amounts(correctionLines(proPlan, meters, { api_calls: '50001', storage_gb: '61' }, { api_calls: '50000', storage_gb: '60' }, '2026-10'))).toEqual([
      ['api_calls:correction:2026-10', '40.00'],
      ['storage_gb:correction:2026-10', '10.00'],
    ]);
  });

  it('uses the line-rounding basis of the original invoice', () => {
    // invoiced 1 unit: one line 0.006 -> 0.01; now 2 units: 0.01 + 0.01 = 0.02. Total basis would say 0.01 - 0.01 = 0.
    const split = customPlan({
      currency: 'usd',
      charges: [
        {
          meter: 'api_calls',
          model: 'graduated',
          tiers: [
            { upTo: '1', unitPrice: '0.006' },
            { upTo: null, unitPrice: '0.006' },
          ],
        },
      ],
    });
    expect(amounts(correctionLines(split, meters, { api_calls: '2' }, { api_calls: '1' }, '2026-10'))).toEqual([['api_calls:correction:2026-10', '0.01']]);
  });

  it('is what priceUsage returns when given the invoiced quantities', () => {
    const draft = priceUsage({ plan: proPlan, meters, usage: { api_calls: '60000' }, invoiced: { api_calls: '50000' }, period: '2026-10' });
    expect(draft).toEqual({ currency: 'usd', lines: [expect.objectContaining({ kind: 'correction', amount: '48.00' })], total: '48.00' }); // no base fee again
    expect(() => priceUsage({ plan: proPlan, meters, usage: {}, invoiced: {} })).toThrow(/period/);
    expect(() => correctionLines(proPlan, meters, {}, {}, '2026-13')).toThrow(/YYYY-MM/);
  });
});

describe('properties', () => {
  it('invoice lines add up to the total, and each line is its exact amount rounded once', () => {
    fc.assert(
      fc.property(planArb, usageArb, (p, usage) => {
        const draft = priceUsage({ plan: p, meters, usage });
        const minorSum = draft.lines.reduce((acc, l) => acc + BigInt(l.amountMinor), 0n);
        expect(minorSum).toBe(BigInt(toMinorUnits(draft.total, draft.currency)));
        expect(draft.lines.reduce((acc, l) => acc.plus(l.amount), dec('0')).eq(draft.total)).toBe(true);
        for (const line of draft.lines) {
          expect(line.amount).toBe(roundToMinor(dec(line.quantity).times(line.unitAmount), draft.currency));
          expect(line.amountMinor).not.toBe('0');
        }
        expect(new Set(draft.lines.map((l) => l.lineKey)).size).toBe(draft.lines.length);
      }),
    );
  });

  it("a meter's invoice lines add up to priceMeter's amount", () => {
    fc.assert(
      fc.property(planArb, usageArb, (p, usage) => {
        const draft = priceUsage({ plan: p, meters, usage });
        for (const charge of p.charges) {
          const expected = meterTotal(draft.lines, charge.meter);
          expect(dec(priceMeter(p, charge.meter, usage[charge.meter as keyof typeof usage]).amount).eq(expected)).toBe(true);
        }
      }),
    );
  });

  it('lines(invoiced) + correction(now, invoiced) == lines(now), per meter', () => {
    fc.assert(
      fc.property(planArb, usageArb, usageArb, (p, invoiced, now) => {
        const before = priceUsage({ plan: p, meters, usage: invoiced }).lines;
        const after = priceUsage({ plan: p, meters, usage: now }).lines;
        const corrections = correctionLines(p, meters, now, invoiced, '2026-10');
        for (const charge of p.charges) {
          expect(meterTotal(before, charge.meter).plus(meterTotal(corrections, charge.meter)).eq(meterTotal(after, charge.meter))).toBe(true);
        }
        expect(corrections.every((l) => l.amountMinor !== '0')).toBe(true);
      }),
    );
  });
});
