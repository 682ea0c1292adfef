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
 * PER PROCESS ONLY. Every Lambda instance has its own pacer, so with several invoice workers
 * running in parallel Stripe sees up to (invoice worker reserved concurrency) x (STRIPE_MAX_RPS).
 * Keep that product under Stripe's limit (25/s test mode, 100/s live) by setting the worker's
 * reserved concurrency; 429s that still happen are retried with backoff by StripeBilling.
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
const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(ms)));

interface Waiter {
  requestedAt: number;
  resolve: (waitedMs: number) => void;
}

export class Pacer {
  readonly intervalMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly queue: Waiter[] = [];
  /** When the last caller was let go. */
  private lastStart = Number.NEGATIVE_INFINITY;
  private timerArmed = false;

  constructor(opts: PacerOptions) {
    if (!(Number.isFinite(opts.ratePerSecond) && opts.ratePerSecond > 0)) {
      throw new RangeError(`Pacer: ratePerSecond must be a positive number, got ${opts.ratePerSecond}`);
    }
    this.intervalMs = 1000 / opts.ratePerSecond;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? realSleep;
  }

  /** Resolves when the caller may send one request, with how long it waited (ms). */
  acquire(): Promise<number> {
    return new Promise<number>((resolve) => {
      this.queue.push({ requestedAt: this.now(), resolve });
      this.drain();
    });
  }

  /** Callers waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  private drain(): void {
    if (this.timerArmed) return;
    while (this.queue.length > 0) {
      const now = this.now();
      const due = this.lastStart + this.intervalMs;
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
      this.lastStart = now;
      next.resolve(now - next.requestedAt);
    }
  }
}
