/**
 * The Stripe fake, exercised through the real stripe-node SDK so that any
 * wire-level mismatch (encoding, error shapes, headers) shows up here rather
 * than in the product's tests.
 */
import Stripe from 'stripe';
import { startStripeFake, type StripeFake } from '../server';
import { useStripeFake } from '../../../test/support/stripe-fake';

const API_KEY = 'sk_test_fake_unit';

let fake: StripeFake;

function client(overrides: Partial<Stripe.StripeConfig> = {}): Stripe {
  return new Stripe(API_KEY, {
    host: '127.0.0.1',
    port: fake.port,
    protocol: 'http',
    maxNetworkRetries: 0,
    timeout: 2000,
    telemetry: false,
    ...overrides,
  });
}

/** Resolves to the rejection of `p`, failing the test if it resolves. */
async function rejectionOf(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (err) {
    return err as Stripe.errors.StripeError;
  }
  throw new Error('expected the promise to reject');
}

async function rawPost(path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Bearer ${API_KEY}`, ...headers },
    body,
  });
}

useStripeFake((f) => (fake = f));

describe('customers', () => {
  it('creates a customer with metadata and finds it by e-mail', async () => {
    const stripe = client();
    const created = await stripe.customers.create({ name: 'Acme', email: 'billing@acme.test', metadata: { tenant: 't-1' } });
    await stripe.customers.create({ name: 'Other', email: 'other@acme.test' });
    expect(created.id).toMatch(/^cus_[A-Za-z0-9]{24}$/);
    expect(created).toMatchObject({ object: 'customer', name: 'Acme', email: 'billing@acme.test', livemode: false, metadata: { tenant: 't-1' } });
    expect(Number.isInteger(created.created)).toBe(true);
    expect(Math.abs(created.created - Date.now() / 1000)).toBeLessThan(5);

    const found = await stripe.customers.list({ email: 'billing@acme.test', limit: 1 });
    expect(found.data).toEqual([created]);
    expect(fake.customers()).toHaveLength(2);
  });

  it('pages through lists with the SDK auto-pagination, newest first', async () => {
    const stripe = client();
    const ids: string[] = [];
    for (let i = 0; i < 13; i++) ids.push((await stripe.customers.create({ name: `c${i}` })).id);
    const first = await stripe.customers.list({ limit: 5 });
    expect(first.object).toBe('list');
    expect(first.url).toBe('/v1/customers');
    expect(first.has_more).toBe(true);
    expect(first.data.map((c) => c.id)).toEqual(ids.slice().reverse().slice(0, 5));
    const all = await stripe.customers.list({ limit: 5 }).autoPagingToArray({ limit: 100 });
    expect(all.map((c) => c.id)).toEqual(ids.slice().reverse());
  });
});

describe('invoices', () => {
  it('creates a draft, adds lines with metadata, finalizes to open with total = sum of lines', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({ name: 'Acme' });
    const draft = await stripe.invoices.create({
      customer: customer.id,
      auto_advance: false,
      collection_method: 'send_invoice',
      days_until_due: 30,
      currency: 'eur',
      description: 'Usage for 2026-10',
      metadata: { period: '2026-10', customer: 'acme' },
      pending_invoice_items_behavior: 'exclude',
      discounts: '',
    });
    expect(draft.id).toMatch(/^in_/);
    expect(draft).toMatchObject({ object: 'invoice', status: 'draft', total: 0, amount_due: 0, currency: 'eur', auto_advance: false, number: null });
    expect(draft.lines).toMatchObject({ object: 'list', data: [], has_more: false });

    const withLines = await stripe.invoices.addLines(draft.id, {
      lines: [
        { amount: 1234, description: 'API calls', metadata: { meter: 'api_calls', line: '1' } },
        { amount: -200, description: 'Credit', metadata: { meter: 'credit' } },
      ],
    });
    expect(withLines.total).toBe(1034);
    expect(withLines.amount_due).toBe(1034);
    expect(withLines.lines.data.map((l) => l.metadata)).toEqual([{ meter: 'api_calls', line: '1' }, { meter: 'credit' }]);
    // The SDK turns quantity_decimal into its Decimal type; the fake must send a decimal string.
    expect(String(withLines.lines.data[0]?.quantity_decimal)).toBe('1');
    const [a, b] = fake.invoiceItems();
    expect(a).toMatchObject({ object: 'invoiceitem', amount: 1234, invoice: draft.id, customer: customer.id, metadata: { meter: 'api_calls', line: '1' } });
    expect(a?.id).toMatch(/^ii_/);
    expect(withLines.lines.data.map((l) => l.parent?.invoice_item_details?.invoice_item)).toEqual([a?.id, b?.id]);
    expect(await stripe.invoices.retrieve(draft.id)).toEqual(withLines);

    const open = await stripe.invoices.finalizeInvoice(draft.id);
    expect(open.status).toBe('open');
    expect(open.total).toBe(1234 - 200);
    expect(open.amount_due).toBe(1034);
    expect(open.number).toMatch(/^[0-9A-F]{8}-0001$/);
    expect(open.status_transitions.finalized_at).toEqual(expect.any(Number));
    expect(open.due_date).toBe(open.status_transitions.finalized_at! + 30 * 86_400);
    expect(open.metadata).toEqual({ period: '2026-10', customer: 'acme' });
  });

  it('rejects an invoice for a customer that does not exist, and answers 404 for an unknown invoice', async () => {
    const err = await rejectionOf(client().invoices.create({ customer: 'cus_missing' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect([err.statusCode, err.code, err.param]).toEqual([400, 'resource_missing', 'customer']);
    expect(fake.invoices()).toHaveLength(0);

    const unknown = await rejectionOf(client().invoices.retrieve('in_nope'));
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect([unknown.statusCode, unknown.code]).toEqual([404, 'resource_missing']);
  });

  it('lists invoices by customer, newest first, a page at a time', async () => {
    const stripe = client();
    const c1 = await stripe.customers.create({ name: 'one' });
    const c2 = await stripe.customers.create({ name: 'two' });
    const i1 = await stripe.invoices.create({ customer: c1.id });
    const i2 = await stripe.invoices.create({ customer: c1.id });
    await stripe.invoices.create({ customer: c2.id });

    const mine = await stripe.invoices.list({ customer: c1.id });
    expect(mine.data.map((i) => i.id)).toEqual([i2.id, i1.id]);
    const page = await stripe.invoices.list({ customer: c1.id, limit: 1 });
    expect([page.data.map((i) => i.id), page.has_more]).toEqual([[i2.id], true]);
    const next = await stripe.invoices.list({ customer: c1.id, limit: 1, starting_after: i2.id });
    expect([next.data.map((i) => i.id), next.has_more]).toEqual([[i1.id], false]);
  });

  it('refuses to finalize twice (distinct requests) and to change a finalized invoice', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const inv = await stripe.invoices.create({ customer: customer.id });
    await stripe.invoices.addLines(inv.id, { lines: [{ amount: 100 }] });
    await stripe.invoices.finalizeInvoice(inv.id);

    // stripe-node gives every POST its own generated Idempotency-Key, so this is a new request.
    const again = await rejectionOf(stripe.invoices.finalizeInvoice(inv.id));
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again.statusCode).toBe(400);
    expect(again.code).toBe('invoice_already_finalized');

    const add = await rejectionOf(stripe.invoices.addLines(inv.id, { lines: [{ amount: 1 }] }));
    expect(add.code).toBe('invoice_already_finalized');
    expect((await stripe.invoices.retrieve(inv.id)).total).toBe(100);
  });

  it('replays a finalize sent twice with the same idempotency key', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const inv = await stripe.invoices.create({ customer: customer.id });
    await stripe.invoices.addLines(inv.id, { lines: [{ amount: 100 }] });
    const first = await stripe.invoices.finalizeInvoice(inv.id, {}, { idempotencyKey: 'finalize-1' });
    const second = await stripe.invoices.finalizeInvoice(inv.id, {}, { idempotencyKey: 'finalize-1' });
    expect(second).toEqual(first);
    expect(fake.requests.filter((r) => r.path.endsWith('/finalize')).map((r) => r.replayed)).toEqual([false, true]);
  });

  it('marks an invoice with nothing to collect as paid on finalize, like Stripe', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const inv = await stripe.invoices.create({ customer: customer.id });
    const paid = await stripe.invoices.finalizeInvoice(inv.id);
    expect(paid.status).toBe('paid');
    expect(paid.amount_due).toBe(0);
  });

  it('embeds at most 10 lines; the rest are paged at /lines in the order they were added', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const inv = await stripe.invoices.create({ customer: customer.id, currency: 'usd' });
    const full = await stripe.invoices.addLines(inv.id, { lines: Array.from({ length: 12 }, (_, i) => ({ amount: i + 1 })) });
    expect(full.total).toBe(78);
    expect(full.lines.data).toHaveLength(10);
    expect(full.lines.has_more).toBe(true);
    const lines = await stripe.invoices.listLineItems(inv.id, { limit: 5 }).autoPagingToArray({ limit: 100 });
    expect(lines.map((l) => l.amount)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('rejects parameters it does not know, without burning the idempotency key', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const bad = await rejectionOf(stripe.invoices.create({ customer: customer.id, footer: 'x' }, { idempotencyKey: 'inv-bad-then-good' }));
    expect(bad).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(bad.code).toBe('parameter_unknown');
    // Validation failures are not saved under the key (as on Stripe), so a corrected request may reuse it.
    const good = await stripe.invoices.create({ customer: customer.id }, { idempotencyKey: 'inv-bad-then-good' });
    expect(good.status).toBe('draft');
  });

  it("inherits the customer's coupon unless created with discounts=''", async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    fake.setCustomerCoupon(customer.id, { percentOff: 10 });
    const discounted = await stripe.invoices.create({ customer: customer.id });
    const plain = await stripe.invoices.create({ customer: customer.id, discounts: '' });
    expect((await stripe.invoices.addLines(discounted.id, { lines: [{ amount: 1000 }] })).total).toBe(900);
    expect((await stripe.invoices.addLines(plain.id, { lines: [{ amount: 1000 }] })).total).toBe(1000);
  });
});

describe('add_lines', () => {
  async function draft(currency = 'eur'): Promise<{ stripe: Stripe; customer: string; invoice: string }> {
    const stripe = client();
    const customer = (await stripe.customers.create({ name: 'Acme' })).id;
    const invoice = (await stripe.invoices.create({ customer, currency, metadata: { period: '2026-10' } })).id;
    return { stripe, customer, invoice };
  }

  const lines = (n: number, from = 0): Stripe.InvoiceAddLinesParams.Line[] =>
    Array.from({ length: n }, (_, i) => ({ amount: 100 + from + i, description: `line ${from + i}`, metadata: { line_key: `k${from + i}` } }));

  it('adds every line as an invoice item of the draft and returns the updated invoice', async () => {
    const { stripe, customer, invoice } = await draft();
    const updated = await stripe.invoices.addLines(invoice, {
      lines: [
        { amount: 9000, description: 'API calls', metadata: { line_key: 'api' }, period: { start: 1_790_000_000, end: 1_792_000_000 } },
        { amount: 2550, description: 'Storage', metadata: { line_key: 'storage' } },
        { amount: -500, description: 'Credit', metadata: { line_key: 'credit' } },
      ],
      invoice_metadata: { lines: '3', period: '' },
    });

    expect(updated).toMatchObject({ id: invoice, object: 'invoice', status: 'draft', total: 11_050, amount_due: 11_050 });
    expect(updated.metadata).toEqual({ lines: '3' }); // merged: `period` sent empty is unset
    expect(updated.lines.data.map((l) => [l.amount, l.description, l.metadata])).toEqual([
      [9000, 'API calls', { line_key: 'api' }],
      [2550, 'Storage', { line_key: 'storage' }],
      [-500, 'Credit', { line_key: 'credit' }],
    ]);
    expect(updated.lines.data[0]?.period).toEqual({ start: 1_790_000_000, end: 1_792_000_000 });

    const items = fake.invoiceItems();
    expect(items.map((i) => i.metadata.line_key)).toEqual(['api', 'storage', 'credit']);
    for (const item of items) expect(item).toMatchObject({ invoice, customer, currency: 'eur' });
    const listed = await stripe.invoices.listLineItems(invoice, { limit: 100 });
    expect(listed.data.map((l) => l.parent?.invoice_item_details?.invoice_item)).toEqual(items.map((i) => i.id));
    expect((await stripe.invoices.retrieve(invoice)).total).toBe(11_050);
    expect((await stripe.invoices.finalizeInvoice(invoice)).total).toBe(11_050);
  });

  it('refuses to add lines to an invoice that is no longer a draft', async () => {
    const { stripe, invoice } = await draft();
    await stripe.invoices.addLines(invoice, { lines: lines(1) });
    await stripe.invoices.finalizeInvoice(invoice);

    const err = await rejectionOf(stripe.invoices.addLines(invoice, { lines: lines(2, 1) }));

    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('invoice_already_finalized');
    expect(fake.invoiceItems()).toHaveLength(1);
    const missing = await rejectionOf(stripe.invoices.addLines('in_missing', { lines: lines(1) }));
    expect([missing.statusCode, missing.code]).toEqual([404, 'resource_missing']);
  });

  it('replays the same key with the same lines, and refuses that key with other lines', async () => {
    const { stripe, invoice } = await draft();
    const first = await stripe.invoices.addLines(invoice, { lines: lines(3) }, { idempotencyKey: 'lines-1' });
    const again = await stripe.invoices.addLines(invoice, { lines: lines(3) }, { idempotencyKey: 'lines-1' });

    expect(again).toEqual(first);
    expect(fake.invoiceItems()).toHaveLength(3);
    expect(fake.requests.filter((r) => r.idempotencyKey === 'lines-1').map((r) => [r.status, r.replayed])).toEqual([
      [200, false],
      [200, true],
    ]);

    const other = await rejectionOf(stripe.invoices.addLines(invoice, { lines: lines(4) }, { idempotencyKey: 'lines-1' }));
    expect(other).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(fake.invoiceItems()).toHaveLength(3);
  });

  it('names the line in parameter errors and adds nothing from a request with a bad line', async () => {
    const { stripe, invoice } = await draft();
    const noLines = await rejectionOf(stripe.invoices.addLines(invoice, { lines: [] }));
    expect([noLines.code, noLines.param]).toEqual(['parameter_missing', 'lines']);
    const noAmount = await rejectionOf(stripe.invoices.addLines(invoice, { lines: [...lines(1), { description: 'free text' }] }));
    expect([noAmount.code, noAmount.param]).toEqual(['parameter_missing', 'lines[1][amount]']);
    const unknown = await rejectionOf(stripe.invoices.addLines(invoice, { lines: [{ amount: 1, quantity: 2 }] }));
    expect([unknown.code, unknown.param]).toEqual(['parameter_unknown', 'lines[0][quantity]']);
    const period = await rejectionOf(stripe.invoices.addLines(invoice, { lines: [...lines(2), { amount: 5, period: { start: 20, end: 10 } }] }));
    expect(period.param).toBe('lines[2][period][end]');
    expect(fake.invoiceItems()).toHaveLength(0);
  });
});

describe("Stripe's limits", () => {
  async function draft(): Promise<{ stripe: Stripe; customer: string; invoice: string }> {
    const stripe = client();
    const customer = (await stripe.customers.create({})).id;
    return { stripe, customer, invoice: (await stripe.invoices.create({ customer, currency: 'usd' })).id };
  }
  const lines = (n: number): Stripe.InvoiceAddLinesParams.Line[] => Array.from({ length: n }, (_, i) => ({ amount: i + 1 }));

  it('takes up to 250 lines in one add_lines call, and up to 250 over several; one more and nothing is added', async () => {
    const { stripe, invoice } = await draft();
    const tooMany = await rejectionOf(stripe.invoices.addLines(invoice, { lines: lines(251) }));
    expect(tooMany).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect([tooMany.statusCode, tooMany.param]).toEqual([400, 'lines']);
    expect(tooMany.message).toMatch(/at most 250 invoice items/);
    expect(fake.invoiceItems()).toHaveLength(0);

    const full = await stripe.invoices.addLines(invoice, { lines: lines(250) });
    expect(fake.invoices()[0]?.lines.total_count).toBe(250);
    expect(full.total).toBe((250 * 251) / 2);
    const oneMore = await rejectionOf(stripe.invoices.addLines(invoice, { lines: lines(1) }));
    expect([oneMore.statusCode, oneMore.param]).toEqual([400, 'lines']);
    expect(oneMore.message).toMatch(/at most 250 invoice items/);
    expect(await stripe.invoices.listLineItems(invoice, { limit: 100 }).autoPagingToArray({ limit: 1000 })).toHaveLength(250);

    const { invoice: other } = await draft();
    await stripe.invoices.addLines(other, { lines: lines(249) });
    const two = await rejectionOf(stripe.invoices.addLines(other, { lines: lines(2) }));
    expect(two.message).toMatch(/has 249 and this request would add 2/);
    expect(fake.invoiceItems()).toHaveLength(250 + 249);
  });

  it('refuses amounts of more than eight digits, naming the parameter; negative ones too', async () => {
    const { stripe, invoice } = await draft();
    const both = await stripe.invoices.addLines(invoice, { lines: [{ amount: 99_999_999 }, { amount: -99_999_999 }] });
    expect(both.lines.data.map((l) => l.amount)).toEqual([99_999_999, -99_999_999]);

    for (const amount of [100_000_000, -100_000_000]) {
      const err = await rejectionOf(stripe.invoices.addLines(invoice, { lines: [...lines(3), { amount }] }));
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect([err.statusCode, err.code, err.param]).toEqual([400, 'amount_too_large', 'lines[3][amount]']);
      expect(err.message).toMatch(/^Amount must be no more than 99999999/);
    }
    expect(fake.invoiceItems()).toHaveLength(2);
  });
});

describe('idempotency', () => {
  it('replays the same key + params: same object, nothing new created', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    const params = { customer: customer.id, currency: 'usd', metadata: { k: 'v' } };
    const first = await stripe.invoices.create(params, { idempotencyKey: 'inv-1' });
    const second = await stripe.invoices.create(params, { idempotencyKey: 'inv-1' });
    expect(second.id).toBe(first.id);
    expect(fake.invoices()).toHaveLength(1);
    const log = fake.requests.filter((r) => r.idempotencyKey === 'inv-1');
    expect(log.map((r) => [r.status, r.replayed])).toEqual([
      [200, false],
      [200, true],
    ]);
  });

  it('replays byte for byte with Idempotent-Replayed: true', async () => {
    const first = await rawPost('/v1/customers', 'name=Raw&metadata[a]=1', { 'Idempotency-Key': 'raw-1' });
    const second = await rawPost('/v1/customers', 'metadata[a]=1&name=Raw', { 'Idempotency-Key': 'raw-1' });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(await second.text()).toBe(await first.text());
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('original-request')).toBe(first.headers.get('request-id'));
    expect(fake.customers()).toHaveLength(1);
  });

  it('scopes keys to the API key', async () => {
    await rawPost('/v1/customers', 'name=A', { 'Idempotency-Key': 'shared' });
    const other = await rawPost('/v1/customers', 'name=A', { 'Idempotency-Key': 'shared', Authorization: 'Bearer sk_test_other' });
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(fake.customers()).toHaveLength(2);
  });

  it('rejects the same key with different parameters or a different endpoint', async () => {
    const stripe = client();
    await stripe.customers.create({ name: 'A' }, { idempotencyKey: 'k-1' });
    const params = await rejectionOf(stripe.customers.create({ name: 'B' }, { idempotencyKey: 'k-1' }));
    expect(params).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(params.statusCode).toBe(400);
    expect(params.rawType).toBe('idempotency_error');
    const endpoint = await rejectionOf(stripe.invoices.create({ customer: 'cus_x' }, { idempotencyKey: 'k-1' }));
    expect(endpoint).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(fake.customers()).toHaveLength(1);
  });

  it('answers 409 to a concurrent request with a key that is still in flight', async () => {
    const stripe = client();
    fake.injectFailure({ method: 'POST', path: '/v1/customers', mode: 'delay', holdMs: 300 });
    const first = stripe.customers.create({ name: 'slow' }, { idempotencyKey: 'busy' });
    await new Promise((r) => setTimeout(r, 100));
    const err = await rejectionOf(stripe.customers.create({ name: 'slow' }, { idempotencyKey: 'busy' }));
    // stripe-node maps 409 to StripeAPIError (only 400/404 become StripeIdempotencyError).
    expect(err.statusCode).toBe(409);
    expect(err.rawType).toBe('idempotency_error');
    expect(err.code).toBe('idempotency_key_in_use');
    const created = await first;
    expect(fake.customers().map((c) => c.id)).toEqual([created.id]);
    // Nothing was saved for the rejected request: the key now replays the first result.
    const replay = await stripe.customers.create({ name: 'slow' }, { idempotencyKey: 'busy' });
    expect(replay.id).toBe(created.id);
  });
});

describe('failure injection', () => {
  it('500: the SDK throws StripeAPIError and nothing was created', async () => {
    fake.injectFailure({ method: 'POST', path: '/v1/customers', mode: '500', times: 1 });
    const err = await rejectionOf(client().customers.create({ name: 'x' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(err.statusCode).toBe(500);
    expect(fake.customers()).toHaveLength(0);
    // Only once.
    await client().customers.create({ name: 'x' });
    expect(fake.customers()).toHaveLength(1);
  });

  it('429: the SDK throws StripeRateLimitError and nothing was created', async () => {
    const stripe = client();
    const customer = await stripe.customers.create({});
    fake.injectFailure({ method: 'POST', path: /^\/v1\/invoices$/, mode: '429' });
    const err = await rejectionOf(stripe.invoices.create({ customer: customer.id }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(err.statusCode).toBe(429);
    expect(err.code).toBe('rate_limit');
    expect(fake.invoices()).toHaveLength(0);
  });

  it('timeout_after_commit: the client times out, a retry with the same key gets the committed object', async () => {
    const stripe = client({ timeout: 500, maxNetworkRetries: 0 });
    const customer = await stripe.customers.create({});
    fake.injectFailure({ method: 'POST', path: '/v1/invoices', mode: 'timeout_after_commit', holdMs: 5000 });
    const started = Date.now();
    const err = await rejectionOf(stripe.invoices.create({ customer: customer.id, metadata: { run: 'r1' } }, { idempotencyKey: 'inv-r1' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(fake.invoices()).toHaveLength(1); // committed despite the timeout

    const retried = await stripe.invoices.create({ customer: customer.id, metadata: { run: 'r1' } }, { idempotencyKey: 'inv-r1' });
    expect(fake.invoices().map((i) => i.id)).toEqual([retried.id]);
    const log = fake.requests.filter((r) => r.idempotencyKey === 'inv-r1');
    expect(log.map((r) => [r.status, r.replayed, r.injected])).toEqual([
      [null, false, 'timeout_after_commit'],
      [200, true, null],
    ]);
  });

  it('timeout_after_commit shorter than the client timeout: stripe-node retries the reset once by itself', async () => {
    // The SDK retries ECONNRESET once even with maxNetworkRetries: 0, reusing its idempotency key.
    const stripe = client({ timeout: 2000, maxNetworkRetries: 0 });
    fake.injectFailure({ method: 'POST', path: '/v1/customers', mode: 'timeout_after_commit', holdMs: 50 });
    const created = await stripe.customers.create({ name: 'reset' });
    expect(fake.customers().map((c) => c.id)).toEqual([created.id]);
    expect(fake.requests.map((r) => r.replayed)).toEqual([false, true]);
  });

  it("the SDK's own retries (maxNetworkRetries: 2) get past a single injected 500", async () => {
    const stripe = client({ maxNetworkRetries: 2 });
    fake.injectFailure({ method: 'POST', path: '/v1/customers', mode: '500', times: 1 });
    const created = await stripe.customers.create({ name: 'retry' });
    expect(fake.customers().map((c) => c.id)).toEqual([created.id]);
    const log = fake.requests;
    expect(log.map((r) => r.status)).toEqual([500, 200]);
    expect(log[0]?.idempotencyKey).toBe(log[1]?.idempotencyKey);
    expect(log[0]?.idempotencyKey).toMatch(/^stripe-node-retry-/);
  });

  it('global rate limit: a burst beyond it gets 429s', async () => {
    const stripe = client();
    await stripe.customers.create({});
    fake.setRateLimit(3);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => stripe.customers.list({ limit: 1 })));
    fake.setRateLimit(undefined);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(rejected).toHaveLength(7);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
  });
});

describe('rate limits', () => {
  async function twoInvoices(stripe: Stripe): Promise<[string, string]> {
    const customer = (await stripe.customers.create({})).id;
    return [(await stripe.invoices.create({ customer })).id, (await stripe.invoices.create({ customer })).id];
  }
  const reason = (err: Stripe.errors.StripeError): unknown => (err.headers as Record<string, string>)['stripe-rate-limited-reason'];

  it('limits each endpoint on its own: GET /v1/invoices/:id for any id shares one budget', async () => {
    const stripe = client();
    const [a, b] = await twoInvoices(stripe);
    fake.setRateLimit({ perEndpoint: 3 });

    const results = await Promise.allSettled([
      ...[a, b, a, b, a, b].map((id) => stripe.invoices.retrieve(id)),
      ...Array.from({ length: 6 }, () => stripe.invoices.list({ limit: 1 })),
    ]);

    const outcome = results.map((r) => r.status);
    expect(outcome.slice(0, 6).filter((s) => s === 'fulfilled')).toHaveLength(3);
    expect(outcome.slice(6).filter((s) => s === 'fulfilled')).toHaveLength(3);
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      const err = r.reason as Stripe.errors.StripeError;
      expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
      expect([err.statusCode, err.code, reason(err)]).toEqual([429, 'rate_limit', 'endpoint-rate']);
    }
  });

  it('checks the global limit first; a refused request counts against neither limit', async () => {
    const stripe = client();
    const [a] = await twoInvoices(stripe);
    fake.setRateLimit({ global: 4, perEndpoint: 3 });

    const calls = [
      () => stripe.invoices.retrieve(a),
      () => stripe.invoices.retrieve(a),
      () => stripe.invoices.retrieve(a),
      () => stripe.invoices.retrieve(a), // 4th of the endpoint: refused, not counted globally
      () => stripe.invoices.list({ limit: 1 }), // 4th admitted request overall
      () => stripe.invoices.list({ limit: 1 }), // 5th: over the global limit
    ];
    const reasons: unknown[] = [];
    for (const call of calls)
      reasons.push(
        await call().then(
          () => 'ok',
          (err: Stripe.errors.StripeError) => reason(err),
        ),
      );

    expect(reasons).toEqual(['ok', 'ok', 'ok', 'endpoint-rate', 'ok', 'global-rate']);
    expect(fake.stats()).toEqual({
      requests: 9, // 3 set-up requests before the limit was set, then 6
      rateLimited: 2,
      rateLimitedBy: { global: 1, endpoint: 1, injected: 0 },
      endpoints: {
        'POST /v1/customers': { requests: 1, rateLimited: 0 },
        'POST /v1/invoices': { requests: 2, rateLimited: 0 },
        'GET /v1/invoices/:id': { requests: 4, rateLimited: 1 },
        'GET /v1/invoices': { requests: 2, rateLimited: 1 },
      },
    });
  });

  it("'live' is Stripe's live mode: 25 per endpoint under 100 overall", async () => {
    const stripe = client();
    const [a] = await twoInvoices(stripe);
    fake.setRateLimit('live');
    expect(fake.state().rateLimit).toEqual({ global: 100, perEndpoint: 25 });

    const results = await Promise.allSettled(Array.from({ length: 30 }, () => stripe.invoices.retrieve(a)));

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(25);
    expect(fake.stats().rateLimitedBy).toEqual({ global: 0, endpoint: 5, injected: 0 });
  });

  it('keeps the numeric form for the global limit; undefined lifts every limit', () => {
    fake.setRateLimit({ perEndpoint: 2 });
    fake.setRateLimit(3);
    expect(fake.state().rateLimit).toEqual({ global: 3, perEndpoint: 2 });
    fake.setRateLimit({ global: null });
    expect(fake.state().rateLimit).toEqual({ global: null, perEndpoint: 2 });
    fake.setRateLimit(undefined);
    expect(fake.state().rateLimit).toEqual({ global: null, perEndpoint: null });
    expect(() => fake.setRateLimit({ perEndpoint: 0 })).toThrow(/positive integer/);
  });

  it('start options set the limits that reset() restores, and reset() clears the stats', async () => {
    const local = await startStripeFake({ port: 0, rateLimit: { global: 7, perEndpoint: 3 } });
    try {
      expect(local.state().rateLimit).toEqual({ global: 7, perEndpoint: 3 });
      await fetch(`${local.url}/v1/customers`, { headers: { Authorization: `Bearer ${API_KEY}` } });
      local.setRateLimit(undefined);
      expect(local.stats().endpoints['GET /v1/customers']).toEqual({ requests: 1, rateLimited: 0 });

      local.reset();

      expect(local.state().rateLimit).toEqual({ global: 7, perEndpoint: 3 });
      expect(local.stats()).toEqual({ requests: 0, rateLimited: 0, rateLimitedBy: { global: 0, endpoint: 0, injected: 0 }, endpoints: {} });
    } finally {
      await local.stop();
    }
    const sandbox = await startStripeFake({ port: 0, rateLimit: 'sandbox' });
    expect(sandbox.state().rateLimit).toEqual({ global: 25, perEndpoint: 25 });
    await sandbox.stop();
  });

  it('counts requests per endpoint, add_lines and injected 429s included, in stats() and /_fake/state', async () => {
    const stripe = client();
    const [a] = await twoInvoices(stripe);
    await stripe.invoices.addLines(a, { lines: [{ amount: 1 }] });
    fake.injectFailure({ method: 'POST', path: /\/add_lines$/, mode: '429' });
    await expect(stripe.invoices.addLines(a, { lines: [{ amount: 2 }] })).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    await expect(stripe.rawRequest('GET', '/v1/charges')).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);

    const state = (await (await fetch(`${fake.url}/_fake/state`)).json()) as { stats: unknown };

    expect(state.stats).toEqual(fake.stats());
    expect(fake.stats()).toMatchObject({
      requests: 6, // the unknown route counts here, under no endpoint
      rateLimited: 1,
      rateLimitedBy: { global: 0, endpoint: 0, injected: 1 },
      endpoints: { 'POST /v1/invoices/:id/add_lines': { requests: 2, rateLimited: 1 } },
    });
    expect(Object.keys(fake.stats().endpoints)).not.toContain('GET /v1/charges');
  });
});

describe('HTTP surface', () => {
  it('answers 401 without an API key and 404 with Stripe error JSON for unknown routes', async () => {
    const noKey = await fetch(`${fake.url}/v1/customers`, { method: 'POST', body: 'name=x' });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');

    const unknown = await fetch(`${fake.url}/v1/charges/ch_1`, { headers: { Authorization: `Bearer ${API_KEY}` } });
    expect(unknown.status).toBe(404);
    const body = (await unknown.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('Unrecognized request URL');

    const viaSdk = await rejectionOf(client().rawRequest('GET', '/v1/charges/ch_1'));
    expect(viaSdk).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(viaSdk.statusCode).toBe(404);
  });

  it('exposes state, failures and reset under /_fake without auth', async () => {
    const stripe = client();
    const inject = await fetch(`${fake.url}/_fake/failures`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ method: 'POST', pathRegex: '^/v1/customers$', mode: '500', times: 2 }),
    });
    expect(inject.status).toBe(200);
    await expect(stripe.customers.create({})).rejects.toBeInstanceOf(Stripe.errors.StripeAPIError);

    const cleared = await fetch(`${fake.url}/_fake/failures`, { method: 'DELETE' });
    expect(cleared.status).toBe(200);
    const customer = await stripe.customers.create({ name: 'after-clear' });

    const state = (await (await fetch(`${fake.url}/_fake/state`)).json()) as {
      customers: { id: string }[];
      failures: unknown[];
      requests: { path: string; status: number | null; injected: string | null }[];
    };
    expect(state.customers.map((c) => c.id)).toEqual([customer.id]);
    expect(state.failures).toEqual([]);
    expect(state.requests.map((r) => [r.path, r.status, r.injected])).toEqual([
      ['/v1/customers', 500, '500'],
      ['/v1/customers', 200, null],
    ]);

    const reset = await fetch(`${fake.url}/_fake/reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect(fake.customers()).toHaveLength(0);
    expect(fake.requests).toHaveLength(0);

    const badSpec = await fetch(`${fake.url}/_fake/failures`, { method: 'POST', body: JSON.stringify({ path: '/v1', mode: 'boom' }) });
    expect(badSpec.status).toBe(400);
  });
});

describe('lifecycle', () => {
  it('stop() closes held sockets and later requests fail to connect', async () => {
    const local = await startStripeFake({ port: 0 });
    const stripe = new Stripe(API_KEY, { host: '127.0.0.1', port: local.port, protocol: 'http', maxNetworkRetries: 0, timeout: 10_000 });
    local.injectFailure({ method: 'POST', path: '/v1/customers', mode: 'timeout_after_commit', holdMs: 60_000 });
    const held = rejectionOf(stripe.customers.create({}));
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await local.stop();
    const err = await held;
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(stripe.customers.retrieve('cus_x')).rejects.toBeInstanceOf(Stripe.errors.StripeConnectionError);
  });
});
