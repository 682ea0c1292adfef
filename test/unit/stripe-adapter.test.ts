/**
 * The Stripe adapter (lib/adapters/stripe) against the Stripe fake, through the real SDK:
 * idempotency keys, the SDK's retries as configured (and a 429 made retryable), pacing of every
 * request including retries, finalize re-runs and configuration.
 */
import Stripe from 'stripe';
import { BillingProviderError } from '../../lib/app/invoicing/billing-provider';
import {
  createStripeClient,
  Pacer,
  parseRetryAfter,
  StripeBillingProvider,
  stripeBillingFromEnv,
  stripeConfigFromEnv,
  stripeEndpoint,
  type StripeAdapterConfig,
  type StripeCallOutcome,
  type StripeOperation,
} from '../../lib/adapters/stripe';
import type { StripeFake } from '../../local/stripe-fake/server';
import { useStripeFake } from '../support/stripe-fake';

const API_KEY = 'sk_test_adapter_unit';
const FINALIZE_PATH = /^\/v1\/invoices\/[^/]+\/finalize$/;
const ADD_LINES_PATH = /^\/v1\/invoices\/[^/]+\/add_lines$/;

let fake: StripeFake;

/** The adapter's settings against the fake; by default pacing far above anything a test sends. */
function config(overrides: Partial<StripeAdapterConfig> = {}): StripeAdapterConfig {
  return {
    secretKey: API_KEY,
    host: '127.0.0.1',
    port: fake.port,
    protocol: 'http',
    timeoutMs: 2000,
    maxRps: 1000,
    maxEndpointRps: 1000,
    maxAttempts: 5,
    ...overrides,
  };
}

function sdk(): Stripe {
  return createStripeClient(config());
}

interface Harness {
  billing: StripeBillingProvider;
  events: { op: StripeOperation; attempt: number; outcome: StripeCallOutcome; errorCode?: string }[];
}

/** A provider on its own client (its own pacers), recording every onCall; `httpClient` goes under the pacing. */
function harness(opts: Partial<StripeAdapterConfig> & { httpClient?: Stripe.HttpClient } = {}): Harness {
  const events: Harness['events'] = [];
  const { httpClient, ...overrides } = opts;
  const billing = new StripeBillingProvider(createStripeClient(config(overrides), httpClient ? { httpClient } : {}), {
    onCall: (op, attempt, outcome, info) => events.push({ op, attempt, outcome, errorCode: info.errorCode }),
  });
  return { billing, events };
}

/** An HTTP client that answers the first `answers.length` requests itself, then sends the rest to the fake. */
function answering(...answers: { status: number; headers: Record<string, string>; body: unknown }[]): Stripe.HttpClient & { answeredAt: number[] } {
  const node = Stripe.createNodeHttpClient();
  const answeredAt: number[] = [];
  return {
    answeredAt,
    getClientName: () => 'test',
    makeRequest: async (...args) => {
      const answer = answers.shift();
      if (!answer) return node.makeRequest(...args);
      answeredAt.push(Date.now());
      return {
        getStatusCode: () => answer.status,
        getHeaders: () => ({ 'request-id': 'req_stub', ...answer.headers }),
        getRawResponse: () => ({}),
        toStream: () => {
          throw new Error('not streamed');
        },
        toJSON: async () => answer.body,
      };
    },
  };
}

async function newCustomer(): Promise<string> {
  return (await sdk().customers.create({ name: 'Acme' })).id;
}

async function rejectionOf(p: Promise<unknown>): Promise<BillingProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BillingProviderError);
    return err as BillingProviderError;
  }
  throw new Error('expected the promise to reject');
}

const LINES = [
  { line: 'api_calls-t1', amountMinor: 9000, description: 'API Calls: 90,000 calls x $0.001' },
  { line: 'storage-t1', amountMinor: 2550, description: 'Storage: 51 GB x $0.50' },
  { line: 'base', amountMinor: 4900, description: 'Base fee' },
];

/** The invoice worker's sequence for one (customer, period), with keys derived from domain ids. */
async function runInvoice(billing: StripeBillingProvider, customer: string, period = '2026-01') {
  const prefix = `inv:${customer}:${period}`;
  const draft = await billing.createDraftInvoice({
    stripeCustomerId: customer,
    currency: 'usd',
    description: `Usage ${period}`,
    metadata: { customer, period },
    idempotencyKey: `${prefix}:draft`,
  });
  const withLines = await billing.addInvoiceLines({
    invoiceId: draft.id,
    lines: LINES.map((l) => ({ amountMinor: l.amountMinor, description: l.description, metadata: { customer, period, line: l.line } })),
    idempotencyKey: `${prefix}:lines`,
  });
  const finalized = await billing.finalizeInvoice(draft.id, `${prefix}:finalize`);
  return { draft, withLines, finalized };
}

const TOTAL = LINES.reduce((s, l) => s + l.amountMinor, 0);

useStripeFake((f) => (fake = f));

