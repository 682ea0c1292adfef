import type Stripe from 'stripe';
import { Pacer } from './pacer';

/**
 * Pacing, hooked into stripe-node as its `httpClient`: every HTTP request the SDK sends (a call, each
 * page of a list, each of the SDK's own retries) first waits for its endpoint's pacer and then, in
 * that turn, for the process-wide one (pacer.ts). Retries, their backoff and idempotency keys are the
 * SDK's; the request timeout starts once the pacers let the request go.
 */
export interface StripePacingOptions {
  /** Requests per second for the process. */
  maxRps: number;
  /** Requests per second per endpoint (Stripe limits each on top of its global limit); omitted: none. */
  maxEndpointRps?: number;
}

/**
 * An endpoint as Stripe counts it for its per-endpoint limit: the method and the route, ids left out
 * (`POST /v1/invoices/:id/finalize`), query string dropped. In a v1 path every second segment after
 * the resource is an id (`/v1/<resource>/<id>/<action or sub-resource>/<id>`); where that guesses
 * wrong (nested resource names) two endpoints share one pacer, which only ever paces more strictly.
 */
export function stripeEndpoint(method: string, path: string): string {
  const route = path.split('?', 1)[0] ?? path;
  const parts = route.split('/').map((part, i) => (i >= 3 && i % 2 === 1 ? ':id' : part));
  return `${method.toUpperCase()} ${parts.join('/')}`;
}

/** The process-wide pacer and one per endpoint, created as endpoints are first used. */
export class StripePacing {
  private readonly global: Pacer;
  private readonly endpoints = new Map<string, Pacer>();

  constructor(private readonly opts: StripePacingOptions) {
    this.global = new Pacer({ ratePerSecond: opts.maxRps });
  }

  /** Resolves when a request to `endpoint` may be sent, with how long it waited (ms). */
  acquire(endpoint: string): Promise<number> {
    const own = this.endpointPacer(endpoint);
    return own ? own.acquire(() => this.global.acquire()) : this.global.acquire();
  }

  /** Nothing more is sent to `endpoint` for `ms` (all of the process's requests without per-endpoint pacing). */
  holdFor(endpoint: string, ms: number): void {
    (this.endpointPacer(endpoint) ?? this.global).holdFor(ms);
  }

  private endpointPacer(endpoint: string): Pacer | undefined {
    if (this.opts.maxEndpointRps === undefined) return undefined;
    let pacer = this.endpoints.get(endpoint);
    if (!pacer) this.endpoints.set(endpoint, (pacer = new Pacer({ ratePerSecond: this.opts.maxEndpointRps })));
    return pacer;
  }
}

/** A Retry-After beyond this is treated as this (a Lambda cannot wait for minutes). */
const MAX_RETRY_AFTER_MS = 60_000;

/** Retry-After is either delta-seconds or an HTTP date; capped at 60 s. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  let ms: number;
  if (Number.isFinite(seconds)) ms = seconds * 1000;
  else {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** A response header's (first) value; Node lower-cases header names, the lookup tolerates other casings anyway. */
export function headerValue(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const v = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : String(first);
}

/**
 * The SDK's HTTP client (stripe-node's Node client unless another is given), paced.
 *
 * The one piece of retrying kept here, because the product needs it and stripe-node does not do
 * it: a 429. stripe-node retries connection errors, timeouts, 409 and 5xx, and follows
 * `Stripe-Should-Retry` either way, but does not retry a 429 that comes without that header (on
 * purpose, stripe-node#1110) and never reads Retry-After. Our pacing keeps a worker under Stripe's
 * limits, so a 429 means another client of the account took the room; it is safe to send again
 * (same idempotency key) and the job must not fail for it. So:
 * - a 429 without `Stripe-Should-Retry` is handed to the SDK marked `Stripe-Should-Retry: true`: the
 *   SDK retries it like a 409, with its own backoff and within the same `maxNetworkRetries`;
 * - a Retry-After on a 429 or 5xx holds the endpoint's pacer that long, so the retry (and whatever
 *   else waits for that endpoint) goes no earlier than Stripe asked.
 */
export class PacedHttpClient implements Stripe.HttpClient {
  constructor(
    private readonly inner: Stripe.HttpClient,
    private readonly pacing: StripePacing,
  ) {}

  getClientName(): string {
    return this.inner.getClientName();
  }

  async makeRequest(
    host: string,
    port: string,
    path: string,
    method: string,
    headers: Parameters<Stripe.HttpClient['makeRequest']>[4],
    requestData: string,
    protocol: string,
    timeout: number,
  ): Promise<Stripe.HttpClientResponse> {
    const endpoint = stripeEndpoint(method, path);
    await this.pacing.acquire(endpoint);
    const res = await this.inner.makeRequest(host, port, path, method, headers, requestData, protocol, timeout);
    const status = res.getStatusCode();
    if (status !== 429 && status < 500) return res;
    const retryAfterMs = parseRetryAfter(headerValue(res.getHeaders(), 'retry-after'));
    if (retryAfterMs !== undefined && retryAfterMs > 0) this.pacing.holdFor(endpoint, retryAfterMs);
    return status === 429 && headerValue(res.getHeaders(), 'stripe-should-retry') === undefined ? markedRetryable(res) : res;
  }
}

/** The same response, with `Stripe-Should-Retry: true` added to what the SDK reads. */
function markedRetryable(res: Stripe.HttpClientResponse): Stripe.HttpClientResponse {
  const headers = { ...res.getHeaders(), 'stripe-should-retry': 'true' };
  return {
    getStatusCode: () => res.getStatusCode(),
    getHeaders: () => headers,
    getRawResponse: () => res.getRawResponse(),
    toStream: (done) => res.toStream(done),
    toJSON: () => res.toJSON(),
    dispose: () => res.dispose?.(),
  };
}
