import Stripe from 'stripe';
import * as z from 'zod';
import { PacedHttpClient, StripePacing } from './paced-http-client';
import { STRIPE_RATE_LIMITS } from './stripe-limits';

/**
 * Stripe connection settings. Read from the environment; `STRIPE_API_HOST`,
 * `STRIPE_API_PORT` and `STRIPE_API_PROTOCOL` point the official SDK at another server
 * (the local Stripe fake) and are left unset in production.
 */
export interface StripeAdapterConfig {
  secretKey: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** Requests per second this process may send (see pacer.ts). Stripe allows 25/s in test mode, 100/s live. */
  maxRps: number;
  /** Requests per second per endpoint (method and route); Stripe allows 25/s per endpoint. */
  maxEndpointRps: number;
  /** Per-request timeout of the SDK, in ms. */
  timeoutMs: number;
  /** Attempts per call, the first one included (the SDK's `maxNetworkRetries` is one less). */
  maxAttempts: number;
}

/** Stripe's test-mode limit; live mode allows 100 requests/second. */
const DEFAULT_STRIPE_MAX_RPS = STRIPE_RATE_LIMITS.sandbox;
/** Under Stripe's 25 requests/second per endpoint, with room for a retry burst. */
const DEFAULT_STRIPE_MAX_ENDPOINT_RPS = 20;
const DEFAULT_STRIPE_TIMEOUT_MS = 10_000;
const DEFAULT_STRIPE_MAX_ATTEMPTS = 5;

/** An empty variable counts as unset (as in most .env files). */
const unsetIfEmpty = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(unsetIfEmpty, schema.optional());

const envSchema = z.object({
  STRIPE_SECRET_KEY: z.preprocess(
    unsetIfEmpty,
    z.string({ error: 'missing; set it to a Stripe secret key (sk_test_... or sk_live_...; any non-empty value for the local fake)' }).trim().min(1),
  ),
  STRIPE_API_HOST: optional(z.string().trim().min(1)),
  STRIPE_API_PORT: optional(z.coerce.number().int().min(1).max(65_535)),
  STRIPE_API_PROTOCOL: optional(z.enum(['http', 'https'])),
  STRIPE_MAX_RPS: optional(z.coerce.number().positive().max(10_000)),
  STRIPE_MAX_ENDPOINT_RPS: optional(z.coerce.number().positive().max(10_000)),
  STRIPE_TIMEOUT_MS: optional(z.coerce.number().int().min(1)),
  STRIPE_MAX_ATTEMPTS: optional(z.coerce.number().int().min(1).max(20)),
});

/** Parses the Stripe settings; throws an error naming every missing or malformed variable. */
export function stripeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StripeAdapterConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid Stripe configuration: ${problems}`);
  }
  const e = parsed.data;
  const config: StripeAdapterConfig = {
    secretKey: e.STRIPE_SECRET_KEY,
    maxRps: e.STRIPE_MAX_RPS ?? DEFAULT_STRIPE_MAX_RPS,
    maxEndpointRps: e.STRIPE_MAX_ENDPOINT_RPS ?? DEFAULT_STRIPE_MAX_ENDPOINT_RPS,
    timeoutMs: e.STRIPE_TIMEOUT_MS ?? DEFAULT_STRIPE_TIMEOUT_MS,
    maxAttempts: e.STRIPE_MAX_ATTEMPTS ?? DEFAULT_STRIPE_MAX_ATTEMPTS,
  };
  if (e.STRIPE_API_HOST !== undefined) config.host = e.STRIPE_API_HOST;
  if (e.STRIPE_API_PORT !== undefined) config.port = e.STRIPE_API_PORT;
  if (e.STRIPE_API_PROTOCOL !== undefined) config.protocol = e.STRIPE_API_PROTOCOL;
  return config;
}

export interface StripeClientOptions {
  /** Pacing shared with other clients of the process; default: pacing of its own from the config. */
  pacing?: StripePacing;
  /** The HTTP client under the pacing; default: stripe-node's Node client. */
  httpClient?: Stripe.HttpClient;
}

/**
 * The official SDK, pointed at `host`/`port`/`protocol` when given, paced and retrying by itself:
 *
 * - Retries are the SDK's (`maxNetworkRetries`: `maxAttempts - 1`): connection errors and timeouts,
 *   409 and 5xx, with its exponential backoff (0.5 s doubling to at most 5 s, jittered);
 *   `Stripe-Should-Retry` overrides it either way. A 4xx refusal is not retried. Every retry re-sends the same
 *   Idempotency-Key: the caller's on every write here, so nothing is created twice. (The SDK also
 *   re-sends once on a connection closed under it, ECONNRESET/EPIPE, whatever `maxNetworkRetries`.)
 * - 429s, which the SDK would not retry, are made retryable by the paced HTTP client, and a
 *   Retry-After is honoured (paced-http-client.ts).
 * - Every request, retries included, waits for the pacers (paced-http-client.ts).
 *
 * No `apiVersion` is set: the SDK sends the version it is pinned to (and typed for).
 */
export function createStripeClient(config: StripeAdapterConfig, opts: StripeClientOptions = {}): Stripe {
  const pacing = opts.pacing ?? new StripePacing({ maxRps: config.maxRps, maxEndpointRps: config.maxEndpointRps });
  const options: Stripe.StripeConfig = {
    maxNetworkRetries: config.maxAttempts - 1,
    timeout: config.timeoutMs,
    httpClient: new PacedHttpClient(opts.httpClient ?? Stripe.createNodeHttpClient(), pacing),
    appInfo: { name: 'usage-metering' },
  };
  if (config.host !== undefined) options.host = config.host;
  if (config.port !== undefined) options.port = config.port;
  if (config.protocol !== undefined) options.protocol = config.protocol;
  return new Stripe(config.secretKey, options);
}
