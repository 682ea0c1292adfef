import catalogJson from '../../catalog/catalog.json';
import { listCredits, settleCredit } from '../../lib/app/credits';
import { customerInput, patchCustomer } from '../../lib/app/customers';
import { syncCustomerInvoices } from '../../lib/app/invoicing/job';
import { runView, scheduledInvoiceRun } from '../../lib/app/invoicing/runs';
import { previewInvoice } from '../../lib/app/invoicing/views';
import { readUsage } from '../../lib/app/usage';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { correctionLookback } from '../../lib/domain/period';
import { Period } from '../../lib/domain/period';
import { settingsProblems } from '../../lib/platform/config';
import { admin, billingWorld } from '../support/billing-world';

/**
 * Money over time: prices, plans and settings change while invoices already sent must not. One
 * scenario per case an auditor found, each on the pure compute and the in-memory stores.
 */
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const sep = Period.parse('2026-09');
const oct = Period.parse('2026-10');
const nov = Period.parse('2026-11');
const dec = Period.parse('2026-12');
const jan = Period.parse('2027-01');
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** A copy of the repository's catalog to edit. */
const repo = () => JSON.parse(JSON.stringify(catalogJson));
/** `plan` again as its next version from `effectiveFrom`, edited by `edit`. */
function nextVersion(json: any, planId: string, effectiveFrom: string, edit: (plan: any) => void) {
  const versions = json.plans.filter((p: any) => p.id === planId);
  const v = JSON.parse(JSON.stringify(versions[versions.length - 1]));
  v.version = (v.version ?? 1) + 1;
  v.effectiveFrom = effectiveFrom;
  edit(v);
  json.plans.push(v);
  return json;
}
/** A deploy: the functions load `json` from now on, beside what was published before (`published`). */
function deploy(w: { deps: { catalog: CatalogIndex } }, json: unknown, published?: unknown) {
  w.deps.catalog = new CatalogIndex(parseCatalog(json), published === undefined ? undefined : parseCatalog(published));
}
/** Everything billed for `period` in minor units, per currency, across all of a customer's invoices. */
function billedFor(w: ReturnType<typeof billingWorld>, customerId: string, period: string) {
  const out: Record<string, bigint> = {};
  for (const r of w.deps.invoices.all().filter((x) => x.customerId === customerId)) {
    for (const l of r.lines) if (l.kind !== 'credit' && (l.period ?? r.period) === period) out[r.currency] = (out[r.currency] ?? 0n) + BigInt(l.amountMinor);
  }
  return out;
}