describe('invoicing against the fake', () => {
  it('creates a draft, adds 3 lines in one request and finalizes: one open invoice whose total is the sum', async () => {
    const { billing } = harness();
    const customer = await newCustomer();
    const { draft, withLines, finalized } = await runInvoice(billing, customer);

    expect(draft.status).toBe('draft');
    expect(withLines).toMatchObject({ id: draft.id, status: 'draft', totalMinor: TOTAL });
    expect(finalized).toMatchObject({ id: draft.id, status: 'open', totalMinor: TOTAL });
    expect(finalized.number).toEqual(expect.any(String));

    const invoices = fake.invoices();
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({
      id: draft.id,
      status: 'open',
      total: TOTAL,
      customer,
      currency: 'usd',
      auto_advance: false,
      collection_method: 'send_invoice',
      metadata: { customer, period: '2026-01' },
    });
    expect(fake.invoiceItems()).toHaveLength(3);

    const listed = await billing.listInvoiceLines(draft.id);
    expect(listed).toHaveLength(3);
    for (const l of LINES) {
      expect(listed).toContainEqual({ id: expect.any(String), amountMinor: l.amountMinor, metadata: { customer, period: '2026-01', line: l.line } });
    }

    // Our keys on every write (never the SDK's stripe-node-retry-...), and the draft's parameters.
    const posts = fake.requests.filter((r) => r.method === 'POST' && r.path !== '/v1/customers');
    expect(posts).toHaveLength(3);
    for (const p of posts) expect(p.idempotencyKey).toMatch(/^inv:/);
    expect(posts[0]?.params).toMatchObject({
      auto_advance: 'false',
      collection_method: 'send_invoice',
      days_until_due: '30',
      pending_invoice_items_behavior: 'exclude',
    });
    expect(billing.calls).toMatchObject({ createDraftInvoice: 1, addInvoiceLines: 1, finalizeInvoice: 1, listInvoiceLines: 1 });
    expect(Object.values(billing.retries).every((n) => n === 0)).toBe(true);
  });

  it('a re-run with the same keys creates nothing and returns the same ids', async () => {
    const customer = await newCustomer();
    const first = await runInvoice(harness().billing, customer);
    const second = await runInvoice(harness().billing, customer); // a new process, same keys

    expect(second.draft.id).toBe(first.draft.id);
    expect(second.withLines).toEqual(first.withLines);
    expect(second.finalized).toEqual(first.finalized);
    expect(fake.invoices()).toHaveLength(1);
    expect(fake.invoiceItems()).toHaveLength(3);
    const replays = fake.requests.filter((r) => r.replayed);
    expect(replays).toHaveLength(3);
  });
});

describe('customerExists', () => {
  it('says whether the account has the customer: yes for one it made, no for an id it lacks, one counted call each', async () => {
    const { billing, events } = harness();
    const made = await sdk().customers.create({ name: 'Exists Inc' });
    expect(await billing.customerExists(made.id)).toBe(true);
    expect(await billing.customerExists('cus_NotInThisAccount')).toBe(false);
    expect(events.map((e) => [e.op, e.outcome])).toEqual([
      ['customerExists', 'ok'],
      ['customerExists', 'ok'], // Stripe's 404 is the answer "no", not a failure
    ]);
  });
});

