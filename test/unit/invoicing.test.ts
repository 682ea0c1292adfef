import catalogJson from '../../catalog/catalog.json';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import {
  computeInvoices,
  estimatePeriod,
  PlanNotFoundError,
  termsFor,
  type BillingCustomer,
  type InvoiceSnapshot,
  type StoredInvoice,
} from '../../lib/domain/billing';
import { Period } from '../../lib/domain/period';

const catalog = new CatalogIndex(parseCatalog(catalogJson));
const sep = Period.parse('2026-09');
const oct = Period.parse('2026-10');
const nov = Period.parse('2026-11');

const customer = (over: Partial<BillingCustomer> = {}): BillingCustomer => ({
  createdAt: '2026-09-02T10:00:00.000Z',
  planId: 'default',
  plans: [{ from: '2026-09', planId: 'default' }],
  ...over,
});

/** A stored own invoice of `period` that billed `quantities`. */
const invoiced = (period: string, quantities: Record<string, string>, over: Partial<StoredInvoice> = {}): StoredInvoice => ({
  key: period,
  period,
  kind: 'period',
  status: 'finalized',
  planId: 'default',
  currency: 'usd',
  total: '0.00',
  invoicedQuantities: quantities,
  invoicedVersion: 1,
  ...over,
});

const snapshot = (over: Partial<InvoiceSnapshot> & { period: Period }): InvoiceSnapshot => ({
  customerId: 'cus_1',
  customer: customer(),
  counters: {},
  records: [],
  lookback: 2,
  ...over,
});

const lineKeys = (i: { lines: { lineKey: string; amount: string }[] }) => i.lines.map((l) => [l.lineKey, l.amount]);

describe('termsFor: which plan prices a period, and whether it owes fixed fees', () => {
  it('prices a customer that was never created on default, without fees', () => {
    expect(termsFor(catalog, undefined, '2026-10')).toMatchObject({ plan: { id: 'default' }, fees: false });
  });

  it('prices usage from before the customer existed on default without fees, not on the plan it was created with', () => {
    const pro = customer({ createdAt: '2026-10-15T00:00:00Z', planId: 'pro', plans: [{ from: '2026-10', planId: 'pro' }] });
    expect(termsFor(catalog, pro, '2026-09')).toMatchObject({ plan: { id: 'default' }, fees: false });
    expect(termsFor(catalog, pro, '2026-10')).toMatchObject({ plan: { id: 'pro' }, fees: true });
    expect(termsFor(catalog, pro, '2000-01')).toMatchObject({ plan: { id: 'default' }, fees: false });
  });

  it('follows the schedule after a plan change', () => {
    const changed = customer({
      plans: [
        { from: '2026-09', planId: 'default' },
        { from: '2026-11', planId: 'jp' },
      ],
    });
    expect(termsFor(catalog, changed, '2026-10').plan.id).toBe('default');
    expect(termsFor(catalog, changed, '2026-11').plan.id).toBe('jp');
  });

  it('refuses to price on a plan that left the catalog instead of falling back to default', () => {
    const gone = customer({ planId: 'legacy', plans: [{ from: '2026-09', planId: 'legacy' }] });
    expect(() => termsFor(catalog, gone, '2026-10')).toThrow(PlanNotFoundError);
    expect(() => termsFor(catalog, gone, '2026-10')).toThrow(/plan "legacy" is not in the catalog/);
  });
});

