import { formatReport, runSoak } from './soak';

/**
 * The soak at 50,000 events (`npm run soak` runs 1,000,000): the real local stack under duplicates,
 * client retries with and without Idempotency-Key, lost answers, aggregator crashes at every step,
 * DynamoDB throttling, double deliveries and an invoice run with Stripe failing 10% of requests, all
 * at once; then usage, invoices and alerts must be exact. Fails on any mismatch.
 *
 * At this size 1% rates would hardly fire, so the rates are higher and every crash and throttle
 * step is made to happen once (in the current period, the longer phase).
 */
const EVENTS = Number(process.env.SOAK_TEST_EVENTS ?? 50_000);

it(
  `counts ${EVENTS.toLocaleString('en-US')} events exactly once and bills once, under every fault at once`,
  async () => {
    const report = await runSoak({
      events: EVENTS,
      customers: 60,
      seed: Number(process.env.SOAK_SEED ?? 20261126),
      visibilityTimeoutSeconds: 30,
      everyStepIn: ['current'],
      messageThrottleRate: 0.05,
      throttleRate: 0.02,
      networkErrorRate: 0.05,
      resendAfter202Rate: 0.05,
      deliverTwiceRate: 0.05,
    });
    // The figures are part of the output (jest shows them on failure too).
    process.stdout.write(`\nsoak, ${EVENTS} events:\n${formatReport(report)}\n`);
    expect(report.failures).toEqual([]);
  },
  20 * 60_000,
);