describe('prices as billed: a period is priced, and corrected, with its own version of the plan', () => {
  it("prices a late September correction at September's price after the price went up in October (10.00, not 20.00)", async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    await w.put('cus_t', { name: 'T', stripeCustomerId: 'cus_s1' });
    w.deps.ledger.set('cus_t', sep.key, { api_calls: '20000' });
    await w.run(sep); // 10,000 x 0.001
    const v2 = nextVersion(repo(), 'default', oct.key, (p) => (p.charges[0].tiers[1].unitPrice = '0.002'));
    deploy(w, v2, v2);
    w.deps.ledger.set('cus_t', sep.key, { api_calls: '30000' }); // 10,000 late September calls
    w.deps.ledger.set('cus_t', oct.key, { api_calls: '20000' }); // 10,000 x 0.002
    expect((await readUsage(w.deps, admin, 'cus_t', oct.key)).planVersion).toBe(2);
    expect((await previewInvoice(w.deps, admin, 'cus_t', oct.key)).planVersion).toBe(2);
    await w.run(oct);
    const r = w.records('cus_t');
    expect(r[sep.key]).toMatchObject({ planId: 'default', planVersion: 1, total: '10.00' });
    expect(r[oct.key]).toMatchObject({ planVersion: 2, total: '30.00', status: 'finalized' });
    expect(r[oct.key]!.lines.map((l) => [l.lineKey, l.amount])).toEqual([
      ['api_calls:tier:1', '20.00'],
      ['api_calls:correction:2026-09', '10.00'],
    ]);
  });

  it('keeps billing a period with the version it was priced with even if that version is edited in place (its invoice keeps a copy)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    await w.put('cus_t', { name: 'T', stripeCustomerId: 'cus_s1' });
    w.deps.ledger.set('cus_t', sep.key, { api_calls: '20000' });
    await w.run(sep);
    const edited = repo();
    edited.plans[0].charges[0].tiers[1].unitPrice = '0.002'; // what catalog:check refuses, deployed anyway
    deploy(w, edited);
    w.deps.ledger.set('cus_t', sep.key, { api_calls: '30000' });
    await w.run(oct);
    expect(w.records('cus_t')[oct.key]!.lines.map((l) => [l.lineKey, l.amount])).toEqual([['api_calls:correction:2026-09', '10.00']]);
  });

  it('corrects a euro period in euros at its own prices after the plan moved to yen (no total_mismatch)', async () => {
    const eu = repo();
    eu.plans.push({ ...JSON.parse(JSON.stringify(eu.plans[0])), id: 'eu', name: 'Europe', currency: 'eur' });
    const w = billingWorld(new CatalogIndex(parseCatalog(eu)), new Date(sep.start.getTime() + DAY));
    await w.put('cus_eu', { name: 'EU', planId: 'eu', stripeCustomerId: 'cus_s3' });
    w.deps.ledger.set('cus_eu', sep.key, { seats: '5' }); // 2 x 8.00 EUR
    await w.run(sep);
    const yen = nextVersion(eu, 'eu', oct.key, (p) => {
      p.currency = 'jpy';
      p.charges = p.charges.map((c: any) => ({ ...c, tiers: c.tiers.map((t: any) => ({ ...t, unitPrice: String(Math.round(Number(t.unitPrice) * 150)) })) }));
      p.charges[3].tiers[1].unitPrice = '1200';
    });
    deploy(w, yen, yen);
    w.deps.ledger.set('cus_eu', sep.key, { seats: '6' }); // a late seat: +8.00 EUR
    w.deps.ledger.set('cus_eu', oct.key, { seats: '4' }); // 1 x 1200 JPY
    await w.run(oct);
    const r = w.records('cus_eu');
    expect(r[oct.key]).toMatchObject({ currency: 'jpy', total: '1200', status: 'finalized', planVersion: 2 });
    expect(r[`${oct.key}#eur`]).toMatchObject({ currency: 'eur', total: '8.00', status: 'finalized' });
    expect([...w.stripe.invoices.values()].map((i) => [i.currency, i.total]).sort()).toEqual([
      ['eur', 1600],
      ['eur', 800],
      ['jpy', 1200],
    ]);
  });

  it('keeps invoicing customers that left a plan after the plan is removed from the catalog (no plan_not_found)', async () => {
    const withLegacy = repo();
    withLegacy.plans.push({ ...JSON.parse(JSON.stringify(withLegacy.plans[0])), id: 'legacy', name: 'Legacy', baseFee: '10.00' });
    const w = billingWorld(new CatalogIndex(parseCatalog(withLegacy)), new Date(sep.start.getTime() - 10 * DAY)); // created in August
    await w.put('cus_old', { name: 'Old', planId: 'legacy', stripeCustomerId: 'cus_s4' });
    await w.put('cus_gone', { name: 'Gone', planId: 'legacy', stripeCustomerId: 'cus_s5' });
    w.clock.at = new Date(sep.start.getTime() + 10 * DAY);
    await w.put('cus_old', { name: 'Old', planId: 'pro', stripeCustomerId: 'cus_s4' }); // from October
    await w.put('cus_gone', { name: 'Gone', planId: 'pro', stripeCustomerId: 'cus_s5' });
    w.deps.ledger.set('cus_old', sep.key, { api_calls: '20000' });
    await w.run(sep);
    const withoutLegacy = repo();
    deploy(w, withoutLegacy, withLegacy); // removed from the catalog, still published
    w.deps.ledger.set('cus_old', oct.key, { api_calls: '1000' });
    expect((await previewInvoice(w.deps, admin, 'cus_old', oct.key)).total).toBe('69.00'); // pro: 49.00 base + 20.00 seats
    expect((await readUsage(w.deps, admin, 'cus_old', sep.key)).planId).toBe('legacy');
    await w.run(oct);
    w.deps.ledger.set('cus_old', sep.key, { api_calls: '30000' }); // late September usage, priced on legacy
    deploy(w, withoutLegacy); // and even with nothing published: the September invoice keeps its version
    await w.run(nov);
    expect(w.records('cus_old')[oct.key]).toMatchObject({ status: 'finalized', total: '69.00' });
    expect(w.records('cus_old')[nov.key]).toMatchObject({ status: 'finalized', total: '79.00' }); // + 10.00 for September, on legacy
    expect(w.records('cus_gone')[nov.key]).toMatchObject({ status: 'finalized', total: '69.00' });
    expect(billedFor(w, 'cus_old', sep.key)).toEqual({ usd: 3000n }); // 10.00 base + 20.00 usage, on legacy
    expect([...w.deps.runs.members.get(nov.key)!.values()].map((m) => m.status)).toEqual(['done', 'done']);
  });
});

