import fc from 'fast-check';
import { alertMessage, evaluateAlerts, MAX_SUBJECT_LENGTH, selectAlerts, type AlertCandidate, type EvaluateAlertsInput } from '../../lib/domain/alerts';
import { planSchema, type Plan } from '../../lib/domain/catalog';
import { budgetUse } from '../../lib/domain/billing';
import { dec, roundToMinor } from '../../lib/domain/money';

const plan = (p: Record<string, unknown> = {}): Plan =>
  planSchema.parse({
    id: 'test',
    name: 'Test',
    currency: 'usd',
    charges: [
      {
        meter: 'api_calls',
        model: 'graduated',
        included: '10000',
        tiers: [
          { upTo: '10000', unitPrice: '0' },
          { upTo: null, unitPrice: '0.001' },
        ],
      },
      {
        meter: 'storage_gb',
        model: 'graduated',
        included: '0.5',
        tiers: [
          { upTo: '0.5', unitPrice: '0' },
          { upTo: null, unitPrice: '0.25' },
        ],
      },
      { meter: 'seats', model: 'flat', amount: '10' }, // included defaults to 0
    ],
    ...p,
  });
const basePlan = plan();
interface Scenario {
  plan?: Plan;
  values?: Record<string, string>;
  budget?: { amount: string };
  subtotal?: string;
  projectedSubtotal?: string;
}
/** The alert input as the period estimate builds it: the budget use from the rounded subtotal and projection. */
const input = ({ plan: p = basePlan, values = {}, budget, subtotal = '0', projectedSubtotal = '0' }: Scenario = {}): EvaluateAlertsInput => ({
  plan: p,
  values,
  budget: budgetUse(budget && { ...budget, currency: p.currency }, p.currency, roundToMinor(subtotal, p.currency), roundToMinor(projectedSubtotal, p.currency)),
});
const keys = (cs: AlertCandidate[]) => cs.map((c) => c.key);

describe('evaluateAlerts: included usage', () => {
  it.each([
    ['0', []],
    ['7999', []],
    ['7999.99', []], // 79.9999%
    ['7999.999999999999', []],
    ['8000', ['included#api_calls#80']], // exactly 80%
    ['8000.000000000001', ['included#api_calls#80']],
    ['8999.999', ['included#api_calls#80']],
    ['9000', ['included#api_calls#80', 'included#api_calls#90']],
    ['9999.99', ['included#api_calls#80', 'included#api_calls#90']],
    ['10000', ['included#api_calls#80', 'included#api_calls#90', 'included#api_calls#100']], // exactly 100%
    ['123456789012345.123456789012', ['included#api_calls#80', 'included#api_calls#90', 'included#api_calls#100']], // far above
  ])('api_calls = %s of 10000 included -> %j', (value, expected) => {
    expect(keys(evaluateAlerts(input({ values: { api_calls: value } })))).toEqual(expected);
  });

  it.each([
    ['0.39999', []],
    ['0.4', ['included#storage_gb#80']],
    ['0.45', ['included#storage_gb#80', 'included#storage_gb#90']],
    ['0.5', ['included#storage_gb#80', 'included#storage_gb#90', 'included#storage_gb#100']],
  ])('fractional: storage_gb = %s of 0.5 included -> %j', (value, expected) => {
    expect(keys(evaluateAlerts(input({ values: { storage_gb: value } })))).toEqual(expected);
  });

  it('reports value, limit and a truncated percent (never rounded up to a threshold)', () => {
    const [c80, c90] = evaluateAlerts(input({ values: { api_calls: '9999.999' } }));
    expect(c80).toEqual({
      kind: 'included',
      meter: 'api_calls',
      threshold: 80,
      value: '9999.999',
      limit: '10000',
      percent: '99.99',
      key: 'included#api_calls#80',
    });
    expect(c90!.percent).toBe('99.99'); // 99.99999% is not 100.00%
    expect(evaluateAlerts(input({ values: { api_calls: '8000' } }))[0]!.percent).toBe('80.00');
    expect(evaluateAlerts(input({ values: { api_calls: '0008000.500' } }))[0]).toMatchObject({ value: '8000.5', percent: '80.00' });
    expect(evaluateAlerts(input({ values: { api_calls: '1000000' } }))[0]!.percent).toBe('10000.00');
  });

  it('sends nothing for a meter with nothing included, a meter without a charge, or a missing meter', () => {
    expect(evaluateAlerts(input({ values: { seats: '1000000', queue_depth: '99999999', unknown: '5' } }))).toEqual([]);
    expect(evaluateAlerts(input({ values: {} }))).toEqual([]);
    const zero = plan({ charges: [{ meter: 'api_calls', model: 'graduated', included: '0', tiers: [{ upTo: null, unitPrice: '0.001' }] }] });
    expect(evaluateAlerts(input({ plan: zero, values: { api_calls: '123456' } }))).toEqual([]);
  });

  it("uses the plan's thresholds, sorted and without duplicates", () => {
    const p = plan({ alertThresholds: { included: [100, 50, 50, 150], budget: [] } });
    expect(keys(evaluateAlerts(input({ plan: p, values: { api_calls: '15000' }, budget: { amount: '1' }, subtotal: '100' })))).toEqual([
      'included#api_calls#50',
      'included#api_calls#100',
      'included#api_calls#150',
    ]);
    expect(keys(evaluateAlerts(input({ plan: plan({ alertThresholds: { included: [], budget: [] } }), values: { api_calls: '99999' } })))).toEqual([]);
  });

  it('refuses values that are not decimal strings (no float coercion)', () => {
    expect(() => evaluateAlerts(input({ values: { api_calls: '1e5' } }))).toThrow(TypeError);
    expect(() => evaluateAlerts(input({ values: { api_calls: 8000 as unknown as string } }))).toThrow(TypeError);
    expect(() => evaluateAlerts(input({ subtotal: 'abc', budget: { amount: '10' } }))).toThrow(TypeError);
    expect(() => evaluateAlerts(input({ projectedSubtotal: '12.5e3' }))).toThrow(TypeError);
  });
});

