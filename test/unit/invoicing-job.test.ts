import catalogJson from '../../catalog/catalog.json';
import { invoiceCustomer, recordInvoiceFailure } from '../../lib/app/invoicing/job';
import { BillingProviderError } from '../../lib/app/invoicing/billing-provider';
import { failureReason } from '../../lib/app/invoicing/sync';
import { ConflictError } from '../../lib/domain/errors';
import { startInvoiceRunByHand } from '../../lib/app/invoicing/runs';
import { previewInvoice } from '../../lib/app/invoicing/views';
import { readUsage } from '../../lib/app/usage';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { Period } from '../../lib/domain/period';
import { admin, billingWorld } from '../support/billing-world';

/** The invoice job, runs and previews on in-memory adapters with the real catalog: one scenario per defect found. */
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const sep = Period.parse('2026-09');
const oct = Period.parse('2026-10');
const nov = Period.parse('2026-11');
const HOUR = 3_600_000;
const DAY = 86_400_000;

const world = (at: Date) => billingWorld(catalog, at);

describe('invoicing scenarios', () => {
  it('bills each period its own fees when months are invoiced out of order (2 x 117.00, not 165.00)', async () => {
    const w = world(new Date(sep.start.getTime() + DAY));
    await w.put('cus_pro', { name: 'Pro', planId: 'pro', stripeCustomerId: 'cus_s1' });
    w.deps.ledger.set('cus_pro', '2026-09', { seats: '3', api_calls: '60000' });
    w.deps.ledger.set('cus_pro', '2026-10', { seats: '3', api_calls: '60000' });
    // September's job fails before its record exists (the catalog check below makes it throw once).
    w.clock.at = new Date(sep.end.getTime() + HOUR);
    await w.fanOut(sep);
    expect(w.deps.invoiceJobs.jobs).toEqual([{ v: 1, period: '2026-09', customerId: 'cus_pro' }]);
    w.deps.invoiceJobs.jobs.length = 0; // lost: its message sits in the DLQ
    await w.run(oct);
    // The DLQ redrive (or a re-run) of September comes last.
    await invoiceCustomer(w.deps, { customerId: 'cus_pro', period: '2026-09' });
    const records = w.deps.invoices.all().filter((r) => r.customerId === 'cus_pro');
    expect(records.map((r) => [r.key, r.planId, r.total, r.status])).toEqual(
      expect.arrayContaining([
        ['2026-09', 'pro', '117.00', 'finalized'],
        ['2026-10', 'pro', '117.00', 'finalized'],
      ]),
    );
    expect(records).toHaveLength(2);
  });

  it('bills a correction in the currency of the period it corrects, on its own invoice (16.00 usd, not 1600 jpy)', async () => {
    const w = world(new Date(sep.start.getTime() - 10 * DAY)); // created in August
    await w.put('cus_fx', { name: 'FX', stripeCustomerId: 'cus_s2' });
    w.deps.ledger.set('cus_fx', '2026-09', { seats: '3' });
    w.clock.at = new Date(sep.start.getTime() + 10 * DAY);
    await w.put('cus_fx', { name: 'FX', planId: 'jp', stripeCustomerId: 'cus_s2' }); // from October
    await w.run(sep);
    w.deps.ledger.set('cus_fx', '2026-09', { seats: '5' }); // a late event: 2 more seats in September
    w.deps.ledger.set('cus_fx', '2026-10', { seats: '3' });
    await w.run(oct);
    const byKey = Object.fromEntries(w.deps.invoices.all().map((r) => [r.key, r]));
    expect(byKey['2026-10']).toMatchObject({ currency: 'jpy', total: '5000', totalMinor: '5000' });
    expect(byKey['2026-10#usd']).toMatchObject({ kind: 'correction', currency: 'usd', total: '16.00', totalMinor: '1600', status: 'finalized' });
    expect(byKey['2026-10#usd']!.lines.map((l) => [l.lineKey, l.period, l.amount])).toEqual([['seats:correction:2026-09', '2026-09', '16.00']]);
    expect([...w.stripe.invoices.values()].map((i) => [i.currency, i.total]).sort()).toEqual([
      ['jpy', 5000],
      ['usd', 1600],
    ]);
  });

  it('carries a negative total as a credit to the next invoice and never sends it to Stripe', async () => {
    const w = world(new Date(sep.start.getTime() + DAY));
    const latest = new CatalogIndex(
      parseCatalog({
        ...catalogJson,
        meters: [
          ...catalogJson.meters,
          { slug: 'gpus', displayName: 'GPUs', unit: 'gpus', eventType: 'gpus', aggregation: 'LATEST', valueProperty: '$.value' },
        ],
        plans: [{ id: 'default', name: 'GPU', currency: 'usd', charges: [{ meter: 'gpus', model: 'graduated', tiers: [{ upTo: null, unitPrice: '10.00' }] }] }],
      }),
    );
    Object.assign(w.deps, { catalog: latest });
    await w.put('cus_gpu', { name: 'GPU', stripeCustomerId: 'cus_s3' });
    w.deps.ledger.set('cus_gpu', '2026-09', { gpus: '8' });
    await w.run(sep); // 80.00
    w.deps.ledger.set('cus_gpu', '2026-09', { gpus: '2' }); // a later reading in September: 2 GPUs (-60.00)
    w.deps.ledger.set('cus_gpu', '2026-10', { gpus: '1' }); // 10.00
    await w.run(oct);
    w.deps.ledger.set('cus_gpu', '2026-11', { gpus: '9' }); // 90.00
    await w.run(nov);
    const byKey = Object.fromEntries(w.deps.invoices.all().map((r) => [r.key, r]));
    expect(byKey['2026-10']).toMatchObject({ status: 'credit_carried', total: '-50.00', creditAppliedTo: '2026-11' });
    expect(byKey['2026-11']!.lines.map((l) => [l.lineKey, l.amount])).toEqual([
      ['gpus:tier:0', '90.00'],
      ['credit:2026-10', '-50.00'],
    ]);
    expect(byKey['2026-11']).toMatchObject({ status: 'finalized', total: '40.00' });
    expect([...w.stripe.invoices.values()].map((i) => i.total)).toEqual([8000, 4000]);
  });

  it('does not show the previous month as a correction in the preview while its run is under way', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await w.put('cus_p', { name: 'P' });
    w.deps.ledger.set('cus_p', '2026-10', { api_calls: '60000' });
    w.deps.ledger.set('cus_p', '2026-11', { api_calls: '20000' });
    w.clock.at = new Date(oct.end.getTime() + HOUR);
    await w.fanOut(oct); // jobs enqueued, not yet processed
    expect(w.deps.invoiceJobs.jobs).toEqual([{ v: 1, period: '2026-10', customerId: 'cus_p' }]);
    const preview = await previewInvoice(w.deps, admin, 'cus_p', undefined);
    expect(preview.lines.map((l) => [l.lineKey, l.amount])).toEqual([['api_calls:tier:1', '10.00']]);
    expect(preview.total).toBe('10.00');
  });

  it('refuses a run for a period older than the late-event window or before the first usage, unless forced', async () => {
    const w = world(new Date('2026-11-26T12:00:00Z'));
    await w.put('cus_new', { name: 'New', planId: 'pro', stripeCustomerId: 'cus_s4' });
    await expect(startInvoiceRunByHand(w.deps, admin, { period: '2000-01' })).rejects.toMatchObject({ code: 'period_too_old' });
    await expect(startInvoiceRunByHand(w.deps, admin, { period: '2026-10' })).rejects.toMatchObject({ code: 'period_before_first_usage' });
    // Forced, it runs, and still bills no fees to a customer created after the period.
    await startInvoiceRunByHand(w.deps, admin, { period: '2000-01', force: true });
    await w.drain();
    expect(w.deps.invoices.all().map((r) => [r.key, r.status, r.total])).toEqual([['2000-01', 'no_charge', '0.00']]);
    expect(w.stripe.invoices.size).toBe(0);
  });

  it('keeps the plan when a PUT has no planId (e.g. only the alert email changes)', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await w.put('cus_k', { name: 'K', planId: 'pro' });
    const out = await w.put('cus_k', { name: 'K renamed' });
    expect(out.customer).toMatchObject({ planId: 'pro', plans: [{ from: '2026-10', planId: 'pro' }] });
  });

  it('refuses a budget finer than the currency or of zero', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await expect(w.put('cus_b', { name: 'B', budget: { amount: '0.004' } })).rejects.toMatchObject({ code: 'invalid_budget' });
    await expect(w.put('cus_b', { name: 'B', budget: { amount: '0' } })).rejects.toMatchObject({ code: 'invalid_budget' });
    await expect(w.put('cus_b', { name: 'B', planId: 'jp', budget: { amount: '500.5' } })).rejects.toMatchObject({ code: 'invalid_budget' });
  });

  it('names a plan missing from the catalog everywhere instead of pricing on default', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await w.put('cus_gone', { name: 'Gone', planId: 'pro', stripeCustomerId: 'cus_s5' });
    w.deps.ledger.set('cus_gone', '2026-10', { seats: '3' });
    Object.assign(w.deps, { catalog: new CatalogIndex(parseCatalog({ ...catalogJson, plans: catalogJson.plans.filter((p) => p.id !== 'pro') })) });
    await expect(readUsage(w.deps, admin, 'cus_gone', '2026-10')).rejects.toMatchObject({ code: 'plan_not_found' });
    await expect(previewInvoice(w.deps, admin, 'cus_gone', '2026-10')).rejects.toMatchObject({ code: 'plan_not_found' });
    await w.run(oct);
    expect(await invoiceCustomer(w.deps, { customerId: 'cus_gone', period: '2026-10' })).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^plan_not_found: /),
    });
    expect(w.deps.runs.members.get('2026-10')!.get('cus_gone')).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^plan_not_found/) });
    expect(w.deps.invoices.all()).toEqual([]);
  });

  it('blocks an invoice Stripe could never take (a 1e14-seat bill) with the reason recorded, and still answers usage and preview', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await w.put('cus_big', { name: 'Big', stripeCustomerId: 'cus_s6' });
    w.deps.ledger.set('cus_big', '2026-10', { seats: '100000000000000' });
    expect((await readUsage(w.deps, admin, 'cus_big', '2026-10')).subtotal).toBe('799999999999976.00');
    expect((await previewInvoice(w.deps, admin, 'cus_big', '2026-10')).total).toBe('799999999999976.00');
    await w.run(oct);
    const [record] = w.deps.invoices.all();
    expect(record).toMatchObject({
      status: 'blocked',
      blockedFrom: 'pending',
      totalMinor: '79999999999997600',
      lastError: expect.stringMatching(/^amount_too_large: /),
    });
    expect(w.deps.runs.members.get('2026-10')!.get('cus_big')).toMatchObject({ status: 'failed' });
    expect(w.stripe.invoices.size).toBe(0);
  });

  it('blocks an invoice of more than 250 lines before any Stripe call (Stripe takes 250 items per invoice), and sends one of 250', async () => {
    // One meter priced in 300 one-unit tiers of 1.00: an invoice line per tier reached.
    const tiers = Array.from({ length: 300 }, (_, i) => ({ upTo: i === 299 ? null : String(i + 1), unitPrice: '1.00' }));
    const w = world(new Date(oct.start.getTime() + DAY));
    Object.assign(w.deps, {
      catalog: new CatalogIndex(
        parseCatalog({ ...catalogJson, plans: [{ id: 'default', name: 'Tiers', currency: 'usd', charges: [{ meter: 'seats', model: 'graduated', tiers }] }] }),
      ),
    });
    await w.put('cus_wide', { name: 'Wide', stripeCustomerId: 'cus_s7' });
    await w.put('cus_250', { name: '250', stripeCustomerId: 'cus_s8' });
    w.deps.ledger.set('cus_wide', '2026-10', { seats: '251' });
    w.deps.ledger.set('cus_250', '2026-10', { seats: '250' });

    await w.run(oct);

    const byCustomer = Object.fromEntries(w.deps.invoices.all().map((r) => [r.customerId, r]));
    expect(byCustomer.cus_wide!.lines).toHaveLength(251);
    expect(byCustomer.cus_wide).toMatchObject({ status: 'blocked', blockedFrom: 'pending', lastError: expect.stringMatching(/^too_many_lines: /) });
    expect(w.deps.runs.members.get('2026-10')!.get('cus_wide')).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^too_many_lines/) });
    expect(byCustomer.cus_250).toMatchObject({ status: 'finalized', total: '250.00' });
    expect([...w.stripe.invoices.values()].map((i) => [i.customer, i.total])).toEqual([['cus_s8', 25000]]);
    expect(w.stripe.items).toHaveLength(250);
  });

  it('records what a failed attempt may say to the customer`s keys: a refusal`s code and sentence, never an internal error`s text', async () => {
    const w = world(new Date(oct.start.getTime() + DAY));
    await w.put('cus_err', { name: 'Err', planId: 'pro', stripeCustomerId: 'cus_s9' });
    w.deps.ledger.set('cus_err', '2026-10', { seats: '3' });
    w.stripe.failNext = 100; // every call times out
    w.clock.at = new Date(oct.end.getTime() + 2 * HOUR);
    await w.fanOut(oct);
    await expect(invoiceCustomer(w.deps, { customerId: 'cus_err', period: '2026-10' })).rejects.toThrow(/injected timeout/);
    const internal = new Error('connect ECONNREFUSED 10.0.3.7:443 at /var/task/index.js:1:2 table arn:aws:dynamodb:eu-west-1:123456789012:table/Invoices');
    await recordInvoiceFailure(w.deps, { customerId: 'cus_err', period: '2026-10' }, internal, false);
    expect(w.records('cus_err')['2026-10']!.lastError).toBe(failureReason(internal));
    await recordInvoiceFailure(
      w.deps,
      { customerId: 'cus_err', period: '2026-10' },
      new BillingProviderError('socket hang up at 10.0.3.7', true, 'timeout'),
      true,
    );
    expect(w.records('cus_err')['2026-10']!.lastError).toBe('timeout: Stripe could not take the request at the time; it is retried');
    expect(w.deps.runs.members.get('2026-10')!.get('cus_err')).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^timeout: /) });
    for (const said of [failureReason(internal), failureReason(new TypeError("Cannot read properties of undefined (reading 'x')"))]) {
      expect(said).toMatch(/^internal_error: /);
      expect(said).not.toMatch(/ECONNREFUSED|10\.0|arn:|\/var\/task|undefined/);
    }
    expect(failureReason(new ConflictError('plan_not_found', 'plan "x" is not in the catalog'))).toBe('plan_not_found: plan "x" is not in the catalog');
    expect(failureReason(new BillingProviderError('No such customer: cus_s9', false, 'resource_missing'))).toBe('resource_missing: No such customer: cus_s9');
  });
});