describe('addInvoiceLines and listInvoiceLines', () => {
  const ADD_LINES = /^\/v1\/invoices\/[^/]+\/add_lines$/;

  async function draft(billing: StripeBillingProvider, key = 'lines:draft'): Promise<string> {
    const customer = await newCustomer();
    return (await billing.createDraftInvoice({ stripeCustomerId: customer, currency: 'usd', description: 'd', metadata: {}, idempotencyKey: key })).id;
  }

  const lineSet = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => ({
      amountMinor: (from + i + 1) * 100,
      description: `line ${from + i}`,
      metadata: { line_key: `k${from + i}` },
    }));

  it('adds every line in one request; listInvoiceLines shows them with their line keys', async () => {
    const { billing } = harness();
    const invoiceId = await draft(billing);
    const lines = [...lineSet(2), { amountMinor: -50, description: 'credit', metadata: { line_key: 'credit' } }];

    const invoice = await billing.addInvoiceLines({ invoiceId, lines, idempotencyKey: 'lines:add' });

    expect(invoice).toMatchObject({ id: invoiceId, status: 'draft', totalMinor: 100 + 200 - 50 });
    const posts = fake.requests.filter((r) => ADD_LINES.test(r.path));
    expect(posts.map((r) => [r.status, r.idempotencyKey])).toEqual([[200, 'lines:add']]);
    expect(await billing.listInvoiceLines(invoiceId)).toEqual([
      { id: expect.stringMatching(/^il_/), amountMinor: 100, metadata: { line_key: 'k0' } },
      { id: expect.stringMatching(/^il_/), amountMinor: 200, metadata: { line_key: 'k1' } },
      { id: expect.stringMatching(/^il_/), amountMinor: -50, metadata: { line_key: 'credit' } },
    ]);
    expect(billing.calls).toMatchObject({ addInvoiceLines: 1, listInvoiceLines: 1 });
    expect((await billing.finalizeInvoice(invoiceId, 'lines:finalize')).totalMinor).toBe(250);
  });

  it('a re-run with the same key (another process) gets the replay: no line is added twice', async () => {
    const invoiceId = await draft(harness().billing);
    const input = { invoiceId, lines: lineSet(3), idempotencyKey: 'lines:rerun' };

    const first = await harness().billing.addInvoiceLines(input);
    const second = await harness().billing.addInvoiceLines(input);

    expect(second).toEqual(first);
    expect(fake.invoiceItems()).toHaveLength(3);
    expect(fake.requests.filter((r) => ADD_LINES.test(r.path)).map((r) => r.replayed)).toEqual([false, true]);
  });

  it('the SDK retries a 500, a 429 and a timeout after commit with the same key, and the lines are added once', async () => {
    const { billing, events } = harness({ timeoutMs: 300 });
    const invoiceId = await draft(billing);
    fake.injectFailure({ method: 'POST', path: ADD_LINES, mode: '500' });
    fake.injectFailure({ method: 'POST', path: ADD_LINES, mode: '429' });
    fake.injectFailure({ method: 'POST', path: ADD_LINES, mode: 'timeout_after_commit', holdMs: 2000 });

    const invoice = await billing.addInvoiceLines({ invoiceId, lines: lineSet(4), idempotencyKey: 'lines:retry' });

    expect(invoice.totalMinor).toBe(100 + 200 + 300 + 400);
    expect(fake.invoiceItems()).toHaveLength(4);
    const attempts = fake.requests.filter((r) => ADD_LINES.test(r.path));
    expect(attempts.map((r) => [r.status, r.injected, r.replayed])).toEqual([
      [500, '500', false],
      [429, '429', false],
      [null, 'timeout_after_commit', false],
      [200, null, true],
    ]);
    expect(new Set(attempts.map((r) => r.idempotencyKey))).toEqual(new Set(['lines:retry']));
    expect(events.filter((e) => e.op === 'addInvoiceLines').map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'retry'],
      [4, 'ok'],
    ]);
    expect(billing.retries.addInvoiceLines).toBe(3);
  });

  it('listInvoiceLines pages through 250 lines (the SDK auto-paginates), each page its own paced and retried request', async () => {
    const { billing } = harness();
    const invoiceId = await draft(billing);
    await billing.addInvoiceLines({ invoiceId, lines: lineSet(250), idempotencyKey: 'lines:250' });
    fake.injectFailure({ method: 'GET', path: /\/lines$/, mode: '500' });

    const lines = await billing.listInvoiceLines(invoiceId);

    expect(lines.map((l) => l.metadata.line_key)).toEqual(lineSet(250).map((l) => l.metadata.line_key));
    const pages = fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/lines'));
    expect(pages.map((r) => [r.status, r.params.limit, r.params.starting_after])).toEqual([
      [500, '100', undefined],
      [200, '100', undefined],
      [200, '100', lines[99]?.id],
      [200, '100', lines[199]?.id],
    ]);
    expect(billing.calls.listInvoiceLines).toBe(4);
    expect(billing.retries.listInvoiceLines).toBe(1);
  });

  it('refuses a call without lines, or a write without a usable idempotency key, before calling Stripe', async () => {
    const { billing } = harness();
    const invoiceId = await draft(billing);
    const requestsBefore = fake.requests.length;

    const none = await rejectionOf(billing.addInvoiceLines({ invoiceId, lines: [], idempotencyKey: 'lines:none' }));
    expect(none).toMatchObject({ retryable: false, code: 'invalid_argument' });
    const noKey = await rejectionOf(billing.addInvoiceLines({ invoiceId, lines: lineSet(1), idempotencyKey: ' ' }));
    expect(noKey.code).toBe('invalid_argument');
    expect(fake.requests).toHaveLength(requestsBefore);
  });

  it("more than 250 lines: Stripe's refusal is not retried and nothing is added", async () => {
    const { billing } = harness();
    const invoiceId = await draft(billing);

    const err = await rejectionOf(billing.addInvoiceLines({ invoiceId, lines: lineSet(251), idempotencyKey: 'lines:251' }));

    expect(err).toMatchObject({ retryable: false, statusCode: 400 });
    expect(billing.calls.addInvoiceLines).toBe(1);
    expect(fake.invoiceItems()).toHaveLength(0);
  });
});

