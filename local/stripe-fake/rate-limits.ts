/**
 * Stripe's rate limits (docs.stripe.com/rate-limits): a global limit over all API requests of an
 * account (100/s in live mode, 25/s in a sandbox) and, on top of it, a limit per endpoint (25/s
 * unless stated otherwise). Stripe counts each named operation as its own endpoint: method plus
 * route pattern, so `GET /v1/invoices/:id` for different ids shares one budget, while
 * `POST /v1/invoices` and `GET /v1/invoices` do not.
 *
 * Both are sliding one-second windows over admitted requests. A request must fit both; one that is
 * refused counts against neither, so a client that backs off gets through again after a second.
 */

/** Stripe's documented limits: live mode, and a sandbox (test mode). */
const RATE_LIMIT_PRESETS = {
  live: { global: 100, perEndpoint: 25 },
  sandbox: { global: 25, perEndpoint: 25 },
} as const;
export type RateLimitPreset = keyof typeof RATE_LIMIT_PRESETS;

/** Requests per second; null = no limit. */
export interface RateLimits {
  global: number | null;
  perEndpoint: number | null;
}

/**
 * How a limit is set:
 * - a number: the global limit (the original form), the per-endpoint limit stays as it is;
 * - `{ global?, perEndpoint? }`: the fields given (null = off), the others stay as they are;
 * - `'live'` / `'sandbox'`: Stripe's limits for that mode;
 * - undefined / null: no limits at all.
 */
export type RateLimitSetting = number | { global?: number | null; perEndpoint?: number | null } | RateLimitPreset | null | undefined;

/** Which limit refused a request, as Stripe names it in the `Stripe-Rate-Limited-Reason` header. */
export type RateLimitReason = 'global-rate' | 'endpoint-rate';

export const NO_RATE_LIMITS: RateLimits = { global: null, perEndpoint: null };

function checkLimit(name: string, value: number | null): number | null {
  if (value !== null && !(Number.isInteger(value) && value >= 1)) {
    throw new Error(`${name} rate limit must be a positive integer (requests per second) or null, got ${String(value)}`);
  }
  return value;
}

/** The limits `setting` leads to from `current`; throws on a malformed setting. */
export function resolveRateLimits(setting: RateLimitSetting, current: RateLimits): RateLimits {
  if (setting === undefined || setting === null) return { ...NO_RATE_LIMITS };
  if (typeof setting === 'number') return { global: checkLimit('global', setting), perEndpoint: current.perEndpoint };
  if (typeof setting === 'string') {
    if (!Object.hasOwn(RATE_LIMIT_PRESETS, setting)) {
      throw new Error(`unknown rate limit preset '${setting}' (known: ${Object.keys(RATE_LIMIT_PRESETS).join(', ')})`);
    }
    return { ...RATE_LIMIT_PRESETS[setting] };
  }
  return {
    global: setting.global === undefined ? current.global : checkLimit('global', setting.global),
    perEndpoint: setting.perEndpoint === undefined ? current.perEndpoint : checkLimit('per-endpoint', setting.perEndpoint),
  };
}

/** Times of admitted requests within the last second, oldest first. */
class SlidingWindow {
  private admitted: number[] = [];

  hasRoom(nowMs: number, perSecond: number): boolean {
    const windowStart = nowMs - 1000;
    let drop = 0;
    while (drop < this.admitted.length && (this.admitted[drop] as number) <= windowStart) drop++;
    if (drop > 0) this.admitted.splice(0, drop);
    return this.admitted.length < perSecond;
  }

  record(nowMs: number): void {
    this.admitted.push(nowMs);
  }
}

export class RateLimiter {
  private limits: RateLimits = { ...NO_RATE_LIMITS };
  private global = new SlidingWindow();
  private endpoints = new Map<string, SlidingWindow>();

  constructor(setting?: RateLimitSetting) {
    this.set(setting);
  }

  get current(): RateLimits {
    return { ...this.limits };
  }

  /** Applies a setting (see RateLimitSetting) and starts every window afresh. */
  set(setting: RateLimitSetting): void {
    this.limits = resolveRateLimits(setting, this.limits);
    this.global = new SlidingWindow();
    this.endpoints.clear();
  }

  /**
   * Admits one request to `endpoint` (e.g. 'POST /v1/invoices/:id/add_lines'; undefined for an
   * unknown route, which only the global limit sees), or says which limit refuses it.
   */
  admit(endpoint: string | undefined, nowMs: number): RateLimitReason | undefined {
    const { global, perEndpoint } = this.limits;
    if (global !== null && !this.global.hasRoom(nowMs, global)) return 'global-rate';
    let window: SlidingWindow | undefined;
    if (perEndpoint !== null && endpoint !== undefined) {
      window = this.endpoints.get(endpoint);
      if (!window) {
        window = new SlidingWindow();
        this.endpoints.set(endpoint, window);
      }
      if (!window.hasRoom(nowMs, perEndpoint)) return 'endpoint-rate';
    }
    if (global !== null) this.global.record(nowMs);
    window?.record(nowMs);
    return undefined;
  }
}
