import { QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import Stripe from 'stripe';
import { Period } from '../../lib/domain/period';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * The monthly run end to end on the emulators and the Stripe fake, through the real stripe SDK:
 * HTTP run -> invoice queue -> worker -> Stripe draft/add_lines/finalize -> invoice records.
 */
let t: TestStack;
let stripe: Stripe;
let dynamo: DynamoDBClient;
let container: () => { clock: { now(): Date } };

const now = new Date();
const closed = Period.containing(now).previous(); // the period that just ended
const current = closed.next();
const inClosed = () => new Date(closed.end.getTime() - 60 * 60_000).toISOString(); // its last hour

beforeAll(async () => {
  t = await startTestStack({
    visibilityTimeoutSeconds: 3,
    env: { CATALOG_FILE: '', INVOICE_GRACE_MINUTES: '0', STRIPE_TIMEOUT_MS: '1500', STRIPE_MAX_ATTEMPTS: '4', INVOICE_FAN_OUT_PAGE_SIZE: '4' },
  });
  stripe = new Stripe('sk_test_local', { host: '127.0.0.1', port: t.stack.stripe.port, protocol: 'http' });
  dynamo = (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).dynamoClient();
  container = (require('../../lib/platform/container') as { container: typeof container }).container;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});
afterEach(() => {
  dynamo.middlewareStack.remove('fault');
  t.stack.stripe.clearFailures();
});

/** Runs `fn` with the stack's clock at `at` (the handlers run in this process). */
async function at<T>(when: Date, fn: () => Promise<T>): Promise<T> {
  const c = container();
  const realClock = c.clock;
  c.clock = { now: () => new Date(when) };
  try {
    return await fn();
  } finally {
    c.clock = realClock;
  }
}

/** A customer created in the closed period (so it owes that period's fixed fees), optionally linked to Stripe. */
async function customer(id: string, planId: string, withStripe = true, createdAt = closed.start) {
  const stripeCustomerId = withStripe ? (await stripe.customers.create({ name: id })).id : undefined;
  const res = await at(createdAt, () =>
    t.request('PUT', `/api/v1/customers/${id}`, { body: { name: id, planId, ...(stripeCustomerId ? { stripeCustomerId } : {}) } }),
  );
  expect(res.status).toBe(201);
  return stripeCustomerId;
}

async function usage(subject: string, events: [type: string, value: number][], time = inClosed()) {
  const res = await t.sendEvents(events.map(([type, value]) => cloudEvent({ subject, type, time, data: { value } })));
  expect(res.status).toBe(202);
}

async function waitForRun(period: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.request('GET', `/api/v1/invoice-runs/${period}`);
    if (res.status === 200 && res.body.status === 'completed') return res.body;
    if (Date.now() > deadline) throw new Error(`run ${period} did not complete: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const invoicesOf = async (id: string) => (await t.request('GET', `/api/v1/customers/${id}/invoices`)).body.invoices as any[];
const stripeInvoicesOf = (stripeId: string) => t.stack.stripe.invoices().filter((i) => i.customer === stripeId);
const stripeItemsOf = (invoiceId: string) => t.stack.stripe.invoiceItems().filter((i) => i.invoice === invoiceId);
const cents = (amount: string) => Math.round(Number(amount) * 100);
const ADD_LINES = /^\/v1\/invoices\/[^/]+\/add_lines$/;
/** The add_lines requests for the customer's Stripe invoices (the line keys name the customer). */
const addLinesOf = (id: string) => t.stack.stripe.requests.filter((r) => ADD_LINES.test(r.path) && r.idempotencyKey?.startsWith(`inv:${id}:`));

describe('the monthly run', () => {
  let acme: string, pro: string;
  let preview: any;

  beforeAll(async () => {
    acme = (await customer('cus_inv_acme', 'default'))!;
    pro = (await customer('cus_inv_pro', 'pro'))!;
    await customer('cus_inv_local', 'default', false);
    await customer('cus_inv_idle', 'default');
    await usage('cus_inv_acme', [
      ['api_calls', 100000],
      ['api_calls', 23456],
      ['storage_gb', 150],
      ['storage_gb', 20],
      ['seats', 10],
    ]);
    await usage('cus_inv_pro', [
      ['api_calls', 60000],
      ['storage_gb', 120],
      ['seats', 30],
    ]);
    await usage('cus_inv_local', [['api_calls', 20000]]);
    await usage('cus_inv_nocustomer', [['compute_seconds', 4600]]); // metered before being created
    await t.drain();
    preview = (await t.request('GET', `/api/v1/customers/cus_inv_acme/invoices/upcoming?period=${closed.key}`)).body;
    const run = await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    expect(run.status).toBe(202);
    expect(run.body).toMatchObject({ period: closed.key, status: 'starting' });
    expect((await waitForRun(closed.key)).total).toBeGreaterThanOrEqual(5);
  }, 120_000);

  it('finalizes exactly one Stripe invoice per billable customer, right to the cent', async () => {
    const [acmeInvoice] = await invoicesOf('cus_inv_acme');
    expect(acmeInvoice).toMatchObject({ period: closed.key, status: 'finalized', total: '188.98', stripeStatus: 'open' });
    // 90,000 x 0.001 + 23,456 x 0.0005; 95 x 0.25 + 50 x 0.15; 7 x 8.00
    expect(acmeInvoice.lines.map((l: any) => [l.lineKey, l.amount])).toEqual([
      ['api_calls:tier:1', '90.00'],
      ['api_calls:tier:2', '11.73'],
      ['storage_gb:tier:1', '23.75'],
      ['storage_gb:tier:2', '7.50'],
      ['seats:tier:1', '56.00'],
    ]);
    const [proInvoice] = await invoicesOf('cus_inv_pro');
    expect(proInvoice).toMatchObject({ status: 'finalized', total: '147.00' }); // 49 base + 48 volume + 3 x 10 packages + 20 flat

    for (const [stripeId, record] of [
      [acme, acmeInvoice],
      [pro, proInvoice],
    ] as const) {
      const invoices = stripeInvoicesOf(stripeId);
      expect(invoices).toHaveLength(1);
      expect(invoices[0]).toMatchObject({ id: record.stripeInvoiceId, status: 'open', total: cents(record.total) });
      const items = stripeItemsOf(invoices[0]!.id);
      expect(items).toHaveLength(record.lines.length);
      expect(items.reduce((s, i) => s + i.amount, 0)).toBe(cents(record.total));
    }
    expect(preview).toMatchObject({ status: 'upcoming', total: acmeInvoice.total });
    expect(preview.lines).toEqual(acmeInvoice.lines);
  });

  it('records a customer without a Stripe id as not_synced and a zero period as no_charge, without Stripe', async () => {
    expect((await invoicesOf('cus_inv_local'))[0]).toMatchObject({ status: 'not_synced', total: '10.00', stripeInvoiceId: null });
    expect((await invoicesOf('cus_inv_idle'))[0]).toMatchObject({ status: 'no_charge', total: '0.00' });
    expect((await invoicesOf('cus_inv_nocustomer'))[0]).toMatchObject({ status: 'not_synced', total: '5.00', planId: 'default' });
    const run = (await t.request('GET', `/api/v1/invoice-runs/${closed.key}`)).body;
    expect(run).toMatchObject({ status: 'completed', failed: 0, pending: 0 });
    expect(run.done + run.skipped + run.waiting).toBe(run.total);
    expect(run.skipped).toBeGreaterThanOrEqual(1);
    expect(run.waiting).toBe(2); // invoiced, waiting for a Stripe customer
  });

  it('sends a not_synced invoice once the customer is linked: re-running the period sends it, nothing twice', async () => {
    const stripeId = (await stripe.customers.create({ name: 'cus_inv_local' })).id;
    expect((await t.request('PATCH', '/api/v1/customers/cus_inv_local', { body: { stripeCustomerId: stripeId } })).status).toBe(200);
    const res = await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    expect(res.status).toBe(202);
    const run = await waitForRun(closed.key, 60_000);
    expect(run).toMatchObject({ status: 'completed', failed: 0, waiting: 1 }); // cus_inv_nocustomer was never created
    const [record] = await invoicesOf('cus_inv_local');
    expect(record).toMatchObject({ status: 'finalized', total: '10.00', stripeInvoiceId: expect.any(String) });
    expect(stripeInvoicesOf(stripeId).map((i) => i.total)).toEqual([1000]);
  });

  it('does nothing new when the run is started again or a job is delivered twice', async () => {
    const requestsBefore = t.stack.stripe.requests.length;
    const again = await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    expect(again.status).toBe(202);
    await waitForRun(closed.key);
    await t.stack.sqs.send(
      new (require('@aws-sdk/client-sqs').SendMessageCommand)({
        QueueUrl: t.stack.resources.queues.InvoiceQueue!.url,
        MessageBody: JSON.stringify({ period: closed.key, customerId: 'cus_inv_acme' }),
      }),
    );
    await t.stack.sqs.send(
      new (require('@aws-sdk/client-sqs').SendMessageCommand)({
        QueueUrl: t.stack.resources.queues.InvoiceQueue!.url,
        MessageBody: JSON.stringify({ period: closed.key, customerId: 'cus_inv_acme' }),
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(stripeInvoicesOf(acme)).toHaveLength(1);
    expect(t.stack.stripe.requests.slice(requestsBefore).filter((r) => r.method === 'POST')).toEqual([]);
    expect((await t.request('GET', `/api/v1/invoice-runs/${closed.key}`)).body.failed).toBe(0);
  });

  it("is what EventBridge's monthly schedule starts: the period before the grace period, and again it changes nothing", async () => {
    const { handler } = require('../../functions/invoice-scheduler/handler') as typeof import('../../functions/invoice-scheduler/handler');
    const requestsBefore = t.stack.stripe.requests.length;
    const context = { awsRequestId: 'scheduled-1', functionName: 'invoice-scheduler', getRemainingTimeInMillis: () => 60_000 };
    const event = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: current.start.toISOString(), detail: {} };
    const out = await (handler as unknown as (e: unknown, c: unknown) => Promise<{ period: string }>)(event, context);
    expect(out.period).toBe(closed.key);
    expect(await waitForRun(closed.key)).toMatchObject({ status: 'completed', failed: 0 });
    expect(t.stack.stripe.requests.slice(requestsBefore).filter((r) => r.method === 'POST')).toEqual([]);
  });
});

describe('failures while invoicing', () => {
  /** Crashes the worker's DynamoDB write that records `status`, once, like a Lambda dying right after Stripe answered. */
  function crashWhenRecording(status: string) {
    const state = { crashed: false };
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const input = (args as { input: { ExpressionAttributeValues?: Record<string, unknown> } }).input;
        if (!state.crashed && context.commandName === 'UpdateItemCommand' && Object.values(input.ExpressionAttributeValues ?? {}).some((v) => v === status)) {
          state.crashed = true;
          throw Object.assign(new Error(`injected crash before recording ${status}`), { name: 'InjectedCrash' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'fault' },
    );
    return state;
  }

  async function invoiceOne(id: string, planUsage: [string, number][], arrange: () => void | { crashed: boolean }) {
    const stripeId = (await customer(id, 'default'))!;
    await usage(id, planUsage);
    await t.drain();
    const state = arrange();
    await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    await waitForRun(closed.key, 90_000);
    if (state) expect(state.crashed).toBe(true);
    const [record] = await invoicesOf(id);
    expect(record).toMatchObject({ status: 'finalized' });
    const invoices = stripeInvoicesOf(stripeId);
    expect(invoices).toHaveLength(1);
    expect(invoices[0]!.status).toBe('open');
    const items = stripeItemsOf(invoices[0]!.id);
    expect(items.map((i) => i.metadata.line_key).sort()).toEqual(record.lines.map((l: any) => l.lineKey).sort());
    expect(items.reduce((s, i) => s + i.amount, 0)).toBe(cents(record.total));
    return record;
  }

  it('survives the worker dying after Stripe made the draft but before it was recorded', async () => {
    await invoiceOne('cus_f_draft', [['api_calls', 50000]], () => crashWhenRecording('draft_created'));
  });

  it('survives the worker dying between adding the lines and finalizing: the next attempt finds them on the draft', async () => {
    await invoiceOne(
      'cus_f_items',
      [
        ['api_calls', 50000],
        ['seats', 5],
      ],
      () => crashWhenRecording('items_added'),
    );
    expect(addLinesOf('cus_f_items').map((r) => r.status)).toEqual([200]);
  });

  it('survives Stripe answering 500 and 429 on adding the lines', async () => {
    await invoiceOne(
      'cus_f_500',
      [
        ['api_calls', 70000],
        ['storage_gb', 50],
      ],
      () => {
        t.stack.stripe.injectFailure({ method: 'POST', path: ADD_LINES, mode: '500', times: 2 });
        t.stack.stripe.injectFailure({ method: 'POST', path: ADD_LINES, mode: '429', times: 2 });
      },
    );
    expect(addLinesOf('cus_f_500').map((r) => r.status)).toEqual([500, 500, 429, 429, 200]);
  });

  it('survives Stripe timing out after committing the lines', async () => {
    await invoiceOne(
      'cus_f_lines_timeout',
      [
        ['api_calls', 80000],
        ['seats', 6],
      ],
      () => {
        t.stack.stripe.injectFailure({ method: 'POST', path: ADD_LINES, mode: 'timeout_after_commit', holdMs: 3000 });
      },
    );
    // The retry (same key) got Stripe's replay of the committed request, not a second set of lines.
    expect(addLinesOf('cus_f_lines_timeout').map((r) => [r.status, r.replayed])).toEqual([
      [null, false],
      [200, true],
    ]);
  });

  it('survives Stripe timing out after committing the finalize and the draft', async () => {
    await invoiceOne('cus_f_timeout', [['api_calls', 90000]], () => {
      t.stack.stripe.injectFailure({ method: 'POST', path: /^\/v1\/invoices\/[^/]+\/finalize$/, mode: 'timeout_after_commit', holdMs: 3000 });
      t.stack.stripe.injectFailure({ method: 'POST', path: /^\/v1\/invoices$/, mode: 'timeout_after_commit', holdMs: 3000 });
    });
  });
});

describe('the fan-out, a page per step on the invoice queue', () => {
  const sqs = () => (require('../../lib/platform/clients') as typeof import('../../lib/platform/clients')).sqsClient();
  afterEach(() => {
    sqs().middlewareStack.remove('duplicate');
  });

  /**
   * Runs the period with `prefix`'s customers (and one with usage but no customer record), recording
   * every move of the fan-out position; `die(n)` says whether the worker dies 'before' or 'after'
   * recording the n-th move. Checks that the moves form one chain, every customer is a member once,
   * and the run completes with every member invoiced.
   */
  async function fanOutWith(prefix: string, die: (n: number) => 'before' | 'after' | undefined) {
    for (let i = 0; i < 9; i++) await customer(`${prefix}_${i}`, 'default', false);
    await usage(`${prefix}_nobody`, [['api_calls', 30000]]);
    await t.drain();
    const moves: { token: string; after?: string; page: number }[] = [];
    let begun: string | undefined;
    let attempts = 0;
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const input = (args as { input: { UpdateExpression?: string; ExpressionAttributeValues?: Record<string, any> } }).input;
        if (context.commandName !== 'UpdateItemCommand' || !input.UpdateExpression?.includes('fanOut')) return next(args);
        const values = input.ExpressionAttributeValues!;
        if (input.UpdateExpression.includes(':position')) {
          const out = await next(args);
          begun = values[':position'].token;
          return out;
        }
        if (input.UpdateExpression !== 'SET fanOut = :next') return next(args);
        const when = die(++attempts);
        if (when === 'before') throw Object.assign(new Error('injected: died before moving the position'), { name: 'InjectedCrash' });
        const out = await next(args);
        moves.push(values[':next']);
        if (when === 'after') throw Object.assign(new Error('injected: died after moving the position'), { name: 'InjectedCrash' });
        return out;
      },
      { step: 'initialize', name: 'fault' },
    );

    await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    const run = await waitForRun(closed.key, 90_000);

    // One chain: each move continues the one before it, page after page.
    expect(begun).toBeDefined();
    moves.forEach((m, i) => expect({ i, after: m.after, page: m.page }).toEqual({ i, after: i === 0 ? begun : moves[i - 1]!.token, page: i + 1 }));
    const members = (await t.stack.dynamo.send(
      new QueryCommand({
        TableName: t.stack.resources.tables.InvoicesTable,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :cus)',
        ExpressionAttributeValues: { ':pk': { S: `run#${closed.key}` }, ':cus': { S: 'cus#' } },
      }),
    )) as unknown as { Items: { sk: { S: string }; status: { S: string } }[] };
    const ids = members.Items.map((m) => m.sk.S.slice(4));
    expect(new Set(ids).size).toBe(ids.length);
    const mine = [...Array.from({ length: 9 }, (_, i) => `${prefix}_${i}`), `${prefix}_nobody`];
    expect(ids).toEqual(expect.arrayContaining(mine));
    expect(members.Items.filter((m) => m.status.S === 'pending')).toEqual([]);
    expect(run).toMatchObject({ status: 'completed', total: ids.length, pending: 0 });
    for (const id of mine) expect((await invoicesOf(id)).filter((i) => i.period === closed.key)).toHaveLength(1);
    return { attempts, moves };
  }

  it('survives the worker dying before and after moving the position: one chain, every customer once, the run completes', async () => {
    const { attempts } = await fanOutWith('cus_fan', (n) => (n === 2 ? 'before' : n === 4 ? 'after' : undefined));
    expect(attempts).toBeGreaterThanOrEqual(5);
  }, 120_000);

  it('stays one chain when every step is sent twice', async () => {
    let sent = 0;
    sqs().middlewareStack.add(
      (next) => async (args) => {
        const input = (args as { input: { Entries?: { Id: string; MessageBody?: string }[] } }).input;
        const steps = (input.Entries ?? []).filter((e) => e.MessageBody?.includes('"start_run"'));
        sent += steps.length;
        if (steps.length > 0) input.Entries = [...input.Entries!, ...steps.map((e) => ({ ...e, Id: `${e.Id}-again` }))];
        return next(args);
      },
      { step: 'initialize', name: 'duplicate' },
    );
    const { moves } = await fanOutWith('cus_dup', () => undefined);
    // Both copies of a step send a next step; only the one whose copy moved the position goes on.
    expect(sent).toBeGreaterThan(moves.length + 1);
  }, 120_000);
});

