import { setTimeout as sleep } from 'node:timers/promises';
import type { DuplicateBounds, UsageModel } from './model';
import { wireEvent, type PlannedRequest, type SoakEvent } from './workload';

/**
 * The soak's HTTP clients. Event senders behave as a careful API client does: a request that
 * failed (lost answer, 503 with Retry-After, any 5xx) is repeated with the same body, sometimes
 * with the same Idempotency-Key and sometimes without; some are sent again after a 202. Every
 * answer is tallied, and every 202 feeds the model.
 */
export interface ClientStats {
  requests: number;
  attempts: number;
  eventsSent: number;
  duplicatesSent: number;
  /** Events of requests answered 202 (re-sends after a 202 not included). */
  eventsAccepted: number;
  byStatus: Record<string, number>;
  retries: { networkError: number; status503: number; otherStatus5xx: number };
  /** Attempts whose answer was lost on purpose: aborted in flight, or received and dropped. */
  networkErrorsInjected: { abortedInFlight: number; answerDropped: number };
  retriesWithSameKey: number;
  retriesWithoutKey: number;
  resentAfter202: { sameKey: number; withoutKey: number };
  replayed: number;
  /** Anything a correct product never answers: 5xx other than 503 service_busy, 503 without Retry-After, 4xx to valid input, wrong counts. */
  unexpected: string[];
  /** The 503s by error code. */
  codes503: Record<string, number>;
}

export const newClientStats = (): ClientStats => ({
  requests: 0,
  attempts: 0,
  eventsSent: 0,
  duplicatesSent: 0,
  eventsAccepted: 0,
  byStatus: {},
  retries: { networkError: 0, status503: 0, otherStatus5xx: 0 },
  networkErrorsInjected: { abortedInFlight: 0, answerDropped: 0 },
  retriesWithSameKey: 0,
  retriesWithoutKey: 0,
  resentAfter202: { sameKey: 0, withoutKey: 0 },
  replayed: 0,
  unexpected: [],
  codes503: {},
});

export interface ClientPolicy {
  /** Share of requests sent with an Idempotency-Key. */
  idempotencyKeyRate: number;
  /** Share of retries of a keyed request that repeat the key (the others go without). */
  retrySameKeyRate: number;
  /** Share of attempts whose answer is lost (half aborted in flight, half received and dropped). */
  networkErrorRate: number;
  /** Share of requests sent once more after their 202. */
  resendAfter202Rate: number;
  /** Give up (and fail the soak) after this many attempts of one request. */
  maxAttempts: number;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const note = (stats: ClientStats, text: string) => {
  if (stats.unexpected.length < 100) stats.unexpected.push(text);
};

export class SoakHttp {
  /** Whether this client has lost an ingest answer yet. */
  private lostOnce = false;
  constructor(
    readonly baseUrl: string,
    readonly stats: ClientStats,
    private readonly random: () => number,
  ) {}

