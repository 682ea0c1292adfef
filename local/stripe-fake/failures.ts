/**
 * Fault injection, so the product's retry logic can be exercised
 * deterministically against the fake (rate limits: rate-limits.ts).
 */

/**
 * - '500': answer 500 api_error before doing anything (nothing is written or saved
 *   under the idempotency key, so a retry runs for real).
 * - '429': answer 429 rate_limit before doing anything.
 * - 'timeout_after_commit': execute the request and save its idempotent result, then
 *   never answer: hold the socket for `holdMs` and destroy it. A retry with the same
 *   idempotency key gets the replay.
 * - 'delay': reserve the idempotency key, wait `holdMs`, then execute and answer
 *   normally. While waiting, the request is "in flight" (same key -> 409).
 */
export type FailureMode = '500' | '429' | 'timeout_after_commit' | 'delay';
const FAILURE_MODES: readonly FailureMode[] = ['500', '429', 'timeout_after_commit', 'delay'];

/** Long enough to outlast any sane client timeout; stop() cuts it short. */
const DEFAULT_HOLD_MS = 30_000;

export interface FailureSpec {
  /** HTTP method to match ('POST', ...); omitted or '*' matches any. */
  method?: string;
  /** Path prefix (e.g. '/v1/invoices') or a RegExp tested against the path (no query string). */
  path: string | RegExp;
  mode: FailureMode;
  /** How many matching requests fail; default 1, or no limit when `rate` is given. */
  times?: number;
  /**
   * The fraction (0..1] of matching requests that fail, each drawn at random (a soak's "10% of
   * requests fail"). A matching request the draw spares is checked against the next rule.
   */
  rate?: number;
  /** For 'timeout_after_commit' and 'delay'; default DEFAULT_HOLD_MS. */
  holdMs?: number;
}

/** The JSON form accepted by POST /_fake/failures (a RegExp cannot travel as JSON). */
interface FailureSpecJson {
  method?: string;
  path?: string;
  pathRegex?: string;
  mode: FailureMode;
  times?: number;
  rate?: number;
  holdMs?: number;
}

export interface ActiveFailure {
  method: string;
  path: string | RegExp;
  mode: FailureMode;
  /** Failures left; Infinity for a `rate` rule without `times`. */
  remaining: number;
  /** 1 unless the rule fails a fraction of matching requests. */
  rate: number;
  holdMs: number;
}

export function failureFromJson(json: unknown): FailureSpec {
  if (typeof json !== 'object' || json === null) throw new Error('failure spec must be a JSON object');
  const j = json as Partial<Record<keyof FailureSpecJson, unknown>>;
  if (typeof j.mode !== 'string' || !(FAILURE_MODES as readonly string[]).includes(j.mode)) {
    throw new Error(`mode must be one of ${FAILURE_MODES.join(', ')}`);
  }
  let path: string | RegExp;
  if (typeof j.pathRegex === 'string') path = new RegExp(j.pathRegex);
  else if (typeof j.path === 'string') path = j.path;
  else throw new Error('path (prefix) or pathRegex is required');
  const spec: FailureSpec = { path, mode: j.mode as FailureMode };
  if (j.method !== undefined) {
    if (typeof j.method !== 'string') throw new Error('method must be a string');
    spec.method = j.method;
  }
  for (const field of ['times', 'holdMs'] as const) {
    const v = j[field];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${field} must be a non-negative integer`);
    spec[field] = v;
  }
  if (j.rate !== undefined) {
    if (typeof j.rate !== 'number' || !(j.rate > 0 && j.rate <= 1)) throw new Error('rate must be a number in (0, 1]');
    spec.rate = j.rate;
  }
  return spec;
}

export function describeFailure(f: ActiveFailure): Record<string, unknown> {
  return {
    method: f.method,
    ...(f.path instanceof RegExp ? { pathRegex: f.path.source } : { path: f.path }),
    mode: f.mode,
    remaining: Number.isFinite(f.remaining) ? f.remaining : null,
    ...(f.rate < 1 ? { rate: f.rate } : {}),
    holdMs: f.holdMs,
  };
}

export class FailureInjector {
  private rules: ActiveFailure[] = [];

  /** `random` draws for `rate` rules (a seeded one makes a run repeatable). */
  constructor(private readonly random: () => number = Math.random) {}

  add(spec: FailureSpec): void {
    const rate = spec.rate ?? 1;
    if (!(rate > 0 && rate <= 1)) throw new Error('rate must be a number in (0, 1]');
    const times = spec.times ?? (spec.rate === undefined ? 1 : Infinity);
    if (times !== Infinity && (!Number.isInteger(times) || times < 0)) throw new Error('times must be a non-negative integer');
    const holdMs = spec.holdMs ?? DEFAULT_HOLD_MS;
    if (!Number.isInteger(holdMs) || holdMs < 0) throw new Error('holdMs must be a non-negative integer');
    if (times === 0) return;
    // A global/sticky RegExp keeps state between test() calls; matching must not depend on history.
    const path = spec.path instanceof RegExp ? new RegExp(spec.path.source, spec.path.flags.replace(/[gy]/g, '')) : spec.path;
    this.rules.push({ method: (spec.method ?? '*').toUpperCase(), path, mode: spec.mode, remaining: times, rate, holdMs });
  }

  clear(): void {
    this.rules = [];
  }

  active(): readonly ActiveFailure[] {
    return this.rules;
  }

  /** Consumes one use of the first (oldest) rule matching the request whose draw says fail, if any. */
  take(method: string, path: string): ActiveFailure | undefined {
    const rule = this.rules.find(
      (r) =>
        (r.method === '*' || r.method === method) &&
        (r.path instanceof RegExp ? r.path.test(path) : path.startsWith(r.path)) &&
        (r.rate >= 1 || this.random() < r.rate),
    );
    if (!rule) return undefined;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.rules = this.rules.filter((r) => r !== rule);
    return { ...rule };
  }
}