describe('customers: a field left out is kept, null removes it, PATCH changes only what it names', () => {
  it('keeps the Stripe link, alert e-mail and budget through a PUT that leaves them out; null removes each', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    await w.put('cus_f', { name: 'F', stripeCustomerId: 'cus_s1', alertEmail: 'ops@f.example', budget: { amount: '500.00', currency: 'usd' } });
    const kept = (await w.put('cus_f', { name: 'F renamed', planId: 'pro' })).customer;
    expect(kept).toMatchObject({
      name: 'F renamed',
      planId: 'pro',
      stripeCustomerId: 'cus_s1',
      alertEmail: 'ops@f.example',
      budget: { amount: '500.00', currency: 'usd' },
    });
    const removed = (await w.put('cus_f', { name: 'F', stripeCustomerId: null, alertEmail: null, budget: null })).customer;
    expect(removed).not.toHaveProperty('stripeCustomerId');
    expect(removed).not.toHaveProperty('alertEmail');
    expect(removed).not.toHaveProperty('budget');
    expect(removed.planId).toBe('pro');
  });

  it('PATCH changes only the fields given and never creates a customer', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    await w.put('cus_p', { name: 'P', stripeCustomerId: 'cus_s2', budget: { amount: '100.00' } });
    const patched = await patchCustomer(w.deps, admin, 'cus_p', { alertEmail: 'a@p.example' });
    expect(patched).toMatchObject({ name: 'P', stripeCustomerId: 'cus_s2', alertEmail: 'a@p.example', budget: { amount: '100.00', currency: 'usd' } });
    await expect(patchCustomer(w.deps, admin, 'cus_nobody', { name: 'X' })).rejects.toMatchObject({ code: 'customer_not_found' });
    expect(await w.deps.customers.get('cus_nobody')).toBeUndefined();
  });

  it('refuses to unlink or relink a customer whose invoices are on their way to Stripe, naming them', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    await w.put('cus_u', { name: 'U', stripeCustomerId: 'cus_s3' });
    w.deps.ledger.set('cus_u', sep.key, { api_calls: '20000' });
    w.clock.at = new Date(sep.end.getTime() + HOUR);
    await w.fanOut(sep); // September's job is queued, its invoice will be made for cus_s3
    const job = w.deps.invoiceJobs.jobs.shift()!;
    w.stripe.failNext = 1; // the draft fails: the record stays pending, on its way to Stripe
    await expect(import('../../lib/app/invoicing/job').then((m) => m.invoiceCustomer(w.deps, job as { customerId: string; period: string }))).rejects.toThrow();
    expect(w.records('cus_u')[sep.key]!.status).toBe('pending');
    await expect(patchCustomer(w.deps, admin, 'cus_u', { stripeCustomerId: null })).rejects.toMatchObject({
      code: 'invoices_in_flight',
      message: expect.stringContaining('2026-09'),
    });
    await expect(patchCustomer(w.deps, admin, 'cus_u', { stripeCustomerId: 'cus_other' })).rejects.toMatchObject({ code: 'invoices_in_flight' });
    w.deps.invoiceJobs.jobs.push(job); // SQS delivers it again: it finalizes
    await w.drain();
    expect(w.records('cus_u')[sep.key]!.status).toBe('finalized');
    await w.put('cus_u', { name: 'U', stripeCustomerId: 'cus_s3' }); // idempotent
    expect((await patchCustomer(w.deps, admin, 'cus_u', { stripeCustomerId: null })).stripeCustomerId).toBeUndefined();
  });

  it('lets a plan set by mistake at creation be corrected for the creation month (nothing was invoiced yet)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + 5 * DAY));
    await w.put('cus_m', { name: 'M', planId: 'pro', stripeCustomerId: 'cus_s4' });
    w.clock.at = new Date(sep.start.getTime() + 6 * DAY);
    const fixed = (await w.put('cus_m', { name: 'M', planId: 'default' })).customer;
    expect(fixed.plans).toEqual([{ from: sep.key, planId: 'default' }]);
    w.deps.ledger.set('cus_m', sep.key, { api_calls: '20000' });
    await w.run(sep);
    expect(w.records('cus_m')[sep.key]).toMatchObject({ planId: 'default', total: '10.00' });
    // After the creation month a change applies from the next period, as before.
    w.clock.at = new Date(oct.start.getTime() + DAY);
    expect((await w.put('cus_m', { name: 'M', planId: 'pro' })).customer.plans).toEqual([
      { from: sep.key, planId: 'default' },
      { from: nov.key, planId: 'pro' },
    ]);
  });
});

