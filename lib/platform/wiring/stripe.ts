import { stripeBillingFromEnv } from '../../adapters/stripe';
import { StripeInvoiceSync } from '../../adapters/stripe/invoice-sync';
import type { InvoiceSync } from '../../app/invoicing/stripe-port';
import { MetricUnit, metrics } from '../observability';

let sync: InvoiceSync | undefined;

/**
 * Stripe, only where it is used: the invoice worker is the one function importing this module, so
 * the Stripe SDK is in its bundle alone, and other functions need no Stripe key.
 */
export function invoiceSync(): InvoiceSync {
  // Stripe calls and retries as metrics (published with the worker's other metrics).
  return (sync ??= new StripeInvoiceSync(
    stripeBillingFromEnv(process.env, {
      onCall: (_op, _attempt, outcome) => {
        metrics.addMetric('StripeCalls', MetricUnit.Count, 1);
        if (outcome === 'retry') metrics.addMetric('StripeRetries', MetricUnit.Count, 1);
      },
    }),
  ));
}