describe('retries', () => {
  it('retries 500s on adding lines and succeeds on the 3rd attempt with the lines added once', async () => {
    const { billing, events } = harness();
    const customer = await newCustomer();
    const draft = await billing.createDraftInvoice({ stripeCustomerId: customer, currency: 'usd', description: 'd', metadata: {}, idempotencyKey: 'k:draft' });
    fake.injectFailure({ method: 'POST', path: ADD_LINES_PATH, mode: '500', times: 2 });

    const invoice = await billing.addInvoiceLines({
      invoiceId: draft.id,
      lines: [{ amountMinor: 1234, description: 'line', metadata: { line: 'a' } }],
      idempotencyKey: 'k:lines',
    });

    expect(invoice.totalMinor).toBe(1234);
    expect(fake.invoiceItems()).toHaveLength(1);
    expect(billing.calls.addInvoiceLines).toBe(3);
    expect(billing.retries.addInvoiceLines).toBe(2);
    expect(events.filter((e) => e.op === 'addInvoiceLines').map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'ok'],
    ]);
    const attempts = fake.requests.filter((r) => r.method === 'POST' && ADD_LINES_PATH.test(r.path));
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(attempts.map((r) => r.idempotencyKey))).toEqual(new Set(['k:lines']));
  });

  it("retries 429s, which the SDK alone would not (the fake sends no Retry-After: the SDK's backoff), and succeeds", async () => {
    const { billing } = harness();
    const customer = await newCustomer();
    fake.injectFailure({ method: 'POST', path: '/v1/invoices', mode: '429', times: 2 });
    const draft = await billing.createDraftInvoice({
      stripeCustomerId: customer,
      currency: 'usd',
      description: 'd',
      metadata: {},
      idempotencyKey: 'k429:draft',
    });
    expect(draft.status).toBe('draft');
    expect(billing.retries.createDraftInvoice).toBe(2);
    expect(fake.requests.filter((r) => r.path === '/v1/invoices').map((r) => r.status)).toEqual([429, 429, 200]);
    expect(fake.invoices()).toHaveLength(1);
  });

  it('waits at least Retry-After when Stripe sends it before the retry', async () => {
    const invoice = await sdk().invoices.create({ customer: await newCustomer(), auto_advance: false });
    const limited = answering({
      status: 429,
      headers: { 'retry-after': '1.5' },
      body: { error: { type: 'invalid_request_error', code: 'rate_limit', message: 'slow down' } },
    });
    const { billing } = harness({ httpClient: limited });

    await expect(billing.getInvoice(invoice.id)).resolves.toMatchObject({ id: invoice.id, status: 'draft' });

    const [retry] = fake.requests.filter((r) => r.method === 'GET');
    // The SDK alone would retry after 0.5 s.
    expect(Date.parse(retry!.at) - limited.answeredAt[0]!).toBeGreaterThanOrEqual(1490);
    expect(billing.calls.getInvoice).toBe(2);
    expect(billing.retries.getInvoice).toBe(1);
  });

  it('does not retry what Stripe says not to (Stripe-Should-Retry: false), whether a 429 or a 500', async () => {
    const { billing } = harness({
      httpClient: answering(
        { status: 429, headers: { 'stripe-should-retry': 'false' }, body: { error: { type: 'invalid_request_error', code: 'rate_limit', message: 'no' } } },
        { status: 500, headers: { 'stripe-should-retry': 'false' }, body: { error: { type: 'api_error', message: 'replayed error' } } },
      ),
    });

    const limited = await rejectionOf(billing.getInvoice('in_1'));
    const failed = await rejectionOf(billing.getInvoice('in_1'));

    expect(limited).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(failed).toMatchObject({ code: 'provider_unavailable', retryable: false });
    expect(billing.calls.getInvoice).toBe(2);
    expect(billing.retries.getInvoice).toBe(0);
    expect(fake.requests).toHaveLength(0);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.25')).toBe(250);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('3600')).toBe(60_000); // capped
  });

  it('finalize: a timeout after Stripe committed is retried with the same key and gets the committed result', async () => {
    const customer = await newCustomer();
    const { billing, events } = harness({ timeoutMs: 300 });
    const draft = await billing.createDraftInvoice({ stripeCustomerId: customer, currency: 'usd', description: 'd', metadata: {}, idempotencyKey: 'to:draft' });
    await billing.addInvoiceLines({ invoiceId: draft.id, lines: [{ amountMinor: 700, description: 'x', metadata: {} }], idempotencyKey: 'to:lines' });
    fake.injectFailure({ method: 'POST', path: FINALIZE_PATH, mode: 'timeout_after_commit', holdMs: 2000 });

    const finalized = await billing.finalizeInvoice(draft.id, 'to:finalize');

    expect(finalized).toMatchObject({ id: draft.id, status: 'open', totalMinor: 700 });
    expect(fake.invoices().filter((i) => i.status !== 'draft')).toHaveLength(1);
    const attempts = fake.requests.filter((r) => FINALIZE_PATH.test(r.path));
    expect(attempts).toHaveLength(2);
    expect(attempts.map((a) => a.idempotencyKey)).toEqual(['to:finalize', 'to:finalize']);
    expect(attempts[0]).toMatchObject({ status: null, injected: 'timeout_after_commit' });
    expect(attempts[1]).toMatchObject({ status: 200, replayed: true });
    expect(events.filter((e) => e.op === 'finalizeInvoice').map((e) => e.outcome)).toEqual(['retry', 'ok']);
  });

  it('retries 409 "key in use" while the first request with that key is still running', async () => {
    const customer = await newCustomer();
    const first = harness();
    const second = harness({ maxAttempts: 10 });
    const draft = await first.billing.createDraftInvoice({
      stripeCustomerId: customer,
      currency: 'usd',
      description: 'd',
      metadata: {},
      idempotencyKey: 'c:draft',
    });
    fake.injectFailure({ method: 'POST', path: ADD_LINES_PATH, mode: 'delay', holdMs: 400 });
    const input = { invoiceId: draft.id, lines: [{ amountMinor: 10, description: 'x', metadata: {} }], idempotencyKey: 'c:lines' };

    const slow = first.billing.addInvoiceLines(input);
    await new Promise((r) => setTimeout(r, 50));
    const racer = await second.billing.addInvoiceLines(input);

    expect(racer).toEqual(await slow);
    expect(fake.invoiceItems()).toHaveLength(1);
    expect(second.billing.retries.addInvoiceLines).toBeGreaterThanOrEqual(1);
    expect(fake.requests.some((r) => r.status === 409)).toBe(true);
  });

  it('gives up after maxAttempts on a 500 that never ends, with a retryable error', async () => {
    const { billing, events } = harness({ maxAttempts: 4 });
    const customer = await newCustomer();
    const draft = await billing.createDraftInvoice({ stripeCustomerId: customer, currency: 'usd', description: 'd', metadata: {}, idempotencyKey: 'f:draft' });
    fake.injectFailure({ method: 'POST', path: ADD_LINES_PATH, mode: '500', times: 1000 });

    const err = await rejectionOf(
      billing.addInvoiceLines({ invoiceId: draft.id, lines: [{ amountMinor: 1, description: 'x', metadata: {} }], idempotencyKey: 'f:lines' }),
    );

    expect(err.retryable).toBe(true);
    expect(err.code).toBe('provider_unavailable');
    expect(err.message).toMatch(/gave up after 4 attempts/);
    expect(fake.requests.filter((r) => r.method === 'POST' && ADD_LINES_PATH.test(r.path))).toHaveLength(4);
    expect(billing.calls.addInvoiceLines).toBe(4);
    expect(billing.retries.addInvoiceLines).toBe(3);
    expect(billing.failures.addInvoiceLines).toBe(1);
    expect(events.filter((e) => e.op === 'addInvoiceLines').map((e) => [e.outcome, e.errorCode])).toEqual([
      ['retry', undefined],
      ['retry', undefined],
      ['retry', undefined],
      ['failed', 'provider_unavailable'],
    ]);
    expect(fake.invoiceItems()).toHaveLength(0);
  });
});

