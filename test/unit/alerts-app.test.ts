import { evaluateCustomerAlerts, listAlerts, sweepPendingAlerts, type AlertDeps } from '../../lib/app/alerts';
import type { AlertRecord, AlertRepository } from '../../lib/app/ports/alerts';
import type { Customer } from '../../lib/domain/customer';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import catalogJson from '../../catalog/catalog.json';
import { MemoryClock, MemoryCounterReads } from '../support/memory';

/**
 * Alerts as a use case on in-memory ports (the real catalog: default plan thresholds 80/90/100% of
 * included, 50/80/100% of budget): what is claimed, what is sent, what a message says.
 */
class MemoryAlerts implements AlertRepository {
  readonly rows = new Map<string, AlertRecord>();
  async list(customerId: string, period: string) {
    return [...this.rows.values()].filter((r) => r.customerId === customerId && r.period === period).map((r) => structuredClone(r));
  }
  async claim(record: AlertRecord) {
    const k = `${record.customerId}|${record.period}|${record.key}`;
    if (this.rows.has(k)) return false;
    this.rows.set(k, structuredClone(record));
    return true;
  }
  async markSent(record: AlertRecord, messageId: string, at: string) {
    Object.assign(this.rows.get(`${record.customerId}|${record.period}|${record.key}`)!, { status: 'sent', messageId, sentAt: at });
  }
  async markFailed() {}
  async pending() {
    return [...this.rows.values()].filter((r) => r.status === 'pending');
  }
}

const catalog = new CatalogIndex(parseCatalog(catalogJson));
const published: { subject: string; body: any }[] = [];
let counters: Record<string, string>;
let customer: Customer | undefined;
let deps: AlertDeps;
let alerts: MemoryAlerts;
const clock = new MemoryClock(new Date('2026-11-20T12:00:00Z'));

beforeEach(() => {
  published.length = 0;
  counters = {};
  customer = {
    id: 'cus_42',
    name: 'Acme',
    planId: 'default',
    plans: [{ from: '2026-01', planId: 'default' }],
    budget: { amount: '500.00', currency: 'usd' },
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
  };
  alerts = new MemoryAlerts();
  clock.at = new Date('2026-11-20T12:00:00Z');
  deps = {
    counterReads: new MemoryCounterReads({ get: async () => customer }, { read: async () => ({ values: { ...counters }, duplicatesDropped: 0 }) }),
    catalog,
    clock,
    alerts,
    publisher: { publish: async (m) => (published.push({ subject: m.subject, body: m.body }), `msg-${published.length}`) },
  };
});

const statuses = async () => Object.fromEntries((await alerts.list('cus_42', '2026-11')).map((a) => [a.key, a.status]));

it('sends one message for the highest of several thresholds crossed at once, and records the others as superseded', async () => {
  counters = { seats: '4' }; // 133% of 3 included seats: 80, 90 and 100 at once
  expect(await evaluateCustomerAlerts(deps, 'cus_42', '2026-11')).toBe(1);
  expect(published.map((p) => p.subject)).toEqual(['Acme: Seats (peak) crossed 100% of included usage, now at 133% (2026-11)']);
  expect(published[0]!.body.alsoPassed).toEqual([80, 90]);
  expect(published[0]!.body.message).toContain('alert threshold 100%; 80% and 90% were passed in the same update');
  expect(await statuses()).toEqual({ 'included#seats#80': 'superseded', 'included#seats#90': 'superseded', 'included#seats#100': 'sent' });
  const rows = await alerts.list('cus_42', '2026-11');
  expect(rows.find((r) => r.key === 'included#seats#80')).toMatchObject({ supersededBy: 'included#seats#100' });

  // Level-triggered: evaluating again sends nothing, and the superseded ones are never sent later.
  counters = { seats: '5' };
  expect(await evaluateCustomerAlerts(deps, 'cus_42', '2026-11')).toBe(0);
  expect(await sweepPendingAlerts(deps, 0)).toEqual({ retried: 0, sent: 0 });
  expect(published).toHaveLength(1);
});

