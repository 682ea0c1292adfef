/**
 * CLI: `npx tsx local/stripe-fake/main.ts`
 *
 * Starts the Stripe fake on STRIPE_FAKE_PORT (default 12111) and
 * STRIPE_FAKE_HOST (default 127.0.0.1), prints its URL, and stops cleanly on
 * SIGINT/SIGTERM. STRIPE_FAKE_RATE_LIMIT sets a global requests-per-second
 * limit; STRIPE_FAKE_LOG=0 silences the per-request log.
 */
import { startStripeFake } from './server';

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  return n;
}

async function main(): Promise<void> {
  const fake = await startStripeFake({
    port: intFromEnv('STRIPE_FAKE_PORT') ?? 12111,
    host: process.env.STRIPE_FAKE_HOST || '127.0.0.1',
    rateLimitPerSecond: intFromEnv('STRIPE_FAKE_RATE_LIMIT') || undefined,
    log: process.env.STRIPE_FAKE_LOG !== '0',
  });
  // The local stack parses this line; keep its format stable.
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