describe('errors that are not retried', () => {
  it('same key with different parameters is a non-retryable idempotency_conflict', async () => {
    const { billing } = harness();
    const customer = await newCustomer();
    const input = { stripeCustomerId: customer, currency: 'usd', description: 'first', metadata: {}, idempotencyKey: 'same-key' };
    await billing.createDraftInvoice(input);

    const err = await rejectionOf(billing.createDraftInvoice({ ...input, description: 'second' }));

    expect(err.retryable).toBe(false);
    expect(err.code).toBe('idempotency_conflict');
    expect(billing.calls.createDraftInvoice).toBe(2); // no retry of the conflicting call
    expect(fake.invoices()).toHaveLength(1);
  });

  it('an unknown invoice is a non-retryable resource_missing, sent once', async () => {
    const { billing } = harness();
    const err = await rejectionOf(billing.getInvoice('in_doesnotexist'));
    expect(err).toMatchObject({ retryable: false, code: 'resource_missing' });
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses a write without an idempotency key before calling Stripe', async () => {
    const { billing } = harness();
    const err = await rejectionOf(
      billing.createDraftInvoice({ stripeCustomerId: 'cus_x', currency: 'usd', description: 'd', metadata: {}, idempotencyKey: '' }),
    );
    expect(err).toMatchObject({ retryable: false, code: 'invalid_argument' });
    const err2 = await rejectionOf(billing.finalizeInvoice('in_x', 'x'.repeat(256)));
    expect(err2.code).toBe('invalid_argument');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('finalize twice', () => {
  it('finalizing an already finalized invoice (another key) returns the invoice', async () => {
    const { billing } = harness();
    const customer = await newCustomer();
    const { draft, finalized } = await runInvoice(billing, customer);

    const again = await billing.finalizeInvoice(draft.id, 'some-other-key');

    expect(again).toEqual(finalized);
    expect(again.status).toBe('open');
    expect(billing.calls.getInvoice).toBe(1);
    expect(fake.requests.filter((r) => FINALIZE_PATH.test(r.path)).map((r) => r.status)).toEqual([200, 400]);
    expect(fake.invoices()).toHaveLength(1);
  });
});

describe('pacing', () => {
  it('60 parallel calls at maxRps 20 never hit the fake limit of 25/s', async () => {
    const customer = await newCustomer();
    const draft = await sdk().invoices.create({ customer, auto_advance: false });
    fake.setRateLimit(25); // resets the fake's window: the set-up requests above do not count
    const { billing } = harness({ maxRps: 20 });

    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 60 }, () => billing.getInvoice(draft.id)));
    const elapsed = Date.now() - started;

    expect(results.every((r) => r.id === draft.id)).toBe(true);
    const reads = fake.requests.filter((r) => r.method === 'GET');
    expect(reads).toHaveLength(60);
    expect(reads.filter((r) => r.status === 429)).toHaveLength(0);
    expect(billing.retries.getInvoice).toBe(0);
    // 60 requests spaced 50 ms apart: the last starts ~2.95 s after the first.
    expect(elapsed).toBeGreaterThanOrEqual(2800);
    // Under the fake's limit in every sliding second, as the fake saw the arrivals (~21 expected).
    const at = reads.map((r) => Date.parse(r.at)).sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while ((at[i] as number) - (at[j] as number) >= 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    expect(worst).toBeLessThan(25);
  });

  it('control: without pacing the same burst does hit 429s', async () => {
    const customer = await newCustomer();
    const draft = await sdk().invoices.create({ customer, auto_advance: false });
    fake.setRateLimit(25);
    const { billing } = harness({ maxRps: 100_000, maxAttempts: 1 });

    const settled = await Promise.allSettled(Array.from({ length: 60 }, () => billing.getInvoice(draft.id)));

    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected[0]?.reason).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(fake.requests.filter((r) => r.status === 429).length).toBe(rejected.length);
  });
});

/** The most requests the fake saw start within any one second. */
function busiestSecond(requests: readonly { at: string }[]): number {
  const at = requests.map((r) => Date.parse(r.at)).sort((a, b) => a - b);
  let worst = 0;
  for (let i = 0, j = 0; i < at.length; i++) {
    while ((at[i] as number) - (at[j] as number) >= 1000) j++;
    worst = Math.max(worst, i - j + 1);
  }
  return worst;
}

describe('per-operation pacing', () => {
  async function draftInvoice(): Promise<string> {
    return (await sdk().invoices.create({ customer: await newCustomer(), auto_advance: false })).id;
  }

  it('30 calls of one operation at maxEndpointRps 10 take about 3 s, even with maxRps 1000', async () => {
    const invoice = await draftInvoice();
    fake.setRateLimit('live');
    const { billing } = harness({ maxRps: 1000, maxEndpointRps: 10 });

    const started = Date.now();
    await Promise.all(Array.from({ length: 30 }, () => billing.getInvoice(invoice)));
    const elapsed = Date.now() - started;

    expect(elapsed).toBeGreaterThanOrEqual(2800); // 29 intervals of 100 ms
    const reads = fake.requests.filter((r) => r.method === 'GET');
    expect(reads).toHaveLength(30);
    expect(busiestSecond(reads)).toBeLessThanOrEqual(11);
    expect(fake.stats().rateLimited).toBe(0);
  });

  it('calls of two operations are paced apart and interleave', async () => {
    const invoice = await draftInvoice();
    const { billing } = harness({ maxRps: 1000, maxEndpointRps: 10 });

    const started = Date.now();
    await Promise.all([
      ...Array.from({ length: 20 }, () => billing.getInvoice(invoice)),
      ...Array.from({ length: 20 }, () => billing.listInvoiceLines(invoice)),
    ]);
    const elapsed = Date.now() - started;

    // Each operation needs 1.9 s for its 20 calls; one after the other they would need 3.9 s.
    expect(elapsed).toBeGreaterThanOrEqual(1800);
    expect(elapsed).toBeLessThan(3000);
    const order = fake.requests.filter((r) => r.method === 'GET').map((r) => (r.path.endsWith('/lines') ? 'lines' : 'invoice'));
    expect(order).toHaveLength(40);
    for (let i = 0; i < 40; i += 10) {
      const slice = order.slice(i, i + 10);
      expect(slice.filter((o) => o === 'lines').length).toBeGreaterThanOrEqual(3);
      expect(slice.filter((o) => o === 'invoice').length).toBeGreaterThanOrEqual(3);
    }
  });

  it('a request waits for both pacers: maxRps still bounds all operations together', async () => {
    const invoice = await draftInvoice();
    const { billing } = harness({ maxRps: 10, maxEndpointRps: 10 });

    const started = Date.now();
    await Promise.all([...Array.from({ length: 5 }, () => billing.getInvoice(invoice)), ...Array.from({ length: 5 }, () => billing.listInvoiceLines(invoice))]);

    // 10 requests 100 ms apart; per-operation pacing alone would finish after 0.4 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(850);
  });

  it("paces the SDK's retries too: a retry waits for its endpoint's turn, not only for the SDK's backoff", async () => {
    const invoice = await draftInvoice();
    const { billing } = harness({ maxRps: 1000, maxEndpointRps: 1 });
    fake.injectFailure({ method: 'GET', path: /^\/v1\/invoices\/[^/]+$/, mode: '500' });

    await billing.getInvoice(invoice);

    const [failed, retried] = fake.requests.filter((r) => r.method === 'GET').map((r) => Date.parse(r.at));
    // The SDK's first backoff is 0.5 s; the endpoint's pacer lets one request go per second.
    expect(retried! - failed!).toBeGreaterThanOrEqual(950);
    expect(billing.retries.getInvoice).toBe(1);
  });

  it('names endpoints as Stripe counts them: method and route, ids and query left out', () => {
    expect(stripeEndpoint('post', '/v1/invoices')).toBe('POST /v1/invoices');
    expect(stripeEndpoint('POST', '/v1/invoices/in_1Mt/add_lines')).toBe('POST /v1/invoices/:id/add_lines');
    expect(stripeEndpoint('GET', '/v1/invoices/in_1Mt/lines?limit=100&starting_after=il_9')).toBe('GET /v1/invoices/:id/lines');
    expect(stripeEndpoint('GET', '/v1/invoices?customer=cus_1&limit=100')).toBe('GET /v1/invoices');
    expect(stripeEndpoint('GET', '/v1/invoices/in_2')).toBe('GET /v1/invoices/:id');
  });

  it("control: without it, a burst of one operation trips Stripe's 25/s endpoint limit", async () => {
    const invoice = await draftInvoice();
    fake.setRateLimit('live');
    const { billing } = harness({ maxRps: 1000, maxAttempts: 1 });

    const settled = await Promise.allSettled(Array.from({ length: 40 }, () => billing.getInvoice(invoice)));

    const rejected = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected[0]?.reason).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(fake.stats().rateLimitedBy.endpoint).toBe(rejected.length);
  });
});