describe('late events', () => {
  it('puts usage that arrives after the run on the next invoice as a correction line', async () => {
    const id = 'cus_late';
    const stripeId = (await customer(id, 'default'))!;
    await usage(id, [['api_calls', 99000]]);
    await t.drain();
    await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    await waitForRun(closed.key);
    expect((await invoicesOf(id))[0]).toMatchObject({ period: closed.key, total: '89.00' });

    // 2,000 more calls for the invoiced period: 1,000 at 0.001 and 1,000 at 0.0005 = 1.50.
    await usage(id, [['api_calls', 2000]]);
    await usage(id, [['api_calls', 11000]], new Date(Math.max(current.start.getTime(), Date.now() - 3600_000)).toISOString());
    await t.drain();
    expect((await t.usage(id, closed.key)).values.api_calls).toBe('101000');
    const upcoming = (await t.request('GET', `/api/v1/customers/${id}/invoices/upcoming`)).body;
    expect(upcoming.lines.map((l: any) => [l.lineKey, l.amount])).toEqual([
      ['api_calls:tier:1', '1.00'],
      [`api_calls:correction:${closed.key}`, '1.50'],
    ]);
    expect(upcoming.total).toBe('2.50');

    // The next period's run (clock moved to just after its end).
    await at(new Date(current.end.getTime() + 60_000), async () => {
      await t.request('POST', '/api/v1/invoice-runs', { body: { period: current.key } });
      await waitForRun(current.key);
    });
    const next = (await invoicesOf(id)).find((i) => i.period === current.key);
    expect(next).toMatchObject({ status: 'finalized', total: '2.50' });
    expect(next.lines.map((l: any) => l.lineKey)).toContain(`api_calls:correction:${closed.key}`);
    expect(next.corrections).toEqual([{ period: closed.key, quantities: expect.objectContaining({ api_calls: '101000' }) }]);
    expect(stripeInvoicesOf(stripeId)).toHaveLength(2);
    // Corrected once: the baseline moved, so a preview of the period after shows no second correction.
    const after = (await t.request('GET', `/api/v1/customers/${id}/invoices/upcoming?period=${current.next().key}`)).body;
    expect(after.lines.filter((l: any) => l.kind === 'correction')).toEqual([]);
  }, 120_000);
});

