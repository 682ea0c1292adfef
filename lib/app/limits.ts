import type { KeyLimits, Principal } from '../domain/apikey';
import { RateLimitedError } from '../domain/errors';
import { effectiveLimits, limitWindow, retryAfterSeconds } from '../domain/rate-limit';
import type { Clock } from './ports/clock';
import type { RateLimiter } from './ports/access';

export interface LimitDeps {
  limiter: RateLimiter;
  clock: Clock;
  /** The deployment's limits of a key that sets none of its own. */
  defaultLimits: KeyLimits;
}

/** Counts one request of the key in its second: 429 rate_limited past the key's requests per second. */
export async function limitRequest(deps: LimitDeps, principal: Principal): Promise<void> {
  const at = deps.clock.now();
  const window = limitWindow(principal.keyId, 'requests', at);
  const limit = effectiveLimits(principal.limits, deps.defaultLimits).requestsPerSecond;
  if (!(await deps.limiter.take(window, 1, limit))) {
    throw new RateLimitedError(
      `this API key made its ${limit} requests of this second; retry after ${retryAfterSeconds(window, at)} s`,
      retryAfterSeconds(window, at),
    );
  }
}

/**
 * Counts a request's events in the key's minute: 429 rate_limited, nothing accepted, when they would
 * take the minute past the key's events per minute.
 */
export async function limitEvents(deps: LimitDeps, principal: Principal, count: number): Promise<void> {
  const at = deps.clock.now();
  const window = limitWindow(principal.keyId, 'events', at);
  const limit = effectiveLimits(principal.limits, deps.defaultLimits).eventsPerMinute;
  if (!(await deps.limiter.take(window, count, limit))) {
    throw new RateLimitedError(
      `these ${count} events would take this API key past its ${limit} events of this minute; nothing was accepted, retry after ${retryAfterSeconds(window, at)} s`,
      retryAfterSeconds(window, at),
    );
  }
}