describe('evaluateAlerts: budget and forecast', () => {
  const budget = { amount: '500.00' };
  it.each([
    ['0', []],
    ['249.99', []],
    ['250.00', ['budget#-#50']], // exactly 50%
    ['399.99', ['budget#-#50']],
    ['400', ['budget#-#50', 'budget#-#80']],
    ['499.99', ['budget#-#50', 'budget#-#80']],
    ['500.00', ['budget#-#50', 'budget#-#80', 'budget#-#100']],
    ['987654321.99', ['budget#-#50', 'budget#-#80', 'budget#-#100']],
  ])('subtotal %s of a 500.00 budget -> %j', (subtotal, expected) => {
    expect(keys(evaluateAlerts(input({ budget, subtotal, projectedSubtotal: '0' })))).toEqual(expected);
  });

  it('compares money as invoiced (rounded half-up to the minor unit)', () => {
    expect(keys(evaluateAlerts(input({ budget, subtotal: '249.994' })))).toEqual([]);
    expect(evaluateAlerts(input({ budget, subtotal: '249.995' }))).toEqual([
      { kind: 'budget', meter: null, threshold: 50, value: '250.00', limit: '500.00', percent: '50.00', key: 'budget#-#50' },
    ]);
    const yen = plan({ currency: 'jpy' });
    expect(evaluateAlerts(input({ plan: yen, budget: { amount: '1000' }, subtotal: '499.5' }))).toEqual([
      { kind: 'budget', meter: null, threshold: 50, value: '500', limit: '1000', percent: '50.00', key: 'budget#-#50' },
    ]);
  });

  it.each([
    ['500.00', false], // equal to the budget: no alert
    ['500.004', false], // rounds to 500.00
    ['500.005', true], // rounds to 500.01
    ['500.01', true],
    ['1000000', true],
  ])('forecast %s against a 500.00 budget -> alert: %s', (projectedSubtotal, alert) => {
    const cs = evaluateAlerts(input({ budget, subtotal: '10', projectedSubtotal }));
    expect(keys(cs)).toEqual(alert ? ['forecast#-#100'] : []);
  });

  it('decides on the same truncated percent the usage page shows (79.9966% used: 79.99 shown, no 80% alert)', () => {
    const b = budgetUse({ amount: '500.00', currency: 'usd' }, 'usd', '399.98', '0.00')!;
    expect(b.percentUsed).toBe('79.99');
    expect(keys(evaluateAlerts({ plan: basePlan, values: {}, budget: b }))).toEqual(['budget#-#50']);
    const at80 = budgetUse({ amount: '500.00', currency: 'usd' }, 'usd', '400.00', '0.00')!;
    expect(at80.percentUsed).toBe('80.00');
    expect(keys(evaluateAlerts({ plan: basePlan, values: {}, budget: at80 }))).toEqual(['budget#-#50', 'budget#-#80']);
  });

  it('treats a budget that rounds to zero in the currency as no budget (0.004 usd)', () => {
    expect(budgetUse({ amount: '0.004', currency: 'usd' }, 'usd', '15.30', '20.00')).toBeNull();
    expect(budgetUse({ amount: '0.4', currency: 'jpy' }, 'jpy', '15', '20')).toBeNull();
  });

  it('reports the forecast value, limit and percent', () => {
    expect(evaluateAlerts(input({ budget, subtotal: '0', projectedSubtotal: '612.5' }))).toEqual([
      { kind: 'forecast', meter: null, threshold: 100, value: '612.50', limit: '500.00', percent: '122.50', key: 'forecast#-#100' },
    ]);
  });

  it.each([
    ['no budget', undefined],
    ['a zero budget', { amount: '0' }],
    ['a 0.00 budget', { amount: '0.00' }],
  ])('sends no budget or forecast alert with %s', (_, b) => {
    expect(evaluateAlerts(input({ budget: b, subtotal: '1000000', projectedSubtotal: '99999999' }))).toEqual([]);
  });
});

