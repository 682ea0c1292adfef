import { BillingProviderError, type SyncInvoice } from '../../app/invoicing/billing-provider';

/**
 * Stripe's limits, the one place that knows them. Nothing else in lib/ needs them: the domain keeps
 * exact integer strings of any size, and an invoice Stripe could never take is refused here, by the
 * adapter, before its first call (the job then records it `blocked`, docs/invoicing.md rule 11).
 */

/**
 * An amount holds at most eight digits of minor units ("a value of 99999999 for a USD charge of
 * $999,999.99", docs.stripe.com/currencies), for an invoice item as for a payment, so for an
 * invoice's total too. A bigint, as the amounts it is compared with are exact integer strings.
 */
export const STRIPE_MAX_AMOUNT_MINOR = 99_999_999n;

/** Items on one invoice; Stripe refuses the 251st (API change of 2016-02-22). */
export const STRIPE_MAX_INVOICE_LINES = 250;

/** Characters of an idempotency key. */
export const STRIPE_MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Requests per second per account (`global`: live mode; `sandbox`: test mode) and per endpoint (each
 * named operation, method and route, counts on its own as well as towards the global limit).
 * docs.stripe.com/rate-limits. Pacing settings are chosen under these (docs/invoicing.md "Pacing").
 */
export const STRIPE_RATE_LIMITS = { live: 100, sandbox: 25, perEndpoint: 25 } as const;

/**
 * Refuses, with a non-retryable BillingProviderError, an invoice Stripe could never take: more lines
 * than an invoice holds (`too_many_lines`), a line or a total of more than eight digits
 * (`amount_too_large`). Checked before the draft, so nothing of such an invoice reaches Stripe.
 */
export function checkStripeLimits(invoice: SyncInvoice): void {
  const whose = `${invoice.customerId}'s ${invoice.key} invoice`;
  if (invoice.lines.length > STRIPE_MAX_INVOICE_LINES) {
    throw new BillingProviderError(
      `${whose} has ${invoice.lines.length} lines; Stripe takes at most ${STRIPE_MAX_INVOICE_LINES} items per invoice`,
      false,
      'too_many_lines',
    );
  }
  const tooLarge = invoice.lines.find((l) => abs(BigInt(l.amountMinor)) > STRIPE_MAX_AMOUNT_MINOR);
  if (tooLarge) {
    throw new BillingProviderError(
      `line ${tooLarge.lineKey} of ${whose} is ${tooLarge.amountMinor} ${invoice.currency} minor units; Stripe takes at most ${STRIPE_MAX_AMOUNT_MINOR} per item`,
      false,
      'amount_too_large',
    );
  }
  // The total is charged in one payment, and a payment has the same eight digits as an item.
  if (BigInt(invoice.totalMinor) > STRIPE_MAX_AMOUNT_MINOR) {
    throw new BillingProviderError(
      `${whose} totals ${invoice.totalMinor} ${invoice.currency} minor units; Stripe charges at most ${STRIPE_MAX_AMOUNT_MINOR} in one payment`,
      false,
      'amount_too_large',
    );
  }
}

const abs = (n: bigint) => (n < 0n ? -n : n);