describe('Pacer (virtual clock)', () => {
  function virtualClock() {
    let now = 0;
    const timers: { at: number; resolve: () => void }[] = [];
    const settle = async () => {
      for (let i = 0; i < 10; i++) await Promise.resolve();
    };
    return {
      now: () => now,
      sleep: (ms: number) => new Promise<void>((resolve) => timers.push({ at: now + ms, resolve })),
      /** Jumps to t at once (like a stalled event loop), firing the timers that are due. */
      async jumpTo(t: number) {
        now = t;
        timers.sort((a, b) => a.at - b.at);
        while (timers.length > 0 && (timers[0] as { at: number }).at <= now) timers.shift()?.resolve();
        await settle();
      },
      /** Moves to t in 1 ms steps. */
      async advanceTo(t: number) {
        while (now < t) await this.jumpTo(now + 1);
      },
    };
  }

  function startsOf(pacer: Pacer, clock: ReturnType<typeof virtualClock>, n: number) {
    const starts: { i: number; at: number; waited: number }[] = [];
    const all = Array.from({ length: n }, (_, i) => pacer.acquire().then((waited) => void starts.push({ i, at: clock.now(), waited })));
    return { starts, all };
  }

  it('spaces callers 1/rate apart, in call order', async () => {
    const clock = virtualClock();
    const pacer = new Pacer({ ratePerSecond: 10, now: clock.now, sleep: clock.sleep });
    const { starts, all } = startsOf(pacer, clock, 5);

    await clock.jumpTo(0);
    expect(starts.map((s) => s.i)).toEqual([0]);
    expect(pacer.waiting).toBe(4);
    await clock.advanceTo(150);
    expect(starts.map((s) => s.i)).toEqual([0, 1]);
    await clock.advanceTo(400);
    await Promise.all(all);
    expect(starts).toEqual([0, 100, 200, 300, 400].map((at, i) => ({ i, at, waited: at })));
    expect(pacer.waiting).toBe(0);
  });

  it('does not bank idle time, and a stalled clock does not release the backlog at once', async () => {
    const clock = virtualClock();
    const pacer = new Pacer({ ratePerSecond: 10, now: clock.now, sleep: clock.sleep });
    await pacer.acquire(); // t=0

    // Idle for 5 s: the next caller goes at once, the one after waits a full interval (no burst).
    await clock.jumpTo(5000);
    const idle = startsOf(pacer, clock, 2);
    await clock.jumpTo(5000);
    await clock.advanceTo(5100);
    await Promise.all(idle.all);
    expect(idle.starts.map((s) => s.at)).toEqual([5000, 5100]);

    // Three callers queued, then the event loop stalls for 1 s: they still go 100 ms apart.
    const stalled = startsOf(pacer, clock, 3);
    await clock.jumpTo(6100);
    expect(stalled.starts.map((s) => s.at)).toEqual([6100]);
    await clock.advanceTo(6300);
    await Promise.all(stalled.all);
    expect(stalled.starts.map((s) => s.at)).toEqual([6100, 6200, 6300]);
  });

  it('keeps any one-second window at or under rate + 1 starts for many parallel callers', async () => {
    const clock = virtualClock();
    const pacer = new Pacer({ ratePerSecond: 25, now: clock.now, sleep: clock.sleep });
    const { starts, all } = startsOf(pacer, clock, 200);
    await clock.advanceTo(200 * 40);
    await Promise.all(all);
    expect(starts.map((s) => s.i)).toEqual(Array.from({ length: 200 }, (_, i) => i)); // FIFO
    for (const s of starts) {
      expect(starts.filter((o) => o.at >= s.at && o.at < s.at + 1000).length).toBeLessThanOrEqual(26);
    }
    expect(starts[199]?.at).toBe(199 * 40);
  });

  it('keeps its rate when timers fire a millisecond late (node rounds and delays them), still at most rate + 1 per second', async () => {
    const clock = virtualClock();
    const late = (ms: number) => clock.sleep(Math.ceil(ms) + 1);
    const pacer = new Pacer({ ratePerSecond: 23, now: clock.now, sleep: late });
    const { starts, all } = startsOf(pacer, clock, 231);
    await clock.advanceTo(231 * 46);
    await Promise.all(all);
    // 230 intervals of 43.48 ms: 10 s, not 230 x 45 ms = 10.35 s (a rate of 22.2/s instead of 23).
    expect(starts[230]!.at).toBeLessThanOrEqual(10_002);
    for (const s of starts) expect(starts.filter((o) => o.at >= s.at && o.at < s.at + 1000).length).toBeLessThanOrEqual(24);
  });

  it('with a second wait in the turn, counts the interval from when that wait ends', async () => {
    const clock = virtualClock();
    const global = new Pacer({ ratePerSecond: 100, now: clock.now, sleep: clock.sleep });
    const endpoint = new Pacer({ ratePerSecond: 10, now: clock.now, sleep: clock.sleep });
    // A backlog of 50 callers in the process-wide queue (500 ms of it) ...
    const backlog = startsOf(global, clock, 50);
    // ... then 3 callers of one endpoint, whose turn includes the process-wide wait.
    const starts: number[] = [];
    const paced = Array.from({ length: 3 }, () => endpoint.acquire(() => global.acquire()).then(() => void starts.push(clock.now())));

    await clock.advanceTo(800);
    await Promise.all([...paced, backlog.all]);

    // Behind the backlog, then an endpoint interval apart: not bunched 10 ms apart after it.
    expect(starts).toEqual([500, 600, 700]);
    expect(backlog.starts.at(-1)?.at).toBe(490);
  });

  it('holds everyone for a Retry-After, then goes on 1/rate apart in the same order', async () => {
    const clock = virtualClock();
    const pacer = new Pacer({ ratePerSecond: 10, now: clock.now, sleep: clock.sleep });
    await pacer.acquire(); // t=0
    const { starts, all } = startsOf(pacer, clock, 3);
    await clock.jumpTo(0);
    pacer.holdFor(1500);

    await clock.advanceTo(1800);
    await Promise.all(all);

    expect(starts.map((s) => [s.i, s.at])).toEqual([
      [0, 1500],
      [1, 1600],
      [2, 1700],
    ]);
  });

  it('rejects a non-positive rate', () => {
    expect(() => new Pacer({ ratePerSecond: 0 })).toThrow(/ratePerSecond/);
  });
});