  /** One attempt; `lose` makes its answer never reach the caller. */
  async attempt(
    method: string,
    path: string,
    opts: { bearer: string; body?: string; headers?: Record<string, string>; lose?: boolean },
  ): Promise<Answer | 'network_error'> {
    this.stats.attempts++;
    const controller = new AbortController();
    const inFlight = opts.lose === true && this.random() < 0.5;
    const timer = inFlight ? setTimeout(() => controller.abort(), 5 + Math.floor(this.random() * 300)) : undefined;
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.bearer}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        body: opts.body,
        signal: controller.signal,
      });
      const text = await res.text();
      if (opts.lose) {
        // The answer came, and is dropped on the floor: as if the connection broke just before.
        this.stats.networkErrorsInjected.answerDropped++;
        return 'network_error';
      }
      this.stats.byStatus[res.status] = (this.stats.byStatus[res.status] ?? 0) + 1;
      return { status: res.status, headers: res.headers, text };
    } catch (err) {
      if (controller.signal.aborted) {
        this.stats.networkErrorsInjected.abortedInFlight++;
        return 'network_error';
      }
      // A real network error (none expected on loopback): reported, and retried like the others.
      note(this.stats, `${method} ${path}: network error ${(err as Error).message}`);
      return 'network_error';
    } finally {
      clearTimeout(timer);
    }
  }

  /** Checks a 5xx: only 503 with Retry-After and the throttling code is expected; returns the wait. */
  private serverError(where: string, a: Answer): number {
    if (a.status !== 503) {
      this.stats.retries.otherStatus5xx++;
      note(this.stats, `${where}: ${a.status} ${a.text.slice(0, 300)}`);
      return 1000;
    }
    this.stats.retries.status503++;
    let code = 'unparseable';
    try {
      code = (JSON.parse(a.text) as { error: { code: string } }).error.code;
    } catch {
      note(this.stats, `${where}: 503 with a body that is not the error envelope: ${a.text.slice(0, 200)}`);
    }
    this.stats.codes503[code] = (this.stats.codes503[code] ?? 0) + 1;
    const retryAfter = Number(a.headers.get('retry-after'));
    if (!(retryAfter > 0)) {
      note(this.stats, `${where}: 503 ${code} without Retry-After`);
      return 1000;
    }
    return retryAfter * 1000;
  }

  /** An API call for setup or verification: repeated through 503s and lost answers until it gets an answer. */
  async api<T = any>(method: string, path: string, bearer: string, body?: unknown, ok: number[] = [200, 201, 202]): Promise<T> {
    for (let n = 1; ; n++) {
      const a = await this.attempt(method, path, { bearer, body: body === undefined ? undefined : JSON.stringify(body) });
      if (a !== 'network_error' && ok.includes(a.status)) return (a.text ? JSON.parse(a.text) : undefined) as T;
      if (n >= 20) throw new Error(`${method} ${path}: no answer after ${n} attempts (${a === 'network_error' ? a : `${a.status} ${a.text}`})`);
      if (a === 'network_error') await sleep(100);
      else if (a.status >= 500) await sleep(this.serverError(`${method} ${path}`, a));
      else throw new Error(`${method} ${path}: ${a.status} ${a.text.slice(0, 500)}`);
    }
  }

  /**
   * Sends one planned request until it is answered 202, as a client that must not lose usage does;
   * feeds the model and the duplicate bounds with what each attempt may have queued.
   */
  async sendEvents(
    plan: PlannedRequest,
    events: SoakEvent[],
    ctx: { bearer: string; runId: string; policy: ClientPolicy; model: UsageModel; bounds: DuplicateBounds },
  ): Promise<void> {
    const { policy } = ctx;
    const body = JSON.stringify(events.map(wireEvent));
    this.stats.requests++;
    this.stats.eventsSent += events.length;
    this.stats.duplicatesSent += plan.duplicates;
    const key = this.random() < policy.idempotencyKeyRate ? `soak-${ctx.runId}-${plan.n}` : undefined;
    const first = await this.untilAccepted(`request ${plan.n}`, body, events, key, ctx, true);
    if (first && this.random() < policy.resendAfter202Rate) {
      // Sent again after its 202 (a client that did not trust the answer): same body, key or not.
      const sameKey = key !== undefined && this.random() < 0.5;
      if (sameKey) this.stats.resentAfter202.sameKey++;
      else this.stats.resentAfter202.withoutKey++;
      const again = await this.untilAccepted(`request ${plan.n} re-sent`, body, events, sameKey ? key : undefined, ctx, false);
      // A key whose request was answered 202 has its answer stored: the same request again is a replay.
      if (first.key !== undefined && again?.key === first.key && !again.replayed) {
        note(this.stats, `request ${plan.n}: answered 202 with Idempotency-Key ${first.key}, then sent again with it and not answered as a replay`);
      }
    }
  }

  private async untilAccepted(
    where: string,
    body: string,
    events: SoakEvent[],
    key: string | undefined,
    ctx: { bearer: string; policy: ClientPolicy; model: UsageModel; bounds: DuplicateBounds },
    first: boolean,
  ): Promise<{ replayed: boolean; key: string | undefined } | undefined> {
    for (let n = 1; n <= ctx.policy.maxAttempts; n++) {
      let attemptKey = key;
      if (n > 1 && key !== undefined) {
        attemptKey = this.random() < ctx.policy.retrySameKeyRate ? key : undefined;
        if (attemptKey) this.stats.retriesWithSameKey++;
        else this.stats.retriesWithoutKey++;
      } else if (n > 1) this.stats.retriesWithoutKey++;
      // Requests with the same key queue the same batches; each request without one its own.
      const group = attemptKey ? `key:${attemptKey}` : `attempt:${where}:${n}:${this.random()}`;
      // At the policy's rate, and at least once per client (a short run may otherwise draw none, and
      // the retry path with its bounds would go untested).
      const lose = ctx.policy.networkErrorRate > 0 && (this.random() < ctx.policy.networkErrorRate || !this.lostOnce);
      if (lose) this.lostOnce = true;
      const a = await this.attempt('POST', '/api/v1/events', {
        bearer: ctx.bearer,
        body,
        headers: { 'content-type': 'application/cloudevents-batch+json', ...(attemptKey ? { 'idempotency-key': attemptKey } : {}) },
        lose,
      });
      if (a === 'network_error') {
        ctx.bounds.record(group, events, 'possible');
        this.stats.retries.networkError++;
        await sleep(20 + Math.floor(this.random() * 200));
        continue;
      }
      if (a.status === 202) {
        const replayed = a.headers.get('idempotent-replayed') === 'true';
        const accepted = (JSON.parse(a.text) as { accepted: number }).accepted;
        if (accepted !== events.length) note(this.stats, `${where}: 202 accepted ${accepted} of ${events.length} events`);
        if (replayed) this.stats.replayed++;
        if (first) this.stats.eventsAccepted += events.length;
        ctx.bounds.record(group, events, 'definite');
        ctx.model.accept(events);
        return { replayed, key: attemptKey };
      }
      if (a.status >= 500) {
        ctx.bounds.record(group, events, 'possible');
        await sleep(this.serverError(where, a));
        continue;
      }
      note(this.stats, `${where}: ${a.status} ${a.text.slice(0, 500)}`);
      return undefined;
    }
    note(this.stats, `${where}: not accepted after ${ctx.policy.maxAttempts} attempts`);
    return undefined;
  }
}
