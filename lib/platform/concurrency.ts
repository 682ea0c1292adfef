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

/** Retries fn while `retryable(err)` says so, with full-jitter exponential backoff. */
export async function retry<T>(
  fn: () => Promise<T>,
  opts: { attempts: number; baseMs: number; maxMs?: number; retryable: (err: unknown) => boolean },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err)) throw err;
      const cap = Math.min(opts.maxMs ?? 5000, opts.baseMs * 2 ** (attempt - 1));
      await sleep(Math.random() * cap);
    }
  }
}
