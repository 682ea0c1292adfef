import { BillingProviderError, type BillingProvider, type InvoiceSync, type SyncInvoice } from '../../app/invoicing/stripe-port';

/**
 * The invoice sync on Stripe: how an invoice record becomes a Stripe invoice.
 *
 * - Every object is named by the customer and the record key: the draft carries
 *   `metadata.invoice_key` and the idempotency key `inv:<customer>:<key>:invoice`, each line
 *   `metadata.line_key` and `inv:<customer>:<key>:<lineKey>`, the finalize `...:finalize`. A retry
 *   sends the same keys, so Stripe replays instead of creating; after Stripe's 24 h key expiry the
 *   `resumed` lookups (draft by invoice_key, lines by line_key) find what an earlier attempt made.
 * - Stripe's limits are checked before the first call: an invoice item's amount has at most 8
 *   digits (99,999,999 minor units), and a negative invoice is never sent (the job carries it as a
 *   credit). What Stripe could never take fails with a non-retryable `amount_too_large`.
 */
export const MAX_ITEM_AMOUNT_MINOR = 99_999_999n;

export class StripeInvoiceSync implements InvoiceSync {
  constructor(private readonly stripe: BillingProvider) {}

  private key(invoice: SyncInvoice, part: string): string {
    return `inv:${invoice.customerId}:${invoice.key}:${part}`;
  }

  async openDraft(invoice: SyncInvoice, resumed: boolean): Promise<{ invoiceId: string }> {
    checkLimits(invoice);
    const invoiceKey = this.key(invoice, 'invoice');
    if (resumed) {
      const found = await this.stripe.findInvoice(invoice.stripeCustomerId, invoiceKey);
      if (found) return { invoiceId: found.id };
    }
    const draft = await this.stripe.createDraftInvoice({
      stripeCustomerId: invoice.stripeCustomerId,
      currency: invoice.currency,
      description:
        invoice.key === invoice.period ? `Usage for ${invoice.period}` : `Corrections in ${invoice.currency.toUpperCase()}, invoiced with ${invoice.period}`,
      metadata: { invoice_key: invoiceKey, customer_id: invoice.customerId, period: invoice.period },
      idempotencyKey: invoiceKey,
    });
    return { invoiceId: draft.id };
  }

  async addLines(invoice: SyncInvoice, invoiceId: string, resumed: boolean): Promise<void> {
    const existing = resumed ? new Set((await this.stripe.listInvoiceItems(invoiceId)).map((i) => i.metadata.line_key ?? '')) : new Set<string>();
    for (const line of invoice.lines) {
      if (existing.has(line.lineKey)) continue;
      await this.stripe.addInvoiceItem({
        stripeCustomerId: invoice.stripeCustomerId,
        invoiceId,
        currency: invoice.currency,
        amountMinor: Number(line.amountMinor),
        description: line.description,
        metadata: {
          customer_id: invoice.customerId,
          period: line.period ?? invoice.period,
          line_key: line.lineKey,
          meter: line.meter ?? '',
          tier: line.tier === undefined ? '' : String(line.tier),
          kind: line.kind,
        },
        idempotencyKey: this.key(invoice, line.lineKey),
      });
    }
  }

  async finalize(invoice: SyncInvoice, invoiceId: string) {
    const finalized = await this.stripe.finalizeInvoice(invoiceId, this.key(invoice, 'finalize'));
    return { ...finalized, totalMinor: String(finalized.totalMinor) };
  }
}

function checkLimits(invoice: SyncInvoice): void {
  const tooLarge = invoice.lines.find((l) => abs(BigInt(l.amountMinor)) > MAX_ITEM_AMOUNT_MINOR);
  if (tooLarge) {
    throw new BillingProviderError(
      `line ${tooLarge.lineKey} of ${invoice.customerId}'s ${invoice.key} invoice is ${tooLarge.amountMinor} ${invoice.currency} minor units; Stripe takes at most ${MAX_ITEM_AMOUNT_MINOR} per item`,
      false,
      'amount_too_large',
    );
  }
  if (BigInt(invoice.totalMinor) < 0n) {
    throw new BillingProviderError(
      `the ${invoice.key} invoice of ${invoice.customerId} totals ${invoice.totalMinor}: a negative invoice is carried as a credit, never sent`,
      false,
      'negative_total',
    );
  }
}

const abs = (n: bigint) => (n < 0n ? -n : n);