describe('no terminal dead ends: an invoice recorded for a customer without Stripe is sent once it is linked', () => {
  /** A pro customer with no Stripe customer: September (117.00) is recorded not_synced. */
  async function unlinked() {
    const w = billingWorld(catalog, new Date(sep.start.getTime() - 10 * DAY));
    await w.put('cus_n', { name: 'N', planId: 'pro' });
    w.deps.ledger.set('cus_n', sep.key, { api_calls: '60000', seats: '3' }); // 49.00 + 48.00 (60,000 x 0.0008, volume) + 20.00
    await w.run(sep);
    expect(w.records('cus_n')[sep.key]).toMatchObject({ status: 'not_synced', total: '117.00' });
    return w;
  }
  const stripeTotals = (w: ReturnType<typeof billingWorld>) => [...w.stripe.invoices.values()].map((i) => [i.metadata.invoice_key, i.total]).sort();

  it('sends September when its period is run again after the customer was linked', async () => {
    const w = await unlinked();
    await patchCustomer(w.deps, admin, 'cus_n', { stripeCustomerId: 'cus_s9' });
    await w.run(sep, new Date(oct.start.getTime() + 2 * DAY));
    expect(w.records('cus_n')[sep.key]).toMatchObject({ status: 'finalized', stripeCustomerId: 'cus_s9', total: '117.00' });
    expect(stripeTotals(w)).toEqual([['inv:cus_n:2026-09:invoice', 11700]]);
  });

  it("sends September before October's invoice corrects it: Stripe never gets a correction of a bill it never got", async () => {
    const w = await unlinked();
    await patchCustomer(w.deps, admin, 'cus_n', { stripeCustomerId: 'cus_s9' });
    w.deps.ledger.set('cus_n', sep.key, { api_calls: '70000', seats: '3' }); // late: +8.00
    await w.run(oct);
    expect(w.records('cus_n')[oct.key]!.lines.map((l) => [l.lineKey, l.amount])).toContainEqual(['api_calls:correction:2026-09', '8.00']);
    expect(stripeTotals(w)).toEqual([
      ['inv:cus_n:2026-09:invoice', 11700],
      ['inv:cus_n:2026-10:invoice', 7700],
    ]);
  });

  it('sends what is owed on demand (invoices sync), and says why when the customer has no Stripe customer', async () => {
    const w = await unlinked();
    await expect(syncCustomerInvoices(w.deps, admin, 'cus_n')).rejects.toMatchObject({ code: 'no_stripe_customer' });
    await patchCustomer(w.deps, admin, 'cus_n', { stripeCustomerId: 'cus_s9' });
    const out = await syncCustomerInvoices(w.deps, admin, 'cus_n');
    expect(out.invoices.map((i) => [i.key, i.status])).toEqual([[sep.key, 'finalized']]);
    expect(stripeTotals(w)).toEqual([['inv:cus_n:2026-09:invoice', 11700]]);
    // Again: nothing more to send, nothing sent twice.
    expect((await syncCustomerInvoices(w.deps, admin, 'cus_n')).invoices).toEqual([]);
    expect(w.stripe.invoices.size).toBe(1);
  });

  it('puts a carried credit used on an invoice recorded without Stripe into Stripe with that invoice', async () => {
    const gpus = repo();
    gpus.meters.push({ slug: 'gpus', displayName: 'GPUs', unit: 'gpus', eventType: 'gpus', aggregation: 'LATEST', valueProperty: '$.value' });
    gpus.plans.push({ id: 'gpu', name: 'GPU', currency: 'usd', charges: [{ meter: 'gpus', model: 'graduated', tiers: [{ upTo: null, unitPrice: '10.00' }] }] });
    const w = billingWorld(new CatalogIndex(parseCatalog(gpus)), new Date(sep.start.getTime() - 10 * DAY));
    await w.put('cus_g', { name: 'G', planId: 'gpu', stripeCustomerId: 'cus_sg' });
    w.deps.ledger.set('cus_g', sep.key, { gpus: '8' });
    await w.run(sep); // 80.00 in Stripe
    w.deps.ledger.set('cus_g', sep.key, { gpus: '2' }); // -60.00
    w.deps.ledger.set('cus_g', oct.key, { gpus: '1' }); // 10.00: October is -50.00, carried
    await w.run(oct);
    await patchCustomer(w.deps, admin, 'cus_g', { stripeCustomerId: null });
    w.deps.ledger.set('cus_g', nov.key, { gpus: '9' }); // 90.00 - 50.00
    await w.run(nov);
    expect(w.records('cus_g')[nov.key]).toMatchObject({ status: 'not_synced', total: '40.00' });
    await patchCustomer(w.deps, admin, 'cus_g', { stripeCustomerId: 'cus_sg' });
    await syncCustomerInvoices(w.deps, admin, 'cus_g');
    const nov_ = [...w.stripe.invoices.values()].find((i) => i.metadata.invoice_key === 'inv:cus_g:2026-11:invoice')!;
    expect(nov_.total).toBe(4000);
    expect(w.stripe.items.filter((i) => i.invoice === nov_.id).map((i) => [i.metadata.line_key, i.amount])).toEqual([
      ['gpus:tier:0', 9000],
      ['credit:2026-10', -5000],
    ]);
  });
});

