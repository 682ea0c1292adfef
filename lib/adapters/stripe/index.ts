import { StripeBilling, type StripeBillingOptions } from './billing';
import { createStripeClient, stripeConfigFromEnv } from './client';

export {
  StripeBilling,
  StripeProviderError,
  STRIPE_OPERATIONS,
  MAX_STRIPE_AMOUNT_MINOR,
  parseRetryAfter,
  type StripeBillingOptions,
  type StripeCallInfo,
  type StripeCallOutcome,
  type StripeErrorDetails,
  type StripeOperation,
} from './billing';
export {
  createStripeClient,
  stripeConfigFromEnv,
  DEFAULT_STRIPE_MAX_ATTEMPTS,
  DEFAULT_STRIPE_MAX_ENDPOINT_RPS,
  DEFAULT_STRIPE_MAX_RPS,
  DEFAULT_STRIPE_TIMEOUT_MS,
  type StripeAdapterConfig,
} from './client';
export { Pacer, type PacerOptions } from './pacer';

/**
 * The BillingProvider for this process, configured from the environment (STRIPE_SECRET_KEY,
 * STRIPE_API_HOST/PORT/PROTOCOL, STRIPE_MAX_RPS, STRIPE_MAX_ENDPOINT_RPS, STRIPE_TIMEOUT_MS, STRIPE_MAX_ATTEMPTS).
 * `onCall` (and other options) may be added, e.g. to emit Stripe call/retry metrics.
 * Create it once per Lambda container: the pacer only paces calls made through one instance.
 */
export function stripeBillingFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  extra: Omit<StripeBillingOptions, 'maxRps' | 'maxEndpointRps' | 'maxAttempts'> = {},
): StripeBilling {
  const config = stripeConfigFromEnv(env);
  return new StripeBilling(createStripeClient(config), {
    ...extra,
    maxRps: config.maxRps,
    maxEndpointRps: config.maxEndpointRps,
    maxAttempts: config.maxAttempts,
  });
}