describe('evaluateAlerts: several at once, order and keys', () => {
  const all = input({
    values: { storage_gb: '7', api_calls: '9500', seats: '4' },
    budget: { amount: '100' },
    subtotal: '85.00',
    projectedSubtotal: '140.00',
  });
  const expected = [
    'included#api_calls#80',
    'included#api_calls#90',
    'included#storage_gb#80',
    'included#storage_gb#90',
    'included#storage_gb#100',
    'budget#-#50',
    'budget#-#80',
    'forecast#-#100',
  ];

  it('returns every threshold reached, even when a jump crosses several at once, in a fixed order', () => {
    expect(keys(evaluateAlerts(all))).toEqual(expected);
  });

  it('does not depend on the order of the values or of the charges', () => {
    const reversed = { ...all, values: { seats: '4', api_calls: '9500', storage_gb: '7' }, plan: { ...basePlan, charges: [...basePlan.charges].reverse() } };
    expect(evaluateAlerts(reversed)).toEqual(evaluateAlerts(all));
  });

  it('is level-triggered: evaluating again gives the same candidates (the caller claims each key once)', () => {
    expect(evaluateAlerts(all)).toEqual(evaluateAlerts(all));
  });

  it('does not modify its input', () => {
    const frozen = JSON.parse(JSON.stringify(all)) as EvaluateAlertsInput;
    evaluateAlerts(frozen);
    expect(frozen).toEqual(all);
  });
});

