import { StripeInvoiceSync, stripeBillingFromEnv } from '../../adapters/stripe';
import type { BillingProvider, InvoiceSync } from '../../app/invoicing/billing-provider';
import { MetricUnit, metrics } from '../observability';

let sync: InvoiceSync | undefined;
let provider: BillingProvider | undefined;

/**
 * Stripe, only where it is used: the invoice worker is the one function importing this module, so
 * the Stripe SDK is in its bundle alone, and other functions need no Stripe key.
 */
export function invoiceSync(): InvoiceSync {
  return (sync ??= new StripeInvoiceSync(billingProvider()));
}

/** The Stripe account's operations, one paced client per process (the CLI checks customers with it). */
export function billingProvider(): BillingProvider {
  // Every HTTP request to Stripe, and the SDK's retries among them, as metrics (published with the
  // worker's other metrics).
  return (provider ??= stripeBillingFromEnv(process.env, {
    onCall: (_op, _attempt, outcome) => {
      metrics.addMetric('StripeCalls', MetricUnit.Count, 1);
      if (outcome === 'retry') metrics.addMetric('StripeRetries', MetricUnit.Count, 1);
    },
  }));
}
