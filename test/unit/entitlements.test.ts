import catalogJson from '../../catalog/catalog.json';
import { parseCatalog } from '../../lib/domain/catalog';
import { entitlements } from '../../lib/domain/entitlements';

const catalog = parseCatalog(catalogJson);
const free = catalog.plans.find((p) => p.id === 'free')!;
const defaultPlan = catalog.plans.find((p) => p.id === 'default')!;

describe('entitlements', () => {
  it.each([
    ['0', '10000', true],
    ['9999.999', '0.001', true],
    ['10000', '0', false], // reaching the limit is the stop
    ['12000', '0', false], // usage that slipped past it: never a negative remainder
  ])('free plan, %s API calls: remaining %s, hasAccess %s', (usage, remaining, hasAccess) => {
    expect(entitlements(free, ['api_calls'], { api_calls: usage })).toEqual([
      { meter: 'api_calls', usage, included: '10000', limit: '10000', remaining, hasAccess },
    ]);
  });

  it('always grants a meter without a limit, or one the plan does not charge', () => {
    expect(entitlements(defaultPlan, ['api_calls', 'active_users'], { api_calls: '99999999' })).toEqual([
      { meter: 'api_calls', usage: '99999999', included: '10000', limit: null, remaining: null, hasAccess: true },
      { meter: 'active_users', usage: '0', included: '0', limit: null, remaining: null, hasAccess: true },
    ]);
  });

  it('reads a negative LATEST reading as no usage', () => {
    expect(entitlements(free, ['seats'], { seats: '-3' })[0]).toMatchObject({ usage: '0', remaining: '1', hasAccess: true });
  });
});