describe('invoice API input', () => {
  it('refuses to invoice a period that has not ended and rejects bad periods', async () => {
    const open = await t.request('POST', '/api/v1/invoice-runs', { body: { period: current.key } });
    expect(open.status).toBe(409);
    expect(open.body.error.code).toBe('period_not_closed');
    expect((await t.request('POST', '/api/v1/invoice-runs', { body: { period: '2026-1' } })).status).toBe(400);
    expect((await t.request('GET', '/api/v1/invoice-runs/1999-01')).status).toBe(404);
    expect((await t.request('GET', '/api/v1/customers/cus_x/invoices/upcoming?period=x')).status).toBe(400);
  });
});

describe('usage with amounts', () => {
  it('prices each meter with its tiers, adds up the subtotal, and reports budget and projection', async () => {
    const id = 'cus_amounts';
    await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: 'Amounts', budget: { amount: '500.00' } } });
    const time = new Date(Math.max(current.start.getTime(), Date.now() - 60_000)).toISOString();
    await usage(
      id,
      [
        ['api_calls', 123456],
        ['storage_gb', 150],
        ['seats', 10],
        ['compute_seconds', 3600],
      ],
      time,
    );
    await t.drain();
    const u = (await t.request('GET', `/api/v1/customers/${id}/usage`)).body;
    const meter = (slug: string) => u.meters.find((m: any) => m.meter === slug);
    expect(meter('api_calls')).toMatchObject({ value: '123456', included: '10000', percentUsed: '1234.56', amount: '101.73' });
    expect(meter('api_calls').tiers.map((x: any) => [x.from, x.upTo, x.quantity, x.unitPrice])).toEqual([
      ['0', '10000', '10000', '0'],
      ['10000', '100000', '90000', '0.001'],
      ['100000', '1000000', '23456', '0.0005'],
    ]);
    expect(meter('storage_gb')).toMatchObject({ amount: '31.25' });
    expect(meter('seats')).toMatchObject({ amount: '56.00', percentUsed: '333.33' });
    expect(meter('compute_seconds')).toMatchObject({ amount: '0.00', percentUsed: '100.00' });
    expect(u.subtotal).toBe('188.98');
    expect(u.budget).toMatchObject({ amount: '500.00', percentUsed: '37.79' }); // 37.796%, truncated as the alerts decide
    expect(Number(u.projection.subtotal)).toBeGreaterThanOrEqual(188.98);
    const upcoming = (await t.request('GET', `/api/v1/customers/${id}/invoices/upcoming`)).body;
    expect(upcoming).toMatchObject({ period: current.key, status: 'upcoming', total: '188.98', currency: 'usd' });
  });

  it('applies a plan change from the next period on (from creation in the month the customer was created)', async () => {
    const id = 'cus_plan_change';
    await at(current.previous().start, () => t.request('PUT', `/api/v1/customers/${id}`, { body: { name: 'Changer', planId: 'default' } }));
    const changed = await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: 'Changer', planId: 'pro' } });
    expect(changed.body.plans).toEqual([
      { from: current.previous().key, planId: 'default' },
      { from: current.next().key, planId: 'pro' },
    ]);
    const fresh = 'cus_plan_fixed';
    await t.request('PUT', `/api/v1/customers/${fresh}`, { body: { name: 'Fixed', planId: 'pro' } });
    const fixed = await t.request('PUT', `/api/v1/customers/${fresh}`, { body: { name: 'Fixed', planId: 'default' } });
    expect(fixed.body.plans).toEqual([{ from: current.key, planId: 'default' }]);
    expect((await t.request('GET', `/api/v1/customers/${id}/usage`)).body.planId).toBe('default');
    const next = (await t.request('GET', `/api/v1/customers/${id}/invoices/upcoming?period=${current.next().key}`)).body;
    expect(next).toMatchObject({ planId: 'pro', total: '69.00' }); // the pro base fee and its flat seats charge
    // Changing back before the period ends cancels the pending change.
    const back = await t.request('PUT', `/api/v1/customers/${id}`, { body: { name: 'Changer', planId: 'default' } });
    expect(back.body.plans).toEqual([{ from: current.previous().key, planId: 'default' }]);
  });
});