describe('money with its currency: budgets and credits', () => {
  it("stores a budget with its currency: the current period's, or the plan asked for when the customer is new", async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    expect((await w.put('cus_jp', { name: 'JP', planId: 'jp', budget: { amount: '50000' } })).customer.budget).toEqual({ amount: '50000', currency: 'jpy' });
    expect((await w.put('cus_us', { name: 'US', budget: { amount: '500.00' } })).customer.budget).toEqual({ amount: '500.00', currency: 'usd' });
    await expect(w.put('cus_x', { name: 'X', budget: { amount: '500.00', currency: 'eur' } })).rejects.toMatchObject({
      code: 'invalid_budget',
      details: [expect.objectContaining({ field: 'budget.currency' })],
    });
  });

  it('refuses a malformed budget amount with an example that is itself accepted, in dollars and in yen', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY));
    for (const amount of ['500,00', '-5', '$500', 500]) {
      const parsed = customerInput.safeParse({ name: 'B', budget: { amount } });
      expect(parsed.success).toBe(false);
      const [issue] = parsed.error!.issues;
      expect(issue!.path).toEqual(['budget', 'amount']);
      const example = /e\.g\. "([^"]+)"/.exec(issue!.message)?.[1];
      expect({ amount, example }).toEqual({ amount, example: expect.any(String) });
      for (const planId of ['default', 'jp']) {
        const input = customerInput.parse({ name: 'B', planId, budget: { amount: example } });
        await expect(w.put(`cus_${planId}`, input)).resolves.toMatchObject({ customer: { budget: { amount: example } } });
      }
    }
  });

  it('refuses a move to a plan in another currency while a budget is set, unless the request sets a new budget (409 naming it)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() - 10 * DAY)); // created in August
    await w.put('cus_b', { name: 'B', budget: { amount: '500.00' } });
    w.clock.at = new Date(sep.start.getTime() + DAY);
    await expect(w.put('cus_b', { name: 'B', planId: 'jp' })).rejects.toMatchObject({
      code: 'budget_currency_mismatch',
      details: [expect.objectContaining({ field: 'budget' })],
    });
    // 99.50 dollars is a valid budget while the customer is still on dollars, whatever is scheduled.
    await w.put('cus_b', { name: 'B', planId: 'jp', budget: { amount: '99.50', currency: 'usd' } });
    expect((await w.deps.customers.get('cus_b'))!.budget).toEqual({ amount: '99.50', currency: 'usd' });
  });

  it('never reads a dollar budget as yen: a yen period has no budget use and sends no budget alert', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() - 10 * DAY)); // created in August
    await w.put('cus_fx', { name: 'FX', budget: { amount: '500.00' } });
    w.clock.at = new Date(sep.start.getTime() + DAY);
    await w.put('cus_fx', { name: 'FX', planId: 'jp', budget: { amount: '500.00', currency: 'usd' } }); // from October
    w.clock.at = new Date(oct.start.getTime() + 10 * DAY);
    w.deps.ledger.set('cus_fx', oct.key, { seats: '10' }); // 7 x 1200 = 8400 yen
    const usage = await readUsage(w.deps, admin, 'cus_fx', oct.key);
    expect(usage.currency).toBe('jpy');
    expect(usage.budget).toEqual({ amount: '500.00', currency: 'usd', percentUsed: null, projectedPercent: null });
  });
});

