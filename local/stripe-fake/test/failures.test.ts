import { FailureInjector, failureFromJson } from '../failures';
import { startStripeFake, type StripeFake } from '../server';

/**
 * Failure rules that fail a fraction of the matching requests (`rate`) instead of a count: what a
 * soak needs for "10% of Stripe requests fail" over a run of unknown length.
 */
/** A random source that replays `draws` in order. */
const replay = (...draws: number[]) => {
  let i = 0;
  return () => draws[i++ % draws.length]!;
};

describe('FailureInjector with rate', () => {
  it('fails a request when its draw is below the rate, and keeps the rule without a count', () => {
    const injector = new FailureInjector(replay(0.05, 0.5, 0.09, 0.1, 0.99));
    injector.add({ path: '/v1/invoices', mode: '500', rate: 0.1 });
    const taken = Array.from({ length: 5 }, () => injector.take('POST', '/v1/invoices')?.mode ?? null);
    expect(taken).toEqual(['500', null, '500', null, null]);
    expect(injector.active()).toHaveLength(1);
    expect(injector.active()[0]!.remaining).toBe(Infinity);
  });

  it('checks the next matching rule when the draw spares a request', () => {
    const injector = new FailureInjector(replay(0.5, 0.01));
    injector.add({ path: '/v1/', mode: '500', rate: 0.1 });
    injector.add({ path: '/v1/', mode: '429', rate: 0.1 });
    // First rule draws 0.5 (spared), second draws 0.01 (fails with 429).
    expect(injector.take('POST', '/v1/invoices/in_1/add_lines')?.mode).toBe('429');
  });

  it('stops after `times` failures when a count is given too', () => {
    const injector = new FailureInjector(() => 0);
    injector.add({ path: '/v1/', mode: '500', rate: 0.5, times: 2 });
    expect([1, 2, 3].map(() => injector.take('GET', '/v1/invoices')?.mode ?? null)).toEqual(['500', '500', null]);
    expect(injector.active()).toHaveLength(0);
  });

  it('does not match other methods or paths, and draws nothing for them', () => {
    const draws: number[] = [];
    const injector = new FailureInjector(() => (draws.push(0), 0));
    injector.add({ method: 'POST', path: '/v1/invoices', mode: '500', rate: 0.5 });
    expect(injector.take('GET', '/v1/invoices')).toBeUndefined();
    expect(injector.take('POST', '/v1/customers')).toBeUndefined();
    expect(draws).toEqual([]);
  });

  it('refuses rates outside (0, 1] in code and in JSON', () => {
    const injector = new FailureInjector();
    expect(() => injector.add({ path: '/v1/', mode: '500', rate: 0 })).toThrow(/rate/);
    expect(() => injector.add({ path: '/v1/', mode: '500', rate: 1.5 })).toThrow(/rate/);
    expect(() => failureFromJson({ path: '/v1/', mode: '500', rate: '0.1' })).toThrow(/rate/);
    expect(failureFromJson({ path: '/v1/', mode: '429', rate: 0.25 })).toEqual({ path: '/v1/', mode: '429', rate: 0.25 });
  });
});

describe('the fake with a rate rule', () => {
  let fake: StripeFake;
  beforeAll(async () => {
    fake = await startStripeFake({ port: 0 });
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('fails about that fraction of matching requests over HTTP and shows the rule in its state', async () => {
    const res = await fetch(`${fake.url}/_fake/failures`, {
      method: 'POST',
      body: JSON.stringify({ method: 'POST', path: '/v1/customers', mode: '500', rate: 0.3 }),
    });
    expect(res.status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 400; i++) {
      const r = await fetch(`${fake.url}/v1/customers`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk_test_rate', 'content-type': 'application/x-www-form-urlencoded' },
        body: `name=c${i}`,
      });
      statuses.push(r.status);
      await r.text();
    }
    const failed = statuses.filter((s) => s === 500).length;
    // Binomial(400, 0.3): mean 120, sd 9.2; this range holds with probability > 0.9999.
    expect(failed).toBeGreaterThan(80);
    expect(failed).toBeLessThan(160);
    expect(statuses.filter((s) => s === 200)).toHaveLength(400 - failed);
    expect(fake.customers()).toHaveLength(400 - failed);
    const state = (await (await fetch(`${fake.url}/_fake/state`)).json()) as { failures: unknown[] };
    expect(state.failures).toEqual([{ method: 'POST', path: '/v1/customers', mode: '500', remaining: null, rate: 0.3, holdMs: 30_000 }]);
  });
});