describe('configuration', () => {
  it('names STRIPE_SECRET_KEY when it is missing or empty', () => {
    expect(() => stripeConfigFromEnv({})).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => stripeConfigFromEnv({ STRIPE_SECRET_KEY: '  ' })).toThrow(/STRIPE_SECRET_KEY/);
    expect(() => stripeBillingFromEnv({})).toThrow(/STRIPE_SECRET_KEY/);
  });

  it('applies defaults and reads the optional settings', () => {
    expect(stripeConfigFromEnv({ STRIPE_SECRET_KEY: 'sk_test_1' })).toEqual({
      secretKey: 'sk_test_1',
      maxRps: 25,
      maxEndpointRps: 20,
      timeoutMs: 10_000,
      maxAttempts: 5,
    });
    expect(
      stripeConfigFromEnv({
        STRIPE_SECRET_KEY: 'sk_test_1',
        STRIPE_API_HOST: 'localhost',
        STRIPE_API_PORT: '12111',
        STRIPE_API_PROTOCOL: 'http',
        STRIPE_MAX_RPS: '90',
        STRIPE_MAX_ENDPOINT_RPS: '12.5',
        STRIPE_TIMEOUT_MS: '3000',
        STRIPE_MAX_ATTEMPTS: '3',
      }),
    ).toEqual({
      secretKey: 'sk_test_1',
      host: 'localhost',
      port: 12111,
      protocol: 'http',
      maxRps: 90,
      maxEndpointRps: 12.5,
      timeoutMs: 3000,
      maxAttempts: 3,
    });
    expect(() => stripeConfigFromEnv({ STRIPE_SECRET_KEY: 'k', STRIPE_API_PROTOCOL: 'ftp' })).toThrow(/STRIPE_API_PROTOCOL/);
    expect(() => stripeConfigFromEnv({ STRIPE_SECRET_KEY: 'k', STRIPE_MAX_RPS: '0' })).toThrow(/STRIPE_MAX_RPS/);
    expect(() => stripeConfigFromEnv({ STRIPE_SECRET_KEY: 'k', STRIPE_MAX_ENDPOINT_RPS: '-1' })).toThrow(/STRIPE_MAX_ENDPOINT_RPS/);
  });

  it('stripeBillingFromEnv talks to the server named by STRIPE_API_*', async () => {
    const customer = await newCustomer();
    const billing = stripeBillingFromEnv({
      STRIPE_SECRET_KEY: API_KEY,
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String(fake.port),
      STRIPE_API_PROTOCOL: 'http',
    });
    const draft = await billing.createDraftInvoice({
      stripeCustomerId: customer,
      currency: 'usd',
      description: 'env',
      metadata: {},
      idempotencyKey: 'env:draft',
    });
    expect(await billing.getInvoice(draft.id)).toMatchObject({ id: draft.id, status: 'draft', totalMinor: 0 });
  });
});