describe('a credit in a currency the customer left is owed, visible and settled, never stranded', () => {
  /** A GPU customer on dollars whose October is -50.00 (carried), then moved to a yen plan from November. */
  async function stranded() {
    const json = repo();
    json.meters.push({ slug: 'gpus', displayName: 'GPUs', unit: 'gpus', eventType: 'gpus', aggregation: 'LATEST', valueProperty: '$.value' });
    json.plans.push({ id: 'gpu', name: 'GPU', currency: 'usd', charges: [{ meter: 'gpus', model: 'graduated', tiers: [{ upTo: null, unitPrice: '10.00' }] }] });
    json.plans.push({
      id: 'gpu_jp',
      name: 'GPU JP',
      currency: 'jpy',
      charges: [{ meter: 'gpus', model: 'graduated', tiers: [{ upTo: null, unitPrice: '1500' }] }],
    });
    const w = billingWorld(new CatalogIndex(parseCatalog(json)), new Date(sep.start.getTime() - 10 * DAY));
    await w.put('cus_c', { name: 'C', planId: 'gpu', stripeCustomerId: 'cus_sc' });
    w.deps.ledger.set('cus_c', sep.key, { gpus: '8' });
    await w.run(sep); // 80.00
    w.clock.at = new Date(oct.start.getTime() + 5 * DAY);
    await w.put('cus_c', { name: 'C', planId: 'gpu_jp' }); // from November
    w.deps.ledger.set('cus_c', sep.key, { gpus: '2' }); // -60.00
    w.deps.ledger.set('cus_c', oct.key, { gpus: '1' }); // 10.00
    await w.run(oct); // -50.00 USD, carried
    w.deps.ledger.set('cus_c', nov.key, { gpus: '1' }); // 1500 yen
    await w.run(nov);
    return w;
  }

  it('lists a dollar credit of a customer now billed in yen as owed, with nowhere to apply it', async () => {
    const w = await stranded();
    expect(w.records('cus_c')[oct.key]).toMatchObject({ status: 'credit_carried', total: '-50.00' });
    expect(w.records('cus_c')[nov.key]!.lines.some((l) => l.kind === 'credit')).toBe(false);
    const credits = await listCredits(w.deps, admin, 'cus_c');
    expect(credits.credits).toEqual([
      expect.objectContaining({ key: oct.key, period: oct.key, currency: 'usd', amount: '50.00', status: 'open', usableOnNextInvoice: false }),
    ]);
    expect(credits.owed).toEqual([{ currency: 'usd', amount: '50.00' }]);
  });

  it('applies it to a correction invoice in its currency when one comes', async () => {
    const w = await stranded();
    w.deps.ledger.set('cus_c', oct.key, { gpus: '9' }); // October late: +80.00 USD, corrected on a dollar invoice of its own
    await w.run(dec);
    expect(w.records('cus_c')[`${dec.key}#usd`]!.lines.map((l) => [l.lineKey, l.amount])).toEqual([
      ['gpus:correction:2026-10', '80.00'],
      ['credit:2026-10', '-50.00'],
    ]);
    expect((await listCredits(w.deps, admin, 'cus_c')).credits[0]).toMatchObject({ status: 'applied', appliedTo: `${dec.key}#usd` });
  });

  it('is settled by an operator, refund or write-off, recorded once; a settled credit is never applied', async () => {
    const w = await stranded();
    await expect(settleCredit(w.deps, admin, 'cus_c', oct.key, { as: 'refund', reason: 'refunded by card' })).rejects.toMatchObject({
      code: 'invalid_input',
      details: [expect.objectContaining({ field: 'reference' })],
    });
    const settled = await settleCredit(w.deps, admin, 'cus_c', oct.key, { as: 'refund', reason: 'refunded by card', reference: 're_3Q' });
    expect(settled).toMatchObject({ status: 'refunded', settledBy: 'test', reference: 're_3Q', reason: 'refunded by card' });
    await expect(settleCredit(w.deps, admin, 'cus_c', oct.key, { as: 'write_off', reason: 'again' })).rejects.toMatchObject({ code: 'credit_not_open' });
    await expect(settleCredit(w.deps, admin, 'cus_c', sep.key, { as: 'write_off', reason: 'x' })).rejects.toMatchObject({ code: 'credit_not_found' });
    w.deps.ledger.set('cus_c', oct.key, { gpus: '9' });
    await w.run(dec);
    expect(w.records('cus_c')[`${dec.key}#usd`]!.lines.map((l) => l.lineKey)).toEqual(['gpus:correction:2026-10']);
    expect((await listCredits(w.deps, admin, 'cus_c')).owed).toEqual([]);
  });
});

