/**
 * CLI: `npx tsx local/stripe-fake/main.ts`
 *
 * Starts the Stripe fake on STRIPE_FAKE_PORT (default 12111) and
 * STRIPE_FAKE_HOST (default 127.0.0.1), prints its URL, and stops cleanly on
 * SIGINT/SIGTERM. STRIPE_FAKE_RATE_LIMIT sets a global requests-per-second
 * limit, or Stripe's limits with `live` (100/s global, 25/s per endpoint) or
 * `sandbox` (25 and 25); STRIPE_FAKE_ENDPOINT_RATE_LIMIT sets (or overrides) the
 * per-endpoint limit; 0 or empty means none. STRIPE_FAKE_LOG=0 silences the
 * per-request log.
 */
import { NO_RATE_LIMITS, resolveRateLimits, type RateLimitPreset, type RateLimits } from './rate-limits';
import { startStripeFake } from './server';

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  return n;
}

function rateLimitsFromEnv(): RateLimits {
  const raw = process.env.STRIPE_FAKE_RATE_LIMIT ?? '';
  const preset = raw === 'live' || raw === 'sandbox' ? (raw as RateLimitPreset) : undefined;
  const limits = preset ? resolveRateLimits(preset, NO_RATE_LIMITS) : { ...NO_RATE_LIMITS, global: intFromEnv('STRIPE_FAKE_RATE_LIMIT') || null };
  const perEndpoint = intFromEnv('STRIPE_FAKE_ENDPOINT_RATE_LIMIT');
  return perEndpoint === undefined ? limits : { ...limits, perEndpoint: perEndpoint || null };
}

async function main(): Promise<void> {
  const fake = await startStripeFake({
    port: intFromEnv('STRIPE_FAKE_PORT') ?? 12111,
    host: process.env.STRIPE_FAKE_HOST || '127.0.0.1',
    rateLimit: rateLimitsFromEnv(),
    log: process.env.STRIPE_FAKE_LOG !== '0',
  });
  // Scripts that start it wait for this line; keep its format stable.
  process.stdout.write(`stripe-fake listening on ${fake.url}\n`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`stripe-fake: ${signal}, stopping\n`);
    fake.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stripe-fake: error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`stripe-fake: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
