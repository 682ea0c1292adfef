/**
 * StripeInvoiceSync (lib/adapters/stripe/stripe-invoice-sync.ts) on the Stripe fake through the
 * real SDK: one add_lines request per invoice, what a resumed attempt sends, and Stripe's limits
 * (stripe-limits.ts) checked before the draft.
 */
import { createStripeClient, StripeBillingProvider, type StripeAdapterConfig } from '../../lib/adapters/stripe';
import { STRIPE_MAX_AMOUNT_MINOR, STRIPE_MAX_INVOICE_LINES } from '../../lib/adapters/stripe/stripe-limits';
import { StripeInvoiceSync } from '../../lib/adapters/stripe/stripe-invoice-sync';
import { BillingProviderError, type SyncInvoice } from '../../lib/app/invoicing/billing-provider';
import type { StripeFake } from '../../local/stripe-fake/server';
import { useStripeFake } from '../support/stripe-fake';

let fake: StripeFake;

useStripeFake((f) => (fake = f));

const config = (): StripeAdapterConfig => ({
  secretKey: 'sk_test_sync',
  host: '127.0.0.1',
  port: fake.port,
  protocol: 'http',
  timeoutMs: 2000,
  maxRps: 1000,
  maxEndpointRps: 1000,
  maxAttempts: 3,
});

function billing(): StripeBillingProvider {
  return new StripeBillingProvider(createStripeClient(config()));
}

/** An invoice of `lineCount` lines of 1.00, 2.00, ... (or of the amounts given) for a new Stripe customer. */
async function invoiceOf(lineCount: number, amounts?: bigint[]): Promise<SyncInvoice> {
  const stripeCustomerId = (await createStripeClient(config()).customers.create({ name: 'c' })).id;
  const lines = Array.from({ length: amounts?.length ?? lineCount }, (_, i) => ({
    lineKey: `api_calls:tier:${i}`,
    kind: 'usage',
    meter: 'api_calls',
    tier: i,
    description: `tier ${i}`,
    amountMinor: String(amounts?.[i] ?? 100 * (i + 1)),
  }));
  const total = lines.reduce((s, l) => s + BigInt(l.amountMinor), 0n);
  return { customerId: 'cus_42', key: '2026-10', period: '2026-10', currency: 'usd', stripeCustomerId, lines, totalMinor: String(total) };
}

const posts = (path: RegExp) => fake.requests.filter((r) => r.method === 'POST' && path.test(r.path));
const ADD_LINES = /^\/v1\/invoices\/[^/]+\/add_lines$/;
const lineKeysOn = (invoiceId: string) =>
  fake
    .invoiceItems()
    .filter((i) => i.invoice === invoiceId)
    .map((i) => i.metadata.line_key)
    .sort();