describe('an invoiced period shows what was invoiced, and the correction pending since, once', () => {
  async function lateSeptember() {
    const w = billingWorld(catalog, new Date(sep.start.getTime() - 10 * DAY));
    await w.put('cus_v', { name: 'V', stripeCustomerId: 'cus_sv' });
    w.deps.ledger.set('cus_v', sep.key, { api_calls: '20000' });
    await w.run(sep); // 10.00
    w.clock.at = new Date(oct.start.getTime() + 5 * DAY);
    w.deps.ledger.set('cus_v', sep.key, { api_calls: '30000' }); // 10.00 more, late
    return w;
  }

  it('previews an invoiced period as its stored invoice, with the correction the next invoice will carry (not a new 20.00 invoice)', async () => {
    const w = await lateSeptember();
    const september = await previewInvoice(w.deps, admin, 'cus_v', sep.key);
    expect(september).toMatchObject({ status: 'finalized', invoiced: true, total: '10.00', planVersion: 1 });
    expect(september.lines.map((l) => l.amount)).toEqual(['10.00']);
    expect(september.pendingCorrection).toMatchObject({ total: '10.00', currency: 'usd', carriedBy: oct.key });
    expect(september.pendingCorrection!.lines.map((l) => [l.lineKey, l.amount])).toEqual([['api_calls:correction:2026-09', '10.00']]);
    const october = await previewInvoice(w.deps, admin, 'cus_v', oct.key);
    expect(october).toMatchObject({ status: 'upcoming', invoiced: false, total: '10.00', pendingCorrection: null });
    expect(october.lines.map((l) => [l.lineKey, l.period])).toEqual([['api_calls:correction:2026-09', sep.key]]);
    await w.run(oct);
    expect((await previewInvoice(w.deps, admin, 'cus_v', sep.key)).pendingCorrection).toBeNull();
  });

  it('shows the usage of a closed, invoiced period as invoiced plus pending, never a subtotal that disagrees with the invoice', async () => {
    const w = await lateSeptember();
    const usage = await readUsage(w.deps, admin, 'cus_v', sep.key);
    expect(usage).toMatchObject({ closed: true, subtotal: '20.00' });
    expect(usage.invoice).toMatchObject({ key: sep.key, status: 'finalized', total: '10.00', billed: '10.00' });
    expect(usage.pendingCorrection).toMatchObject({ total: '10.00', carriedBy: oct.key });
    await w.run(oct);
    const after = await readUsage(w.deps, admin, 'cus_v', sep.key);
    expect(after.invoice).toMatchObject({ total: '10.00', billed: '20.00' }); // its own 10.00 and the 10.00 October carried
    expect(after.pendingCorrection).toBeNull();
    // The current period is as before: no invoice yet, nothing pending.
    expect(await readUsage(w.deps, admin, 'cus_v', undefined)).toMatchObject({ closed: false, invoice: null, pendingCorrection: null });
  });

  it('counts the corrections a run carried in its summary', async () => {
    const w = await lateSeptember();
    await w.run(oct);
    expect(runView((await w.deps.runs.get(oct.key))!)).toMatchObject({ status: 'completed', corrections: 1 });
  });
});

describe('what Stripe cannot take, settled', () => {
  it('blocks an invoice whose total Stripe cannot charge in one payment, even when every line fits (2,997,563.75 USD)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() - 10 * DAY));
    await w.put('cus_huge', { name: 'Huge', stripeCustomerId: 'cus_sh' });
    // Each line under 999,999.99 (eight digits of cents); together almost three million.
    w.deps.ledger.set('cus_huge', sep.key, { api_calls: '4996000000', storage_gb: '6660100', compute_seconds: '199803600' });
    await w.run(sep);
    const r = w.records('cus_huge')[sep.key]!;
    expect(r.lines.every((l) => BigInt(l.amountMinor) <= 99_999_999n)).toBe(true);
    expect(r).toMatchObject({ total: '2997563.75', status: 'blocked', lastError: expect.stringMatching(/^amount_too_large: .*total/) });
    expect(w.stripe.invoices.size).toBe(0); // refused before the draft
    expect([...w.deps.runs.members.get(sep.key)!.values()].map((m) => m.status)).toEqual(['failed']);
  });
});

