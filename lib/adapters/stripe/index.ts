import { StripeBillingProvider, type StripeBillingProviderOptions } from './stripe-billing-provider';
import { createStripeClient, stripeConfigFromEnv } from './stripe-client';

export { StripeBillingProvider, type StripeBillingProviderOptions, type StripeCallOutcome, type StripeOperation } from './stripe-billing-provider';
export { createStripeClient, stripeConfigFromEnv, type StripeAdapterConfig } from './stripe-client';
export { parseRetryAfter, stripeEndpoint } from './paced-http-client';
export { Pacer } from './pacer';
export { StripeInvoiceSync } from './stripe-invoice-sync';

/**
 * The BillingProvider for this process, configured from the environment (STRIPE_SECRET_KEY,
 * STRIPE_API_HOST/PORT/PROTOCOL, STRIPE_MAX_RPS, STRIPE_MAX_ENDPOINT_RPS, STRIPE_TIMEOUT_MS,
 * STRIPE_MAX_ATTEMPTS). `onCall` may be given, e.g. to emit Stripe call/retry metrics. Create it
 * once per Lambda container: the pacers only pace requests made through one client.
 */
export function stripeBillingFromEnv(env: NodeJS.ProcessEnv = process.env, opts: StripeBillingProviderOptions = {}): StripeBillingProvider {
  return new StripeBillingProvider(createStripeClient(stripeConfigFromEnv(env)), opts);
}