describe('StripeInvoiceSync', () => {
  it('puts all lines of an invoice on its draft with one add_lines request: three requests on three endpoints per invoice', async () => {
    const sync = new StripeInvoiceSync(billing());
    const invoice = await invoiceOf(5);
    const before = fake.stats().requests;

    const { invoiceId } = await sync.openDraft(invoice, false);
    await sync.addLines(invoice, invoiceId, false);
    const finalized = await sync.finalize(invoice, invoiceId);

    expect(finalized).toMatchObject({ id: invoiceId, status: 'open', totalMinor: invoice.totalMinor });
    expect(fake.stats().requests - before).toBe(3);
    expect(Object.keys(fake.stats().endpoints).filter((e) => e.startsWith('POST /v1/invoice'))).toEqual([
      'POST /v1/invoices',
      'POST /v1/invoices/:id/add_lines',
      'POST /v1/invoices/:id/finalize',
    ]);
    expect(lineKeysOn(invoiceId)).toEqual(invoice.lines.map((l) => l.lineKey).sort());
    const [add] = posts(ADD_LINES);
    expect(add!.idempotencyKey).toMatch(/^inv:cus_42:2026-10:lines:/);
    expect(fake.invoiceItems().find((i) => i.metadata.line_key === 'api_calls:tier:2')!.metadata).toMatchObject({
      customer_id: 'cus_42',
      period: '2026-10',
      meter: 'api_calls',
      tier: '2',
      kind: 'usage',
    });
  });

  it('resumed after an attempt whose add_lines committed (answer lost), lists the lines and adds nothing', async () => {
    const sync = new StripeInvoiceSync(billing());
    const invoice = await invoiceOf(3);
    const { invoiceId } = await sync.openDraft(invoice, false);
    await sync.addLines(invoice, invoiceId, false); // committed; the worker died before recording it

    await sync.addLines(invoice, invoiceId, true);

    expect(posts(ADD_LINES)).toHaveLength(1);
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/lines'))).toHaveLength(1);
    expect(lineKeysOn(invoiceId)).toEqual(invoice.lines.map((l) => l.lineKey).sort());
  });

  it('resumed with no line there, sends them all under the key of a fresh attempt (Stripe replays it if it ran)', async () => {
    const sync = new StripeInvoiceSync(billing());
    const invoice = await invoiceOf(2);
    const { invoiceId } = await sync.openDraft(invoice, false);
    fake.injectFailure({ method: 'POST', path: ADD_LINES, mode: '500', times: 3 });
    await expect(sync.addLines(invoice, invoiceId, false)).rejects.toMatchObject({ retryable: true });

    await sync.addLines(invoice, invoiceId, true);

    const keys = posts(ADD_LINES).map((r) => r.idempotencyKey);
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(lineKeysOn(invoiceId)).toEqual(invoice.lines.map((l) => l.lineKey).sort());
  });

  it('resumed with some lines already there (a draft filled one item at a time), adds only the others, under a key of their own', async () => {
    const provider = billing();
    const sync = new StripeInvoiceSync(provider);
    const invoice = await invoiceOf(4);
    const { invoiceId } = await sync.openDraft(invoice, false);
    const fresh = { ...invoice, lines: invoice.lines.slice(0, 1) };
    await sync.addLines(fresh, invoiceId, false); // the first line only, as an older attempt left it

    await sync.addLines(invoice, invoiceId, true);

    const [first, rest] = posts(ADD_LINES);
    expect(Object.values(rest!.params.lines as object).map((l) => l.metadata.line_key)).toEqual(['api_calls:tier:1', 'api_calls:tier:2', 'api_calls:tier:3']);
    expect(rest!.idempotencyKey).not.toBe(first!.idempotencyKey);
    expect(lineKeysOn(invoiceId)).toEqual(invoice.lines.map((l) => l.lineKey).sort());
    expect((await sync.finalize(invoice, invoiceId)).totalMinor).toBe(invoice.totalMinor);
  });

  it(`refuses an invoice of more than ${STRIPE_MAX_INVOICE_LINES} lines before the draft: not retryable, nothing sent`, async () => {
    const sync = new StripeInvoiceSync(billing());
    const invoice = await invoiceOf(STRIPE_MAX_INVOICE_LINES + 1);
    const before = fake.requests.length;

    const err = await sync.openDraft(invoice, false).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(BillingProviderError);
    expect(err).toMatchObject({ retryable: false, code: 'too_many_lines', message: expect.stringContaining('251 lines') });
    expect(fake.requests.length).toBe(before);
    // The largest invoice Stripe takes still goes through in one request.
    const largest = await invoiceOf(STRIPE_MAX_INVOICE_LINES);
    const { invoiceId } = await sync.openDraft(largest, false);
    await sync.addLines(largest, invoiceId, false);
    expect(posts(ADD_LINES)).toHaveLength(1);
    expect(lineKeysOn(invoiceId)).toHaveLength(STRIPE_MAX_INVOICE_LINES);
  });

  it('refuses a line or a total of more than eight digits before the draft, a credit line too; takes eight digits', async () => {
    const sync = new StripeInvoiceSync(billing());
    const max = STRIPE_MAX_AMOUNT_MINOR;
    const refused = [
      { amounts: [max + 1n], what: /line api_calls:tier:0 .* 100000000 usd/ },
      { amounts: [-(max + 1n), max + 1n, 500n], what: /line api_calls:tier:0 .* -100000000 usd/ },
      { amounts: [50_000_000n, 50_000_000n], what: /totals 100000000 usd .* one payment/ },
    ];
    for (const { amounts, what } of refused) {
      const invoice = await invoiceOf(0, amounts);
      const before = fake.requests.length;

      const err = await sync.openDraft(invoice, false).catch((e: unknown) => e);

      expect(err).toBeInstanceOf(BillingProviderError);
      expect(err).toMatchObject({ retryable: false, code: 'amount_too_large', message: expect.stringMatching(what) });
      expect(fake.requests.length).toBe(before);
      await expect(sync.addLines(invoice, 'in_any', true)).rejects.toMatchObject({ code: 'amount_too_large' });
      expect(fake.requests.length).toBe(before);
    }

    const largest = await invoiceOf(0, [max, -max, max]);
    const { invoiceId } = await sync.openDraft(largest, false);
    await sync.addLines(largest, invoiceId, false);
    expect((await sync.finalize(largest, invoiceId)).totalMinor).toBe(String(max));
  });
});