describe('settings that cannot contradict each other', () => {
  it('corrects every period an event can still land in: the lookback follows the late-event window', () => {
    // The shortest k months after a period's end (February first) must outlast the window.
    expect(correctionLookback(35 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(58 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(59 * DAY, 0)).toBe(3);
    expect(correctionLookback(59 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(90 * DAY, HOUR)).toBe(4);
    expect(correctionLookback(365 * DAY, HOUR)).toBe(12);
  });

  it('with a 90-day window, a late September event that arrives in December is corrected (it was never billed)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY), { correctionWindowMs: 90 * DAY });
    await w.put('cus_late', { name: 'Late', stripeCustomerId: 'cus_s1' });
    w.deps.ledger.set('cus_late', sep.key, { api_calls: '20000' }); // 10.00
    await w.run(sep);
    await w.run(oct);
    await w.run(nov);
    w.deps.ledger.set('cus_late', sep.key, { api_calls: '100000' }); // 85 days late: +80.00 (to 90.00)
    expect((await readUsage(w.deps, admin, 'cus_late', sep.key)).subtotal).toBe('90.00');
    await w.run(dec);
    await w.run(jan);
    const billed = w.deps.invoices
      .all()
      .flatMap((r) => r.lines.filter((l) => (l.period ?? r.period) === sep.key))
      .reduce((s, l) => s + BigInt(l.amountMinor), 0n);
    expect(billed).toBe(9000n);
  });

  it('the schedule invoices the month that ended before it fired, whatever the grace, and never resumes a finished run', async () => {
    const w = billingWorld(catalog, new Date(oct.start.getTime() + DAY), { graceMs: 120 * 60_000 });
    await w.put('cus_s', { name: 'S', stripeCustomerId: 'cus_s2' });
    w.deps.ledger.set('cus_s', oct.key, { api_calls: '20000' });
    // 01:00 on the 1st: October ends plus 120 minutes of grace have not passed yet.
    expect(await scheduledInvoiceRun(w.deps, new Date(oct.end.getTime() + HOUR))).toMatchObject({ started: false, period: oct.key });
    expect(w.deps.runs.runs.has(sep.key)).toBe(false); // not the month before last
    expect(w.deps.runs.runs.has(oct.key)).toBe(false);
    w.clock.at = new Date(oct.end.getTime() + 2 * HOUR + 60_000);
    expect(await scheduledInvoiceRun(w.deps, w.clock.now())).toMatchObject({ started: true, period: oct.key });
    await w.drain();
    expect(w.records('cus_s')[oct.key]).toMatchObject({ status: 'finalized', total: '10.00' });
    const startedAt = w.deps.runs.runs.get(oct.key)!.startedAt;
    // The schedule fires again (hourly in the first days): the finished run is left alone.
    w.clock.at = new Date(oct.end.getTime() + 3 * HOUR);
    expect(await scheduledInvoiceRun(w.deps, w.clock.now())).toMatchObject({ started: false, period: oct.key, reason: expect.stringContaining('exists') });
    expect(w.deps.invoiceJobs.jobs).toEqual([]);
    expect(w.deps.runs.runs.get(oct.key)).toMatchObject({ startedAt, fannedOut: true });
  });

  it('refuses to start with settings that cannot work, naming both', () => {
    expect(settingsProblems({ INVOICE_GRACE_MINUTES: 60, DEDUPE_WINDOW_DAYS: 35 })).toEqual([]);
    const [problem] = settingsProblems({ INVOICE_GRACE_MINUTES: 36 * 24 * 60, DEDUPE_WINDOW_DAYS: 35 });
    expect(problem).toContain('INVOICE_GRACE_MINUTES');
    expect(problem).toContain('DEDUPE_WINDOW_DAYS');
    const [tooLong] = settingsProblems({ INVOICE_GRACE_MINUTES: 60, DEDUPE_WINDOW_DAYS: 400 });
    expect(tooLong).toContain('DEDUPE_WINDOW_DAYS');
  });
});
