import { sleep } from '../../domain/concurrency';

/**
 * Keeps this process below N requests per second to Stripe.
 *
 * Spaced starts: a request may start no earlier than `interval = 1000 / N` ms after the previous
 * one started, measured on the clock at the moment it is let go. Waiting callers sit in one FIFO
 * queue drained by a single timer, so they are served in call order however many wait in
 * parallel, nobody is starved, and a stalled event loop cannot release a backlog all at once
 * (a late timer lets one caller go and re-arms for the next). There is deliberately no burst
 * allowance: a token bucket holding N tokens could send N requests at once and N more within the
 * same second, which trips a sliding-window limit such as Stripe's. With spaced starts any
 * one-second window holds at most N + 1 starts.
 *
 * Two pacers in a row (one per endpoint, then the process-wide one): `endpoint.acquire(() =>
 * global.acquire())`. The endpoint's turn then lasts until the process-wide pacer lets the caller go,
 * and its interval counts from that moment, when the request is really sent. Waiting for the two one
 * after the other instead would let a backlog in the process-wide queue bunch one endpoint's requests
 * up (released 100 ms apart, all stuck behind the same backlog, sent 10 ms apart). While a caller
 * waits for its second turn, the next caller of the same endpoint waits too: each endpoint has at
 * most one caller in the process-wide queue, so endpoints take turns there.
 *
 * PER PROCESS ONLY. Every Lambda instance has its own pacer, so with several invoice workers
 * running in parallel Stripe sees up to (invoice worker reserved concurrency) x (STRIPE_MAX_RPS).
 * Keep that product under Stripe's limit (25/s test mode, 100/s live) by setting the worker's
 * reserved concurrency; 429s that still happen are retried by the SDK (paced-http-client.ts).
 */
export interface PacerOptions {
  /** Requests per second; must be > 0. */
  ratePerSecond: number;
  /** Monotonic clock in ms; default performance.now (wall-clock jumps must not stall or burst). */
  now?: () => number;
  /** Waits ms; default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

/** Rounds up: node timers work in whole ms, and waking early would let the rate creep up. */
const realSleep = (ms: number) => sleep(Math.ceil(ms));

/**
 * A caller let go at most this late counts its interval from when it was due: node timers round up
 * to whole milliseconds and fire a little late, which at 23 starts/s (43.5 ms apart) would cost
 * 3% of the rate. Starts are then never earlier than due, nor more than this closer together, so
 * any one second still holds at most rate + 1 of them.
 */
const TIMER_SLACK_MS = 2;

interface Waiter {
  requestedAt: number;
  resolve: (waitedMs: number) => void;
  reject: (err: unknown) => void;
  /** A further wait that is part of this caller's turn (see acquire). */
  andThen?: () => Promise<unknown>;
}

export class Pacer {
  readonly intervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly queue: Waiter[] = [];
  /** When the last caller was let go. */
  private lastStart = Number.NEGATIVE_INFINITY;
  /** Nobody goes before this (see holdFor). */
  private notBefore = Number.NEGATIVE_INFINITY;
  private timerArmed = false;
  /** A caller is in its `andThen` wait; nobody else goes before it is through. */
  private holding = false;

  constructor(opts: PacerOptions) {
    if (!(Number.isFinite(opts.ratePerSecond) && opts.ratePerSecond > 0)) {
      throw new RangeError(`Pacer: ratePerSecond must be a positive number, got ${opts.ratePerSecond}`);
    }
    this.intervalMs = 1000 / opts.ratePerSecond;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? realSleep;
  }

  /**
   * Resolves when the caller may send one request, with how long it waited (ms). With `andThen`
   * (e.g. another pacer's acquire), the caller's turn includes that wait: this pacer lets nobody else
   * go until it is over, and counts the interval from then.
   */
  acquire(andThen?: () => Promise<unknown>): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ requestedAt: this.now(), resolve, reject, andThen });
      this.drain();
    });
  }

  /**
   * Lets nobody go for `ms` from now (a server's Retry-After); callers keep their order, and the
   * first one after the hold goes at its end.
   */
  holdFor(ms: number): void {
    this.notBefore = Math.max(this.notBefore, this.now() + ms);
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  private drain(): void {
    if (this.timerArmed || this.holding) return;
    while (this.queue.length > 0) {
      const now = this.now();
      const due = Math.max(this.lastStart + this.intervalMs, this.notBefore);
      if (now < due) {
        this.timerArmed = true;
        const wake = () => {
          this.timerArmed = false;
          this.drain();
        };
        this.sleep(due - now).then(wake, wake);
        return;
      }
      // An idle pacer does not bank time: after a pause the next caller goes now, the one after
      // that a full interval later.
      const next = this.queue.shift() as Waiter;
      const started = (at: number) => (at - due <= TIMER_SLACK_MS ? due : at);
      if (next.andThen) {
        this.holding = true;
        const release = (): void => {
          this.holding = false;
          this.drain();
        };
        next.andThen().then(
          () => {
            const at = this.now();
            this.lastStart = started(at);
            next.resolve(at - next.requestedAt);
            release();
          },
          (err: unknown) => {
            next.reject(err);
            release();
          },
        );
        return;
      }
      this.lastStart = started(now);
      next.resolve(now - next.requestedAt);
    }
  }
}
