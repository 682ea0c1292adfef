// The bottom of the house: waiting, bounded concurrency and the one retry with backoff. Every layer
// may import it; it imports nothing.

/** Runs fn over items with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Full-jitter exponential backoff: before attempt n+1, a uniform wait in [0, min(maxMs, baseMs × 2^(n-1))]. */
export function backoffMs(failedAttempt: number, baseMs: number, maxMs = 5000, random: () => number = Math.random): number {
  return random() * Math.min(maxMs, baseMs * 2 ** (failedAttempt - 1));
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Attempt n waits a uniform random time in [0, min(maxMs, baseMs × 2^(n-1))] (full jitter). */
  baseMs: number;
  maxMs?: number;
  retryable: (err: unknown) => boolean;
  /** Told before each wait: the attempt that failed and how long the next one waits. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** The one retry with backoff of the code base (DynamoDB transactions, SQS sends, alert publishing); Stripe's calls are retried by stripe-node. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const delayMs = backoffMs(attempt, opts.baseMs, opts.maxMs, opts.random);
      opts.onRetry?.(err, attempt, delayMs);
      await (opts.sleep ?? sleep)(delayMs);
    }
  }
}