describe('money at the edges (end to end)', () => {
  const may = Period.parse('2026-05');
  const june = may.next();
  const july = june.next();
  const HOUR = 3600_000;
  const day = (p: Period, d: number, h = 12) => new Date(p.start.getTime() + (d - 1) * 86_400_000 + h * HOUR);
  const send = (subject: string, type: string, value: number | string, time: Date) =>
    at(new Date(time.getTime() + 60_000), async () => {
      const res = await t.sendEvents([cloudEvent({ subject, type, time: time.toISOString(), data: { value } })]);
      expect(res.status).toBe(202);
    });
  const runAt = (period: Period, when: Date, body: Record<string, unknown> = {}) =>
    at(when, async () => {
      const res = await t.request('POST', '/api/v1/invoice-runs', { body: { period: period.key, ...body } });
      expect(res.status).toBe(202);
      return waitForRun(period.key, 90_000);
    });

  it('bills each month its own fees when the later month is invoiced first, and corrections in their own currency', async () => {
    const pro = (await customer('cus_edge_pro', 'pro', true, day(may, 2)))!;
    const fx = (await customer('cus_edge_fx', 'default', true, day(may.previous(), 2)))!;
    await at(day(may, 10), () => t.request('PUT', '/api/v1/customers/cus_edge_fx', { body: { name: 'fx', planId: 'jp', stripeCustomerId: fx } }));
    await send('cus_edge_pro', 'seats', 3, day(may, 3));
    await send('cus_edge_pro', 'api_calls', 60000, day(may, 3));
    await send('cus_edge_pro', 'seats', 3, day(june, 3));
    await send('cus_edge_pro', 'api_calls', 60000, day(june, 3));
    await send('cus_edge_fx', 'seats', 3, day(may, 3));
    await t.drain();
    // May's run: the pro customer's job fails every attempt before its invoice is stored (DLQ).
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const items = (args as { input: { TransactItems?: { Put?: { Item?: Record<string, unknown> } }[] } }).input.TransactItems ?? [];
        if (context.commandName === 'TransactWriteItemsCommand' && items.some((i) => i.Put?.Item?.pk === 'inv#cus_edge_pro' && i.Put?.Item?.sk === may.key)) {
          throw Object.assign(new Error('injected: invoice store unavailable'), { name: 'InjectedFault' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'fault' },
    );
    expect((await runAt(may, day(june, 1, 2))).failed).toBeGreaterThanOrEqual(1); // fx owes nothing yet (3 seats are free)
    dynamo.middlewareStack.remove('fault');
    await send('cus_edge_fx', 'seats', 5, day(may, 31, 20)); // late: 2 more seats in May, now on a yen plan
    await send('cus_edge_fx', 'seats', 3, day(june, 3));
    await t.drain();
    // June is invoiced first; May's failed customer is invoiced by the re-run of May that comes after.
    await runAt(june, day(july, 1, 2));
    expect((await runAt(may, day(july, 1, 3))).failed).toBe(0);

    const proInvoices = (await invoicesOf('cus_edge_pro')).filter((i) => i.period === may.key || i.period === june.key);
    expect(proInvoices.map((i) => [i.period, i.planId, i.total, i.status]).sort()).toEqual([
      [may.key, 'pro', '117.00', 'finalized'],
      [june.key, 'pro', '117.00', 'finalized'],
    ]);
    expect(stripeInvoicesOf(pro).map((i) => i.total)).toEqual([11700, 11700]);

    const fxInvoices = await invoicesOf('cus_edge_fx');
    const juneOwn = fxInvoices.find((i) => i.key === june.key);
    const juneUsd = fxInvoices.find((i) => i.key === `${june.key}#usd`);
    expect(juneOwn).toMatchObject({ currency: 'jpy', total: '5000', status: 'finalized' });
    expect(juneUsd).toMatchObject({ kind: 'correction', currency: 'usd', total: '16.00', status: 'finalized' });
    expect(juneUsd.lines).toEqual([expect.objectContaining({ kind: 'correction', meter: 'seats', period: may.key, amount: '16.00' })]);
    expect(
      stripeInvoicesOf(fx)
        .map((i) => [i.currency, i.total])
        .sort(),
    ).toEqual([
      ['jpy', 5000],
      ['usd', 1600],
    ]);
  }, 240_000);

  it('refuses to back-bill a period older than the late-event window, and bills no fees before a customer existed when forced', async () => {
    const res = await t.request('POST', '/api/v1/invoice-runs', { body: { period: '2000-01' } });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'period_too_old', message: expect.stringContaining('"force": true') });
    const before = t.stack.stripe.invoices().length;
    await runAt(Period.parse('2000-01'), new Date(), { force: true });
    expect(t.stack.stripe.invoices().length).toBe(before);
  }, 120_000);

  it('keeps the plan on a PUT without planId', async () => {
    await at(day(may, 2), () => t.request('PUT', '/api/v1/customers/cus_edge_keep', { body: { name: 'keep', planId: 'pro' } }));
    const res = await t.request('PUT', '/api/v1/customers/cus_edge_keep', { body: { name: 'keep', alertEmail: 'ops@example.com' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ planId: 'pro', plans: [{ from: may.key, planId: 'pro' }] });
  });

  it('keeps counting and answering after a 1e14-seat reading, and blocks the invoice Stripe cannot take with its reason', async () => {
    const id = 'cus_edge_big';
    await customer(id, 'default');
    await usage(id, [['seats', 99999999999999]]);
    await usage(id, [['api_calls', 20000]]);
    await t.drain();
    expect(await t.queueDepth(t.dlqUrl)).toBe(0);
    const u = await t.usage(id, closed.key);
    expect(u.values).toMatchObject({ seats: '99999999999999', api_calls: '20000' });
    expect(u.body.subtotal).toBe('799999999999978.00');
    const upcoming = await t.request('GET', `/api/v1/customers/${id}/invoices/upcoming?period=${closed.key}`);
    expect(upcoming.status).toBe(200);
    expect(upcoming.body.total).toBe('799999999999978.00');
    await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    const run = await waitForRun(closed.key, 90_000);
    expect(run.failed).toBeGreaterThanOrEqual(1);
    const [record] = await invoicesOf(id);
    expect(record).toMatchObject({ status: 'blocked', lastError: expect.stringMatching(/^amount_too_large: /) });
  }, 120_000);

  it('bills what the record says whatever coupon the Stripe customer has: the draft never inherits it, so the totals agree', async () => {
    const id = 'cus_edge_coupon';
    const stripeId = (await customer(id, 'default'))!;
    t.stack.stripe.setCustomerCoupon(stripeId, { percentOff: 20 }); // put on the customer in Stripe's dashboard
    await usage(id, [['api_calls', 20000]]);
    await t.drain();
    await t.request('POST', '/api/v1/invoice-runs', { body: { period: closed.key } });
    await waitForRun(closed.key, 90_000);
    expect((await invoicesOf(id))[0]).toMatchObject({ status: 'finalized', total: '10.00' });
    expect(stripeInvoicesOf(stripeId)).toEqual([expect.objectContaining({ total: 1000, discounts: [], status: 'open' })]);
  }, 120_000);

  it('answers plan_not_found when the plan of a customer left the catalog, instead of pricing it on default', async () => {
    const id = 'cus_edge_gone';
    await customer(id, 'pro', false);
    const c = container() as unknown as { catalog: import('../../lib/domain/catalog').CatalogIndex };
    const real = c.catalog;
    const { CatalogIndex } = require('../../lib/domain/catalog') as typeof import('../../lib/domain/catalog');
    c.catalog = new CatalogIndex({ ...real.catalog, plans: real.catalog.plans.filter((p) => p.id !== 'pro') });
    try {
      const res = await t.request('GET', `/api/v1/customers/${id}/usage`);
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'plan_not_found', message: expect.stringContaining('plan "pro" is not in the catalog') });
    } finally {
      c.catalog = real;
    }
  });
});
