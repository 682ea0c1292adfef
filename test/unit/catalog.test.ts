import { CatalogError, compareDecimalStrings, parseCatalog } from '../../lib/domain/catalog';
import real from '../../catalog/catalog.json';

const clone = () => JSON.parse(JSON.stringify(real));

describe('catalog validation', () => {
  it('accepts the catalog in the repository (the build check)', () => {
    expect(parseCatalog(real).plans.map((p) => p.id)).toContain('default');
  });

  it.each([
    ['an unknown aggregation', (c: any) => (c.meters[0].aggregation = 'AVG'), 'meters.0.aggregation'],
    ['a SUM meter without valueProperty', (c: any) => delete c.meters[0].valueProperty, 'meters.0.valueProperty'],
    ['a duplicate meter', (c: any) => c.meters.push({ ...c.meters[0] }), 'duplicate meter'],
    ['a charge for an unknown meter', (c: any) => (c.plans[0].charges[0].meter = 'nope'), 'plans.0.charges.0.meter'],
    ['a float unit price', (c: any) => (c.plans[0].charges[0].tiers[1].unitPrice = 0.001), 'plans.0.charges.0.tiers.1.unitPrice'],
    ['13 decimals', (c: any) => (c.plans[0].charges[0].tiers[1].unitPrice = '0.0000000000001'), 'unitPrice'],
    ['tiers out of order', (c: any) => (c.plans[0].charges[0].tiers[2].upTo = '50'), 'plans.0.charges.0.tiers.2.upTo'],
    ['a bounded last tier', (c: any) => (c.plans[0].charges[0].tiers[3].upTo = '9999999'), 'the last tier must be open-ended'],
    ['no default plan', (c: any) => (c.plans[0].id = 'basic'), 'a plan with id "default" is required'],
    ['an unknown field', (c: any) => (c.plans[0].colour = 'red'), 'plans.0'],
    [
      'a yen base fee of 49.5',
      (c: any) => Object.assign(c.plans[1], { currency: 'jpy', baseFee: '49.5' }),
      'plans.1.baseFee: 49.5 is finer than the jpy minor unit',
    ],
    [
      'a flat charge of 20.001 dollars',
      (c: any) => (c.plans[1].charges[3].amount = '20.001'),
      'plans.1.charges.3.amount: 20.001 is finer than the usd minor unit',
    ],
    ['a package price of 10.005', (c: any) => (c.plans[1].charges[1].packagePrice = '10.005'), 'plans.1.charges.1.packagePrice'],
    ['a tier flat fee of 1.001', (c: any) => (c.plans[0].charges[0].tiers[1].flatFee = '1.001'), 'plans.0.charges.0.tiers.1.flatFee'],
  ])('rejects %s, naming the field', (_name, mutate, expected) => {
    const c = clone();
    mutate(c);
    expect(() => parseCatalog(c)).toThrow(CatalogError);
    expect(() => parseCatalog(c)).toThrow(expected);
  });

  it('reports every problem at once: an invalid aggregation does not hide an unknown meter in a plan', () => {
    const c = clone();
    c.meters[0].aggregation = 'AVG';
    c.plans[0].charges[1].meter = 'nope';
    c.plans[1].baseFee = '49.001';
    c.plans[1].charges[2].tiers[0].upTo = null;
    let problems: string[] = [];
    try {
      parseCatalog(c);
    } catch (err) {
      problems = (err as CatalogError).problems;
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^meters\.0\.aggregation: /),
        'plans.0.charges.1.meter: unknown meter "nope"',
        expect.stringMatching(/^plans\.1\.baseFee: 49\.001 is finer/),
        expect.stringMatching(/^plans\.1\.charges\.2\.tiers\.0\.upTo: only the last tier may be open-ended/),
      ]),
    );
  });

  it('refuses a limit below the included allowance', () => {
    const c = clone();
    c.plans[0].charges[0].limit = '9999';
    expect(() => parseCatalog(c)).toThrow('plans.0.charges.0.limit: must not be below included (10000)');
  });

  it('accepts unit prices finer than the minor unit (they are multiplied before rounding)', () => {
    const c = clone();
    c.plans[0].charges[0].tiers[1].unitPrice = '0.000123456789';
    expect(() => parseCatalog(c)).not.toThrow();
  });

  it('compares decimal strings exactly', () => {
    expect(compareDecimalStrings('100000', '99999.999999999999')).toBe(1);
    expect(compareDecimalStrings('0.10', '0.1')).toBe(0);
    expect(compareDecimalStrings('007', '7.0')).toBe(0);
  });
});

describe('npm run catalog:check', () => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const { join } = require('node:path') as typeof import('node:path');
  const { mkdtempSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
  const root = join(__dirname, '..', '..');
  const check = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'local/catalog-check.ts', ...args], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });

  it('checks the file CATALOG_FILE names (the catalog the functions would load), else the bundled one', () => {
    const broken = clone();
    broken.plans[0].charges[0].meter = 'nope';
    const file = join(mkdtempSync(join(require('node:os').tmpdir(), 'catalog-')), 'broken.json');
    writeFileSync(file, JSON.stringify(broken));
    const bad = check({ CATALOG_FILE: file });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`${file}: `);
    expect(bad.stderr).toContain('plans.0.charges.0.meter');
    const fixture = join(root, 'test', 'fixtures', 'catalog.json');
    expect(check({ CATALOG_FILE: fixture })).toMatchObject({ status: 0, stdout: expect.stringContaining(`${fixture}: `) });
    expect(check({ CATALOG_FILE: '' })).toMatchObject({ status: 0, stdout: expect.stringContaining(join('catalog', 'catalog.json')) });
    expect(check({ CATALOG_FILE: file }, [fixture]).status).toBe(0); // an explicit argument wins
  });
});
