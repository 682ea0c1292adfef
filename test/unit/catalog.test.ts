import { CatalogError, CatalogIndex, compareDecimalStrings, parseCatalog } from '../../lib/domain/catalog';
import { publishCatalog, publishedIssues, retiredFrom, sameRetired } from '../../lib/domain/published-catalog';
import retired from '../../catalog/retired.json';
import { parseRetired } from '../../lib/domain/catalog';
import real from '../../catalog/catalog.json';
import published from '../../catalog/published.json';

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

describe('plan versions', () => {
  /** The default plan again as version 2 from `effectiveFrom`, changed by `edit`. */
  const withVersion2 = (effectiveFrom: string | undefined, edit: (plan: any) => void = () => {}) => {
    const c = clone();
    const v2 = JSON.parse(JSON.stringify(c.plans[0]));
    v2.version = 2;
    if (effectiveFrom !== undefined) v2.effectiveFrom = effectiveFrom;
    edit(v2);
    c.plans.push(v2);
    return c;
  };

  it('prices each period with the version in force for it; the first version also covers what came before it', () => {
    const index = new CatalogIndex(parseCatalog(withVersion2('2026-10', (p) => (p.charges[0].tiers[1].unitPrice = '0.002'))));
    const price = (period: string) => index.planVersion('default', period)!.charges[0] as { tiers: { unitPrice: string }[] };
    expect([index.planVersion('default', '2026-09')!.version, index.planVersion('default', '2026-10')!.version]).toEqual([1, 2]);
    expect(price('2026-09').tiers[1]!.unitPrice).toBe('0.001');
    expect(price('2027-03').tiers[1]!.unitPrice).toBe('0.002');
    expect(index.planVersion('default', '1999-01')!.version).toBe(1);
    expect(index.planVersion('nope', '2026-10')).toBeUndefined();
  });

  it.each([
    ['a version after the first without effectiveFrom', () => withVersion2(undefined), 'plans.4.effectiveFrom: is required for version 2'],
    ['one version twice', () => withVersion2('2026-10', (p) => (p.version = 1)), 'plans.4.version: plan "default" has version 1 twice'],
    ['a gap between versions', () => withVersion2('2026-10', (p) => (p.version = 3)), 'plans.4.version: plan "default" jumps from version 1 to 3'],
    [
      'a later version that takes effect before an earlier one',
      () => {
        const c = withVersion2('2026-10');
        c.plans[0].effectiveFrom = '2026-11';
        return c;
      },
      "plans.4.effectiveFrom: 2026-10 is before version 1's 2026-11",
    ],
    ['an effectiveFrom that is not a period', () => withVersion2('2026-13'), 'plans.4.effectiveFrom'],
  ])('rejects %s, naming the field', (_name, make, expected) => {
    expect(() => parseCatalog(make())).toThrow(expected);
  });

  it('refuses an included allowance that contradicts the free tier (the page would say 75% used while the invoice charges)', () => {
    const c = clone();
    c.plans[0].charges[0].included = '20000'; // the zero-price tier ends at 10,000
    expect(() => parseCatalog(c)).toThrow('plans.0.charges.0.included: must equal the free tier (10000)');
    const volume = clone();
    volume.plans[1].charges[0].included = '0'; // pro's api_calls: volume, free up to 50,000
    expect(() => parseCatalog(volume)).toThrow('plans.1.charges.0.included: must equal the free tier (50000)');
  });

  it('derives included from the free tier when the catalog leaves it out', () => {
    const c = clone();
    delete c.plans[0].charges[0].included;
    delete c.plans[1].charges[0].included;
    const parsed = parseCatalog(c);
    expect(parsed.plans[0]!.charges[0]!.included).toBe('10000');
    expect(parsed.plans[1]!.charges[0]!.included).toBe('50000');
  });
});

describe('the published catalog: every version ever published, immutable', () => {
  const current = () => parseCatalog(clone());
  const publishedNow = () => parseCatalog(JSON.parse(JSON.stringify(published)));

  it('holds every plan version and meter of the repository catalog, unchanged (npm run catalog:publish writes it)', () => {
    expect(publishedIssues(current(), publishedNow())).toEqual([]);
  });

  it('bundles, beside the catalog, exactly what was published and left it (catalog/retired.json)', () => {
    expect(sameRetired(parseRetired(retired), retiredFrom(current(), publishedNow()))).toBe(true);
    const c = clone();
    c.plans.splice(2, 1); // jp off sale
    expect(retiredFrom(parseCatalog(c), publishedNow()).plans.map((p) => p.id)).toEqual(['jp']);
  });

  it('refuses a published version that changed, naming plan and version and what to do instead', () => {
    const c = clone();
    c.plans[0].charges[0].tiers[1].unitPrice = '0.002';
    const issues = publishedIssues(parseCatalog(c), publishedNow()).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues).toEqual([expect.stringMatching(/^plans\.0: plan "default" version 1 was published and cannot change .*version 2/)]);
  });

  it('refuses a meter whose aggregation changed: that is a new meter', () => {
    const c = clone();
    c.meters[1].aggregation = 'SUM';
    const issues = publishedIssues(parseCatalog(c), publishedNow()).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues).toEqual([expect.stringMatching(/^meters\.1\.aggregation: meter "storage_gb" was published as MAX .*new meter/)]);
  });

  it('refuses a version that is not published yet, saying how to publish it; publishing adds it and keeps the rest', () => {
    const c = clone();
    const v2 = { ...JSON.parse(JSON.stringify(c.plans[0])), version: 2, effectiveFrom: '2027-01' };
    c.plans.push(v2);
    const next = parseCatalog(c);
    expect(publishedIssues(next, publishedNow()).map((i) => i.message)).toEqual([expect.stringContaining('npm run catalog:publish')]);
    const after = publishCatalog(next, publishedNow());
    expect(publishedIssues(next, after)).toEqual([]);
    expect(after.plans.filter((p) => p.id === 'default').map((p) => p.version)).toEqual([1, 2]);
  });

  it('keeps a plan removed from the catalog readable for the periods that used it', () => {
    const c = clone();
    const pro = c.plans.splice(1, 1)[0];
    const index = new CatalogIndex(parseCatalog(c), publishedNow());
    expect(publishedIssues(parseCatalog(c), publishedNow())).toEqual([]);
    expect(index.onSale('pro')).toBe(false);
    expect(index.planVersion('pro', '2026-09')).toMatchObject({ id: 'pro', baseFee: pro.baseFee, version: 1 });
  });
});

describe('npm run catalog:check', () => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const { join } = require('node:path') as typeof import('node:path');
  const { mkdtempSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
  const root = join(__dirname, '..', '..');
  const check = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'tools/catalog-check.ts', ...args], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });

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
