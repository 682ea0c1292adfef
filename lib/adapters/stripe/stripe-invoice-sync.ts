import { createHash } from 'node:crypto';
import { BillingProviderError, type BillingProvider, type InvoiceSync, type ProviderLine, type SyncInvoice } from '../../app/invoicing/billing-provider';
import { checkStripeLimits } from './stripe-limits';

/**
 * The invoice sync on Stripe: how an invoice record becomes a Stripe invoice.
 *
 * - Three requests per invoice, on three endpoints: the draft, ONE add_lines with every line (Stripe
 *   limits each endpoint to 25 requests/s, so one request per line would cap a run at 25 lines/s),
 *   the finalize.
 * - Every object is named by the customer and the record key: the draft carries
 *   `metadata.invoice_key` and the idempotency key `inv:<customer>:<key>:invoice`, each line
 *   `metadata.line_key`, the finalize `...:finalize`. The add_lines key names the set of lines it
 *   sends, `inv:<customer>:<key>:lines:<digest of their line keys>`: a retry of the same lines
 *   replays, and a request for another set (a resumed attempt that found some lines there) never
 *   reuses a key with other parameters, which Stripe refuses. After Stripe's 24 h key expiry the
 *   `resumed` lookups (draft by invoice_key, lines by line_key) find what an earlier attempt made.
 * - Before the first call: Stripe's limits (stripe-limits.ts: what Stripe could never take fails
 *   with a non-retryable `amount_too_large` or `too_many_lines`, so the job records it `blocked`),
 *   and a negative invoice is never sent (the job carries it as a credit).
 */
export class StripeInvoiceSync implements InvoiceSync {
  constructor(private readonly stripe: BillingProvider) {}

  private key(invoice: SyncInvoice, part: string): string {
    return `inv:${invoice.customerId}:${invoice.key}:${part}`;
  }

  async openDraft(invoice: SyncInvoice, resumed: boolean): Promise<{ invoiceId: string }> {
    checkSendable(invoice);
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

  /**
   * One add_lines request: an invoice has at most STRIPE_MAX_INVOICE_LINES lines (stripe-limits.ts)
   * and Stripe documents no smaller limit per request, so one request always takes them all. A
   * record resumed at `draft_created` starts here, not at openDraft: the same check comes first.
   */
  async addLines(invoice: SyncInvoice, invoiceId: string, resumed: boolean): Promise<void> {
    checkSendable(invoice);
    let lines = invoice.lines;
    if (resumed) {
      // add_lines is all or nothing, so a crashed attempt left either all of its lines or none;
      // a draft filled one item per line (before add_lines) may hold some.
      const present = new Set((await this.stripe.listInvoiceLines(invoiceId)).map((l) => l.metadata.line_key));
      lines = lines.filter((l) => !present.has(l.lineKey));
      if (lines.length === 0) return;
    }
    const digest = createHash('sha256')
      .update(lines.map((l) => l.lineKey).join('\n'))
      .digest('base64url')
      .slice(0, 22);
    await this.stripe.addInvoiceLines({ invoiceId, lines: lines.map((l) => this.line(invoice, l)), idempotencyKey: this.key(invoice, `lines:${digest}`) });
  }

  private line(invoice: SyncInvoice, line: SyncInvoice['lines'][number]): ProviderLine {
    return {
      // Exact: checkSendable let through eight digits at most.
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
    };
  }

  async finalize(invoice: SyncInvoice, invoiceId: string) {
    const finalized = await this.stripe.finalizeInvoice(invoiceId, this.key(invoice, 'finalize'));
    return { ...finalized, totalMinor: String(finalized.totalMinor) };
  }
}

/** What is sent is what Stripe can take (its limits) and what the product sends (never a negative invoice). */
function checkSendable(invoice: SyncInvoice): void {
  checkStripeLimits(invoice);
  if (BigInt(invoice.totalMinor) < 0n) {
    throw new BillingProviderError(
      `the ${invoice.key} invoice of ${invoice.customerId} totals ${invoice.totalMinor}: a negative invoice is carried as a credit, never sent`,
      false,
      'negative_total',
    );
  }
}