describe('computeInvoices', () => {
  it('bills a pro period its base fee and flat seats once it was created, and no fees before', () => {
    const pro = customer({ createdAt: '2026-10-05T00:00:00Z', planId: 'pro', plans: [{ from: '2026-10', planId: 'pro' }] });
    const october = computeInvoices(catalog, snapshot({ period: oct, customer: pro, counters: { '2026-10': { seats: '3' } } }));
    expect(october.invoices.map(lineKeys)).toEqual([
      [
        ['base_fee', '49.00'],
        ['seats:flat', '20.00'],
      ],
    ]);
    const september = computeInvoices(catalog, snapshot({ period: sep, customer: pro, counters: { '2026-09': { seats: '5' } } }));
    expect(september.invoices[0]).toMatchObject({
      planId: 'default',
      fees: false,
      total: '16.00',
      lines: [expect.objectContaining({ lineKey: 'seats:tier:1' })],
    });
  });

  it('does not correct an earlier period that has no invoice of its own yet (its own job bills it, in any order)', () => {
    const out = computeInvoices(
      catalog,
      snapshot({ period: oct, counters: { '2026-10': { api_calls: '20000' }, '2026-09': { api_calls: '50000' } }, records: [] }),
    );
    expect(out.invoices.map(lineKeys)).toEqual([[['api_calls:tier:1', '10.00']]]);
    expect(out.baselines).toEqual([]);
  });

  it('corrects an invoiced earlier period from its baseline and moves the baseline at the stored version', () => {
    const out = computeInvoices(
      catalog,
      snapshot({
        period: oct,
        counters: { '2026-10': {}, '2026-09': { api_calls: '21500' } },
        records: [invoiced('2026-09', { api_calls: '20000' }, { invoicedVersion: 3 })],
      }),
    );
    expect(out.invoices.map(lineKeys)).toEqual([[['api_calls:correction:2026-09', '1.50']]]);
    expect(out.baselines).toEqual([{ period: '2026-09', quantities: { api_calls: '21500' }, version: 3 }]);
  });

  it('bills a correction in the currency of the period it corrects, on an invoice of its own when the currencies differ', () => {
    const moved = customer({
      plans: [
        { from: '2026-09', planId: 'default' },
        { from: '2026-10', planId: 'jp' },
      ],
    });
    const out = computeInvoices(
      catalog,
      snapshot({
        period: oct,
        customer: moved,
        counters: { '2026-10': { seats: '4' }, '2026-09': { seats: '5' } },
        records: [invoiced('2026-09', { seats: '3' })],
      }),
    );
    expect(out.invoices.map((i) => [i.key, i.kind, i.currency, i.total, i.totalMinor])).toEqual([
      ['2026-10', 'period', 'jpy', '6200', '6200'],
      ['2026-10#usd', 'correction', 'usd', '16.00', '1600'],
    ]);
    expect(lineKeys(out.invoices[1]!)).toEqual([['seats:correction:2026-09', '16.00']]);
  });

  it('carries a negative total as a credit line to the next invoice in that currency', () => {
    const carried = invoiced('2026-10', {}, { status: 'credit_carried', total: '-12.50' });
    const out = computeInvoices(catalog, snapshot({ period: nov, counters: { '2026-11': { seats: '5' } }, records: [carried] }));
    expect(lineKeys(out.invoices[0]!)).toEqual([
      ['seats:tier:1', '16.00'],
      ['credit:2026-10', '-12.50'],
    ]);
    expect(out.invoices[0]!.total).toBe('3.50');
    expect(out.credits).toEqual([{ key: '2026-10', appliedTo: '2026-11' }]);
    // Used once: a credit already applied is not offered again.
    const used = computeInvoices(catalog, snapshot({ period: nov, records: [{ ...carried, creditAppliedTo: '2026-11' }] }));
    expect(used.invoices[0]!.lines).toEqual([]);
  });

  it('emits no zero-amount lines, e.g. for a base fee that rounds to nothing', () => {
    const tiny = new CatalogIndex(
      parseCatalog({ ...catalogJson, plans: [...catalogJson.plans, { id: 'tiny', name: 'Tiny', currency: 'usd', baseFee: '0.00', charges: [] }] }),
    );
    const c = customer({ planId: 'tiny', plans: [{ from: '2026-09', planId: 'tiny' }] });
    expect(computeInvoices(tiny, snapshot({ period: oct, customer: c })).invoices[0]!.lines).toEqual([]);
  });

  it('stays exact for the largest readings ingest accepts (1e14 seats)', () => {
    const out = computeInvoices(catalog, snapshot({ period: oct, counters: { '2026-10': { seats: '100000000000000' } } }));
    expect(out.invoices[0]).toMatchObject({ total: '799999999999976.00', totalMinor: '79999999999997600' });
  });
});

describe('estimatePeriod', () => {
  it('answers for big readings and projections without leaving exact decimals (7e14 calls an hour into the month)', () => {
    const e = estimatePeriod({
      catalog,
      customer: customer(),
      period: nov,
      counters: { api_calls: '700000000000000' },
      now: new Date(nov.start.getTime() + 3600_000),
    });
    expect(e.subtotal).toBe('140000000340.00');
    expect(e.projectedSubtotal).toBe('100800000000340.00');
  });

  it('shows the budget percent the alerts decide on, truncated, and no budget for one that rounds to zero', () => {
    const e = estimatePeriod({ catalog, customer: customer({ budget: { amount: '20.00' } }), period: nov, counters: { seats: '5' }, now: nov.end });
    expect(e.budget).toMatchObject({ amount: '20.00', spent: '16.00', percentUsed: '80.00' });
    const tiny = estimatePeriod({ catalog, customer: customer({ budget: { amount: '0.004' } }), period: nov, counters: { seats: '5' }, now: nov.end });
    expect(tiny.budget).toBeNull();
  });
});
