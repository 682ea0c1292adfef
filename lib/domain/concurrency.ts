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

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Attempt n waits a uniform random time in [0, min(maxMs, baseMs × 2^(n-1))] (full jitter). */
  baseMs: number;
  maxMs?: number;
  retryable: (err: unknown) => boolean;
  /** The least wait the error itself asks for (e.g. a Retry-After header). */
  minDelayMs?: (err: unknown) => number | undefined;
  /** Told before each wait: the attempt that failed and how long the next one waits. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** The one retry with backoff of the code base (DynamoDB transactions, SQS sends, Stripe calls). */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const cap = Math.min(opts.maxMs ?? 5000, opts.baseMs * 2 ** (attempt - 1));
      const jitter = (opts.random ?? Math.random)() * cap;
      const delayMs = Math.max(opts.minDelayMs?.(err) ?? 0, jitter);
      opts.onRetry?.(err, attempt, delayMs);
      await (opts.sleep ?? sleep)(delayMs);
    }
  }
}