describe('evaluateAlerts properties', () => {
  /** Non-negative decimal strings with up to `scale` decimals. */
  const decimalArb = (maxUnits: bigint, maxScale: number) =>
    fc.tuple(fc.bigInt({ min: 0n, max: maxUnits }), fc.integer({ min: 0, max: maxScale })).map(([n, scale]) => {
      const digits = n.toString().padStart(scale + 1, '0');
      return scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
    });
  const pctArb = fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 5 });
  const planArb = fc
    .record({ included: pctArb, budget: pctArb, inc: decimalArb(100_000n, 3), currency: fc.constantFrom('usd', 'jpy') })
    .map(({ included, budget, inc, currency }) =>
      plan({
        currency,
        alertThresholds: { included, budget },
        charges: [
          // The allowance is the free tier (the catalog refuses one that says otherwise).
          {
            meter: 'api_calls',
            model: 'graduated',
            included: inc,
            tiers: dec(inc).isZero()
              ? [{ upTo: null, unitPrice: '0.001' }]
              : [
                  { upTo: inc, unitPrice: '0' },
                  { upTo: null, unitPrice: '0.001' },
                ],
          },
          { meter: 'storage_gb', model: 'flat', included: '3', amount: '1' },
        ],
      }),
    );
  /** Two values, ordered: [smaller, larger]. */
  const pairArb = (maxUnits: bigint, scale: number) =>
    fc.tuple(decimalArb(maxUnits, scale), decimalArb(maxUnits, scale)).map(([a, b]) => (dec(a).lte(dec(b)) ? ([a, b] as const) : ([b, a] as const)));
  const budgetArb = fc.option(fc.record({ amount: decimalArb(100_000n, 2) }), { nil: undefined });

  it('is monotonic: more usage and more cost never removes an alert; keys are unique and sorted', () => {
    fc.assert(
      fc.property(
        planArb,
        budgetArb,
        pairArb(200_000n, 3),
        pairArb(20n, 2),
        pairArb(200_000n, 2),
        pairArb(200_000n, 3),
        (p, budget, [a1, a2], [s1, s2], [c1, c2], [f1, f2]) => {
          const small = evaluateAlerts(input({ plan: p, budget, values: { api_calls: a1, storage_gb: s1 }, subtotal: c1, projectedSubtotal: f1 }));
          const large = evaluateAlerts(input({ plan: p, budget, values: { api_calls: a2, storage_gb: s2 }, subtotal: c2, projectedSubtotal: f2 }));
          const largeKeys = new Set(keys(large));
          for (const k of keys(small)) expect(largeKeys.has(k)).toBe(true);
          for (const cs of [small, large]) {
            expect(new Set(keys(cs)).size).toBe(cs.length);
            expect(evaluateAlerts(input({ plan: p, budget, values: { storage_gb: s1, api_calls: a1 }, subtotal: c1, projectedSubtotal: f1 }))).toEqual(small);
            for (const c of cs) {
              expect(c.key).toBe(`${c.kind}#${c.meter ?? '-'}#${c.threshold}`);
              expect(c.percent).toMatch(/^\d+\.\d{2}$/);
              // reached means value × 100 >= threshold × limit; the truncated percent never undercuts it
              expect(dec(c.value).times(100).gte(dec(c.limit).times(c.threshold))).toBe(true);
              expect(dec(c.percent).gte(c.kind === 'forecast' ? 100 : c.threshold)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('selectAlerts: one message per kind and meter, for the highest threshold', () => {
  const reached = (values: Record<string, string>, extra: Partial<Scenario> = {}) => evaluateAlerts(input({ values, ...extra }));
  const summary = (sel: ReturnType<typeof selectAlerts>) => ({ send: keys(sel.send), superseded: sel.superseded.map((s) => `${s.candidate.key}<${s.by}`) });

  it('sends the highest of several thresholds crossed at once and records the lower ones as passed', () => {
    expect(summary(selectAlerts(reached({ api_calls: '10000' }), new Set()))).toEqual({
      send: ['included#api_calls#100'],
      superseded: ['included#api_calls#80<included#api_calls#100', 'included#api_calls#90<included#api_calls#100'],
    });
  });

  it('decides per kind and meter: a jump in two meters and the budget sends one message each', () => {
    const all = reached({ api_calls: '9500', storage_gb: '7' }, { budget: { amount: '100' }, subtotal: '85.00', projectedSubtotal: '140.00' });
    expect(summary(selectAlerts(all, new Set()))).toEqual({
      send: ['included#api_calls#90', 'included#storage_gb#100', 'budget#-#80', 'forecast#-#100'],
      superseded: [
        'included#api_calls#80<included#api_calls#90',
        'included#storage_gb#80<included#storage_gb#100',
        'included#storage_gb#90<included#storage_gb#100',
        'budget#-#50<budget#-#80',
      ],
    });
  });

  it('sends a threshold crossed on its own, once: what is claimed already is neither sent nor superseded again', () => {
    expect(summary(selectAlerts(reached({ api_calls: '9000' }), new Set(['included#api_calls#80'])))).toEqual({
      send: ['included#api_calls#90'],
      superseded: [],
    });
    expect(summary(selectAlerts(reached({ api_calls: '9000' }), new Set(['included#api_calls#80', 'included#api_calls#90'])))).toEqual({
      send: [],
      superseded: [],
    });
  });

  it('never sends a threshold below one already claimed (a threshold added to the plan later is recorded as passed)', () => {
    const p = plan({ alertThresholds: { included: [50, 80, 90, 100], budget: [] } });
    const cs = evaluateAlerts(input({ plan: p, values: { api_calls: '9000' } }));
    expect(summary(selectAlerts(cs, new Set(['included#api_calls#80', 'included#api_calls#90'])))).toEqual({
      send: [],
      superseded: ['included#api_calls#50<included#api_calls#90'],
    });
  });

  it('is the same whatever the order of the candidates', () => {
    const all = reached({ api_calls: '9500', storage_gb: '7' }, { budget: { amount: '100' }, subtotal: '85.00', projectedSubtotal: '140.00' });
    expect(selectAlerts([...all].reverse(), new Set())).toEqual(selectAlerts(all, new Set()));
  });

  it('property: every new candidate is sent or superseded, once; at most one sent per kind and meter, and it is the highest reached', () => {
    const values = fc.record({ api_calls: fc.integer({ min: 0, max: 20_000 }).map(String), storage_gb: fc.integer({ min: 0, max: 10 }).map(String) });
    fc.assert(
      fc.property(values, fc.integer({ min: 0, max: 200 }), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), (v, spent, claimedMask) => {
        const cs = reached(v, { budget: { amount: '100' }, subtotal: String(spent), projectedSubtotal: String(spent * 2) });
        const claimed = new Set(cs.filter((_, i) => claimedMask[i]).map((c) => c.key));
        const sel = selectAlerts(cs, claimed);
        const decided = [...keys(sel.send), ...sel.superseded.map((s) => s.candidate.key)].sort();
        expect(decided).toEqual(keys(cs.filter((c) => !claimed.has(c.key))).sort());
        const groups = new Map<string, AlertCandidate[]>();
        for (const c of cs) groups.set(`${c.kind}#${c.meter}`, [...(groups.get(`${c.kind}#${c.meter}`) ?? []), c]);
        for (const c of sel.send) {
          const top = Math.max(...groups.get(`${c.kind}#${c.meter}`)!.map((x) => x.threshold));
          expect(c.threshold).toBe(top);
        }
        expect(new Set(sel.send.map((c) => `${c.kind}#${c.meter}`)).size).toBe(sel.send.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('alertMessage', () => {
  const period = '2026-11';
  const [included90] = evaluateAlerts(input({ plan: plan({ alertThresholds: { included: [90], budget: [] } }), values: { api_calls: '9000' } }));
  const [budget80] = evaluateAlerts(
    input({ plan: plan({ alertThresholds: { included: [], budget: [80] } }), budget: { amount: '500' }, subtotal: '400', projectedSubtotal: '0' }),
  );
  const [forecast] = evaluateAlerts(input({ budget: { amount: '500' }, subtotal: '0', projectedSubtotal: '1234.5' }));

  it('formats an included-usage alert', () => {
    const m = alertMessage(included90!, {
      customerId: 'cus_42',
      customerName: 'Acme',
      period,
      currency: 'usd',
      plan: { id: 'default', version: 2 },
      meterDisplayName: 'API Calls',
      unit: 'calls',
      projected: '312.40',
      budget: '500.00',
      usagePageUrl: 'https://usage.example.com/p/cus_42',
    });
    expect(m).toEqual({
      subject: 'Acme: API Calls at 90% of included usage (2026-11)',
      body: {
        customerId: 'cus_42',
        period,
        kind: 'included',
        meter: 'api_calls',
        threshold: 90,
        value: '9000',
        limit: '10000',
        percent: '90.00',
        currency: 'usd',
        plan: { id: 'default', version: 2 },
        projected: '312.40',
        budget: '500.00',
        usagePageUrl: 'https://usage.example.com/p/cus_42',
        alsoPassed: [],
        message:
          'Acme (cus_42) has used 9,000 calls of API Calls in 2026-11: 90.00% of the 10,000 calls included in the plan (alert threshold 90%). ' +
          "Usage beyond the included amount is billed at the plan's prices. " +
          'Projected cost for 2026-11: $312.40, against a monthly budget of $500.00. ' +
          'See the usage page: https://usage.example.com/p/cus_42',
      },
      attributes: { customerId: 'cus_42', kind: 'included', meter: 'api_calls', threshold: '90' },
    });
    expect(JSON.parse(JSON.stringify(m.body))).toEqual(m.body);
  });

  it('formats a budget alert', () => {
    const m = alertMessage(budget80!, { customerId: 'cus_42', customerName: 'Acme', period, currency: 'usd', projected: '655.10', budget: '500.00' });
    expect(m.subject).toBe('Acme: estimated cost at 80% of monthly budget (2026-11)');
    expect(m.body).toMatchObject({ kind: 'budget', meter: null, threshold: 80, value: '400.00', limit: '500.00', percent: '80.00', currency: 'usd' });
    expect(m.body.message).toBe(
      'The estimated cost of Acme (cus_42) for 2026-11 is $400.00: 80.00% of the monthly budget of $500.00 (alert threshold 80%). ' +
        'Projected cost for 2026-11: $655.10, against a monthly budget of $500.00. ' +
        'See the usage: GET /api/v1/customers/cus_42/usage?period=2026-11',
    );
    expect(m.body).toMatchObject({ usagePageUrl: null, projected: '655.10', budget: '500.00' });
    expect(m.attributes).toEqual({ customerId: 'cus_42', kind: 'budget', meter: '-', threshold: '80' });
  });

  it('formats a forecast alert', () => {
    const m = alertMessage(forecast!, {
      customerId: 'cus_42',
      customerName: 'Acme',
      period,
      currency: 'usd',
      usagePageUrl: 'https://usage.example.com/p/cus_42',
    });
    expect(m.subject).toBe('Acme: forecast to exceed monthly budget, projected at 246% (2026-11)');
    expect(m.body.message).toBe(
      'The projected cost of Acme (cus_42) for 2026-11 is $1,234.50, above the monthly budget of $500.00 (246.90% of it). ' +
        'See the usage page: https://usage.example.com/p/cus_42',
    );
    expect(m.attributes).toEqual({ customerId: 'cus_42', kind: 'forecast', meter: '-', threshold: '100' });
  });

  it('names the threshold crossed and where usage is now when it has gone past it: "crossed 100% ..., now at 240%"', () => {
    const [, , at100] = evaluateAlerts(input({ values: { api_calls: '24000' } })); // 240% of 10,000
    const ctx = { customerId: 'cus_42', customerName: 'Acme', period, currency: 'usd', meterDisplayName: 'API Calls', unit: 'calls' };
    const m = alertMessage(at100!, ctx);
    expect(m.subject).toBe('Acme: API Calls crossed 100% of included usage, now at 240% (2026-11)');
    expect(m.body.message).toContain('has used 24,000 calls of API Calls in 2026-11: 240.00% of the 10,000 calls included in the plan (alert threshold 100%).');
    // Whole percent, never rounded up: 100.99% is "at 100%", 12,345.67% is "now at 12,345%".
    const [, , at100_99] = evaluateAlerts(input({ values: { api_calls: '10099' } }));
    expect(alertMessage(at100_99!, ctx).subject).toBe('Acme: API Calls at 100% of included usage (2026-11)');
    const [, , far] = evaluateAlerts(input({ values: { api_calls: '1234567' } }));
    expect(alertMessage(far!, ctx).subject).toBe('Acme: API Calls crossed 100% of included usage, now at 12,345% (2026-11)');
    const [, over80] = evaluateAlerts(input({ budget: { amount: '500.00' }, subtotal: '475.00' })); // 95% of the budget
    expect(over80).toMatchObject({ kind: 'budget', threshold: 80, percent: '95.00' });
    expect(alertMessage(over80!, ctx).subject).toBe('Acme: estimated cost crossed 80% of monthly budget, now at 95% (2026-11)');
  });

  it('says "1 seat", not "1 seats", in the message', () => {
    const p = plan({
      charges: [
        {
          meter: 'seats',
          model: 'graduated',
          included: '1',
          tiers: [
            { upTo: '1', unitPrice: '0' },
            { upTo: null, unitPrice: '8.00' },
          ],
        },
      ],
    });
    const [, , at100] = evaluateAlerts(input({ plan: p, values: { seats: '1' } }));
    const m = alertMessage(at100!, { customerId: 'cus_42', period, currency: 'usd', meterDisplayName: 'Seats', unit: 'seats' });
    expect(m.body.message).toContain('has used 1 seat of Seats in 2026-11: 100.00% of the 1 seat included in the plan');
  });

  it('falls back to the customer id and the meter slug', () => {
    const m = alertMessage(included90!, { customerId: 'cus_42', period, currency: 'usd' });
    expect(m.subject).toBe('cus_42: api_calls at 90% of included usage (2026-11)');
    expect(m.body.message).toBe(
      'cus_42 has used 9,000 of api_calls in 2026-11: 90.00% of the 10,000 included in the plan (alert threshold 90%). ' +
        "Usage beyond the included amount is billed at the plan's prices. " +
        'See the usage: GET /api/v1/customers/cus_42/usage?period=2026-11',
    );
    expect(m.body).toMatchObject({ projected: null, budget: null, usagePageUrl: null });
  });

  it('says without a budget that there is none, and names the thresholds passed in the same update', () => {
    const [, , at100] = evaluateAlerts(input({ values: { api_calls: '10000' } }));
    const m = alertMessage(at100!, { customerId: 'cus_42', customerName: 'Acme', period, currency: 'usd', projected: '18.00', alsoPassed: [80, 90] });
    expect(m.subject).toBe('Acme: api_calls at 100% of included usage (2026-11)');
    expect(m.body.message).toBe(
      'Acme (cus_42) has used 10,000 of api_calls in 2026-11: 100.00% of the 10,000 included in the plan (alert threshold 100%; 80% and 90% were passed in the same update). ' +
        "Usage beyond the included amount is billed at the plan's prices. " +
        'Projected cost for 2026-11: $18.00 (no monthly budget set). ' +
        'See the usage: GET /api/v1/customers/cus_42/usage?period=2026-11',
    );
    expect(m.body.alsoPassed).toEqual([80, 90]);
  });

  it('keeps a link that is not a plain http(s) URL out of the message', () => {
    const m = alertMessage(included90!, { customerId: 'cus_42', period, currency: 'usd', usagePageUrl: 'javascript:alert(1)' });
    expect(m.body.usagePageUrl).toBeNull();
    expect(m.body.message).not.toContain('javascript');
  });

  it('keeps subjects on one line and within the limit, shortening names but never the threshold or period', () => {
    const long = alertMessage(included90!, { customerId: 'cus_42', customerName: 'A'.repeat(120), period, currency: 'usd', meterDisplayName: 'M'.repeat(128) });
    expect(long.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(long.subject).toMatch(/^A+\.\.\.: M+\.\.\. at 90% of included usage \(2026-11\)$/);
    const longName = alertMessage(included90!, {
      customerId: 'cus_42',
      customerName: 'Acme Corporation '.repeat(10),
      period,
      currency: 'usd',
      meterDisplayName: 'API Calls',
    });
    expect(longName.subject).toMatch(/^Acme Corporation .*\.\.\.: API Calls at 90% of included usage \(2026-11\)$/);
    expect(longName.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    const lines = alertMessage(budget80!, { customerId: 'cus_42', customerName: 'Acme\r\nInc.\t', period, currency: 'usd' });
    expect(lines.subject).toBe('Acme Inc.: estimated cost at 80% of monthly budget (2026-11)');
  });

  it('subject: any name fits in one line of at most 99 characters (property)', () => {
    const candidates = [included90!, budget80!, forecast!];
    fc.assert(
      fc.property(
        fc.constantFrom(...candidates),
        fc.option(fc.string({ unit: 'grapheme', maxLength: 300 }), { nil: undefined }),
        fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
        (c, customerName, meterDisplayName) => {
          const m = alertMessage(c, { customerId: 'cus_1', customerName, period, currency: 'eur', meterDisplayName });
          expect(m.subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
          expect(m.subject).not.toMatch(/[\r\n\u0000-\u001f]/);
          expect(m.subject).toContain(`(${period})`);
          expect(m.subject).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no split surrogate pair
        },
      ),
      { numRuns: 300 },
    );
  });
});