it('sends each threshold once as usage crosses them one by one', async () => {
  for (const [calls, expected] of [
    ['8500', ['included#api_calls#80']],
    ['9500', ['included#api_calls#80', 'included#api_calls#90']],
    ['9600', ['included#api_calls#80', 'included#api_calls#90']],
    ['10000', ['included#api_calls#80', 'included#api_calls#90', 'included#api_calls#100']],
  ] as const) {
    counters = { api_calls: calls };
    await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
    expect(published.map((p) => `${p.body.kind}#${p.body.meter}#${p.body.threshold}`)).toEqual(expected);
  }
  expect(Object.values(await statuses())).toEqual(['sent', 'sent', 'sent']);
});

it('says in every message what to do next: the budget, the projected cost and where to look', async () => {
  counters = { api_calls: '9000' };
  await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
  const [m] = published;
  expect(m!.body).toMatchObject({ budget: '500.00', projected: expect.stringMatching(/^\d+\.\d{2}$/), usagePageUrl: null });
  expect(m!.body.message).toMatch(
    /Projected cost for 2026-11: \$[\d,.]+, against a monthly budget of \$500\.00\. See the usage: GET \/api\/v1\/customers\/cus_42\/usage\?period=2026-11$/,
  );

  published.length = 0;
  deps = { ...deps, usagePageUrl: (id) => `https://usage.example.com/${id}` };
  counters = { api_calls: '10000' };
  await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
  expect(published[0]!.body.usagePageUrl).toBe('https://usage.example.com/cus_42');
  expect(published[0]!.body.message).toMatch(/See the usage page: https:\/\/usage\.example\.com\/cus_42$/);
});

it('sends nothing for a period that has closed: late usage becomes an invoice correction, not an alarm', async () => {
  counters = { seats: '10', api_calls: '50000', storage_gb: '5000' }; // every kind, budget and forecast included
  clock.at = new Date('2026-12-01T00:00:00Z'); // the first instant after 2026-11
  expect(await evaluateCustomerAlerts(deps, 'cus_42', '2026-11')).toBe(0);
  expect(published).toEqual([]);
  expect(await alerts.list('cus_42', '2026-11')).toEqual([]);
  clock.at = new Date('2026-11-30T23:59:59.999Z'); // still open: every kind alerts
  expect(await evaluateCustomerAlerts(deps, 'cus_42', '2026-11')).toBe(5);
  expect(published.map((p) => p.body.kind).sort()).toEqual(['budget', 'forecast', 'included', 'included', 'included']);
});

it('sends no forecast on the noise of the first days: one hour into a month a projection is 700 times the hour', async () => {
  clock.at = new Date('2026-11-01T01:00:00Z');
  counters = { api_calls: '460000' }; // 270.00 so far, projected ~700 times that at the month's end
  await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
  const kinds = () => [...alerts.rows.values()].map((a) => a.kind).sort();
  expect(kinds()).toEqual(['budget', 'included', 'included', 'included']); // spent and included: true at any hour
  clock.at = new Date('2026-11-04T01:00:00Z'); // three days in: the projection is worth an alert
  await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
  expect(kinds()).toEqual(['budget', 'forecast', 'included', 'included', 'included']);
});

it('lists alerts in threshold order (80 before 100), the superseded ones included', async () => {
  counters = { seats: '4', api_calls: '9000' };
  await evaluateCustomerAlerts(deps, 'cus_42', '2026-11');
  const listed = await listAlerts(deps, { keyId: 'k', scopes: ['read'] }, 'cus_42', '2026-11');
  expect(listed.alerts.map((a) => [a.kind, a.meter, a.threshold, a.status])).toEqual([
    ['included', 'api_calls', 80, 'superseded'],
    ['included', 'api_calls', 90, 'sent'],
    ['included', 'seats', 80, 'superseded'],
    ['included', 'seats', 90, 'superseded'],
    ['included', 'seats', 100, 'sent'],
  ]);
  expect(listed.alerts[0]).toMatchObject({ supersededBy: 'included#api_calls#90', sentAt: null });
});
