/**
 * Traffic counters, so a benchmark can print what it sent per endpoint and how much was refused.
 */
import type { RateLimitReason } from './rate-limits';

export interface EndpointStats {
  /** Requests received, whatever became of them. */
  requests: number;
  /** Of those, answered 429 (a rate limit or an injected '429'). */
  rateLimited: number;
}

export interface FakeStats {
  /** /v1 requests received, unknown routes included. */
  requests: number;
  /** Of those, answered 429. */
  rateLimited: number;
  /** The 429s by cause: the global limit, an endpoint's limit, or an injected '429' failure. */
  rateLimitedBy: { global: number; endpoint: number; injected: number };
  /** By endpoint ('POST /v1/invoices/:id/add_lines'), only endpoints that received requests. */
  endpoints: Record<string, EndpointStats>;
}

export class TrafficStats {
  private stats: FakeStats = TrafficStats.empty();

  private static empty(): FakeStats {
    return { requests: 0, rateLimited: 0, rateLimitedBy: { global: 0, endpoint: 0, injected: 0 }, endpoints: {} };
  }

  clear(): void {
    this.stats = TrafficStats.empty();
  }

  received(endpoint: string | undefined): void {
    this.stats.requests++;
    if (endpoint !== undefined) this.endpoint(endpoint).requests++;
  }

  rateLimited(endpoint: string | undefined, cause: RateLimitReason | 'injected'): void {
    this.stats.rateLimited++;
    const by = this.stats.rateLimitedBy;
    if (cause === 'global-rate') by.global++;
    else if (cause === 'endpoint-rate') by.endpoint++;
    else by.injected++;
    if (endpoint !== undefined) this.endpoint(endpoint).rateLimited++;
  }

  snapshot(): FakeStats {
    return structuredClone(this.stats);
  }

  private endpoint(name: string): EndpointStats {
    const existing = this.stats.endpoints[name];
    if (existing) return existing;
    const created = { requests: 0, rateLimited: 0 };
    this.stats.endpoints[name] = created;
    return created;
  }
}
