import { AsyncLocalStorage } from 'node:async_hooks';
import Stripe from 'stripe';
import {
  BillingProviderError,
  type AddLinesInput,
  type BillingProvider,
  type DraftInvoiceInput,
  type ProviderInvoice,
  type ProviderInvoiceLine,
} from '../../app/invoicing/billing-provider';
import { headerValue } from './paced-http-client';
import { STRIPE_MAX_IDEMPOTENCY_KEY_LENGTH } from './stripe-limits';

/** The provider operations, as named in counters, `onCall` and errors. Each is one Stripe endpoint. */
export type StripeOperation =
  'createDraftInvoice' | 'addInvoiceLines' | 'finalizeInvoice' | 'getInvoice' | 'listInvoiceLines' | 'findInvoice' | 'customerExists';
const STRIPE_OPERATIONS: readonly StripeOperation[] = [
  'createDraftInvoice',
  'addInvoiceLines',
  'finalizeInvoice',
  'getInvoice',
  'listInvoiceLines',
  'findInvoice',
  'customerExists',
];

/**
 * What became of one HTTP request of an operation:
 * - `ok`: answered successfully (the operation's last request, or a page of a list before the next);
 * - `retry`: the SDK sent it again (same method, path and idempotency key);
 * - `failed`: the operation's last request, and the operation threw.
 */
export type StripeCallOutcome = 'ok' | 'retry' | 'failed';

export interface StripeCallInfo {
  /** On `failed`: our error code (see StripeProviderError.code), Stripe's status and request id. */
  errorCode?: string;
  statusCode?: number;
  requestId?: string;
  error?: unknown;
}

export interface StripeBillingProviderOptions {
  /**
   * Called once per HTTP request the SDK sends for an operation (its retries and the pages of a list
   * included), once its outcome is known; exceptions thrown by the hook are ignored.
   */
  onCall?(op: StripeOperation, attempt: number, outcome: StripeCallOutcome, info: StripeCallInfo): void;
}

export interface StripeErrorDetails {
  op: StripeOperation;
  /** Requests sent for the failing request (the SDK's retries included). */
  attempts: number;
  statusCode?: number;
  /** Stripe's `error.code` (e.g. `resource_missing`), when it sent one. */
  stripeCode?: string;
  /** Stripe's `error.type` as sent on the wire (e.g. `invalid_request_error`). */
  stripeType?: string;
  requestId?: string;
}

/**
 * The BillingProviderError this adapter throws, with Stripe's details for logs. `code` is one of:
 * `idempotency_conflict` (same key, different parameters: a bug, never retried),
 * `rate_limited`, `timeout`, `connection_error`, `conflict` (409, e.g. key in use),
 * `provider_unavailable` (5xx) - these are retryable (by a later attempt of the job: the SDK has
 * already retried them);
 * `auth_error`, `card_error`, `invalid_request` or Stripe's own code for a 4xx
 * (e.g. `resource_missing`), `invalid_argument` (refused before calling Stripe),
 * `unexpected_error` - these are not.
 */
export class StripeProviderError extends BillingProviderError {
  constructor(
    message: string,
    retryable: boolean,
    code: string,
    readonly details: StripeErrorDetails,
  ) {
    super(message, retryable, code);
    this.name = 'StripeProviderError';
  }
  get statusCode(): number | undefined {
    return this.details.statusCode;
  }
}

interface Classified {
  retryable: boolean;
  code: string;
  statusCode?: number;
  stripeCode?: string;
  stripeType?: string;
  requestId?: string;
  message: string;
}

function classify(err: unknown): Classified {
  const E = Stripe.errors;
  if (!(err instanceof E.StripeError)) {
    return { retryable: false, code: 'unexpected_error', message: err instanceof Error ? err.message : String(err) };
  }
  const base = {
    statusCode: err.statusCode,
    stripeCode: err.code,
    stripeType: err.rawType,
    requestId: err.requestId,
    message: err.message,
  };
  // Stripe says explicitly whether a retry can help (e.g. `false` for a 500 it would replay).
  const shouldRetry = headerValue(err.headers as Record<string, unknown> | undefined, 'stripe-should-retry');
  const status = err.statusCode;

  // Same key, different parameters or endpoint: our bug. A retry would fail the same way.
  if (err instanceof E.StripeIdempotencyError) return { ...base, retryable: false, code: 'idempotency_conflict' };
  if (err instanceof E.StripeRateLimitError) {
    return { ...base, retryable: true, code: 'rate_limited' };
  }
  if (err instanceof E.StripeConnectionError) {
    const timedOut = /timeout/i.test(err.message) || (err.detail as { code?: string } | undefined)?.code === 'ETIMEDOUT';
    return { ...base, retryable: true, code: timedOut ? 'timeout' : 'connection_error' };
  }
  // 409: the same idempotency key is still being executed (idempotency_key_in_use), or a lock timeout.
  if (status === 409) return { ...base, retryable: shouldRetry !== 'false', code: 'conflict' };
  if (status !== undefined && status >= 500) {
    return { ...base, retryable: shouldRetry !== 'false', code: 'provider_unavailable' };
  }
  if (err instanceof E.StripeAuthenticationError || err instanceof E.StripePermissionError) {
    return { ...base, retryable: false, code: 'auth_error' };
  }
  if (err instanceof E.StripeCardError) return { ...base, retryable: false, code: 'card_error' };
  const code = err.code ?? 'invalid_request';
  return { ...base, retryable: shouldRetry === 'true', code };
}

function toProviderInvoice(inv: Stripe.Invoice): ProviderInvoice {
  return {
    id: inv.id,
    status: inv.status ?? 'unknown',
    totalMinor: inv.total,
    number: inv.number ?? null,
    hostedInvoiceUrl: inv.hosted_invoice_url ?? null,
  };
}

function zeroCounters(): Record<StripeOperation, number> {
  return Object.fromEntries(STRIPE_OPERATIONS.map((op) => [op, 0])) as Record<StripeOperation, number>;
}

/** One operation in flight, to which the SDK's `request` events are attributed. */
interface Call {
  op: StripeOperation;
  /** Requests sent for the current request (1, or more once the SDK retried it). */
  attempt: number;
  /** Method, path and idempotency key of the last request: the SDK re-sends exactly that. */
  last?: string;
}

/**
 * BillingProvider on the official Stripe SDK, created by createStripeClient (stripe-client.ts):
 * pacing, retries and their backoff are the SDK's and its HTTP client's, not this class's.
 *
 * - Writes always send the caller's idempotency key (`{ idempotencyKey }` request option); the SDK
 *   re-sends it on each of its retries, and a re-delivered job or a re-run after a crash reuse it,
 *   so Stripe replays the first result instead of creating a second object.
 * - Requests are counted from the SDK's `request` events (one per HTTP request, retries included),
 *   attributed to the operation that runs them (AsyncLocalStorage). Its `response` events are not
 *   used: the SDK emits one only for a request's final answer, none for an answer it retries or a
 *   connection error.
 * - An error, once the SDK has given up, becomes a StripeProviderError (a BillingProviderError):
 *   `retryable` says whether a later attempt of the job may succeed.
 */
export class StripeBillingProvider implements BillingProvider {
  /** HTTP requests sent per operation (every attempt and page, retries included). */
  readonly calls = zeroCounters();
  /** Of those, requests that were the SDK's retries. */
  readonly retries = zeroCounters();
  /** Operations that ended by throwing. */
  readonly failures = zeroCounters();

  private readonly current = new AsyncLocalStorage<Call>();

  constructor(
    private readonly stripe: Stripe,
    private readonly opts: StripeBillingProviderOptions = {},
  ) {
    stripe.on('request', (event: Stripe.RequestEvent) => this.requested(event));
  }

  async createDraftInvoice(input: DraftInvoiceInput): Promise<ProviderInvoice> {
    const idempotencyKey = this.checkKey('createDraftInvoice', input.idempotencyKey);
    const invoice = await this.call('createDraftInvoice', () =>
      this.stripe.invoices.create(
        {
          customer: input.stripeCustomerId,
          auto_advance: false,
          // send_invoice + days_until_due: no payment method is needed to finalize.
          collection_method: 'send_invoice',
          days_until_due: 30,
          // Only the items we attach explicitly; never sweep up the customer's pending items.
          pending_invoice_items_behavior: 'exclude',
          // Never inherit a coupon put on the Stripe customer: the invoice bills what the record says,
          // and its total is checked against the record's at finalize (a coupon made it total_mismatch for ever).
          discounts: '',
          currency: input.currency.toLowerCase(),
          description: input.description,
          metadata: input.metadata,
        },
        { idempotencyKey },
      ),
    );
    return toProviderInvoice(invoice);
  }

  /**
   * Adds all lines to a draft in one request (POST /v1/invoices/:id/add_lines): Stripe creates one
   * invoice item per line, all or nothing, and answers with the updated invoice. The amounts are
   * within Stripe's limits: the invoice sync checks them before the draft (stripe-limits.ts); what
   * Stripe still refuses is a non-retryable error.
   */
  async addInvoiceLines(input: AddLinesInput): Promise<ProviderInvoice> {
    const idempotencyKey = this.checkKey('addInvoiceLines', input.idempotencyKey);
    if (input.lines.length === 0) throw this.refuse('addInvoiceLines', 'at least one line is required');
    const lines: Stripe.InvoiceAddLinesParams.Line[] = input.lines.map((line) => ({
      amount: line.amountMinor,
      description: line.description,
      metadata: { ...line.metadata },
    }));
    const invoice = await this.call('addInvoiceLines', () => this.stripe.invoices.addLines(input.invoiceId, { lines }, { idempotencyKey }));
    return toProviderInvoice(invoice);
  }

  /**
   * Finalizes a draft. If Stripe refuses because the invoice is no longer a draft (finalized by an
   * earlier run whose answer was lost, under another key), the invoice is fetched and returned as is
   * (status `open`, or `paid` for a zero total, or whatever it has become since).
   */
  async finalizeInvoice(invoiceId: string, idempotencyKey: string): Promise<ProviderInvoice> {
    const key = this.checkKey('finalizeInvoice', idempotencyKey);
    try {
      const invoice = await this.call('finalizeInvoice', () =>
        this.stripe.invoices.finalizeInvoice(invoiceId, { auto_advance: false }, { idempotencyKey: key }),
      );
      return toProviderInvoice(invoice);
    } catch (err) {
      // A plain 400 (Stripe: "This invoice is already finalized, you can't re-finalize a non-draft
      // invoice."). Matched on the invoice's state rather than on the error code, which Stripe may rename.
      if (err instanceof StripeProviderError && !err.retryable && err.statusCode === 400 && err.code !== 'idempotency_conflict') {
        const current = await this.getInvoice(invoiceId);
        if (current.status !== 'draft') return current;
      }
      throw err;
    }
  }

  async getInvoice(invoiceId: string): Promise<ProviderInvoice> {
    return toProviderInvoice(await this.call('getInvoice', () => this.stripe.invoices.retrieve(invoiceId)));
  }

  /**
   * All lines of the invoice, in the invoice's order, through the SDK's auto-pagination (pages of
   * 100, each request paced and retried on its own). Stripe forgets idempotency keys after 24 hours:
   * a later retry of addInvoiceLines reads this first and sends only the lines (by
   * `metadata.line_key`) that are not on the draft yet.
   */
  async listInvoiceLines(invoiceId: string): Promise<ProviderInvoiceLine[]> {
    return this.call('listInvoiceLines', async () => {
      const lines: ProviderInvoiceLine[] = [];
      for await (const line of this.stripe.invoices.listLineItems(invoiceId, { limit: 100 })) {
        lines.push({ id: line.id, amountMinor: line.amount, metadata: { ...(line.metadata ?? {}) } });
      }
      return lines;
    });
  }

  /**
   * The customer's invoice carrying metadata.invoice_key = invoiceKey. A customer has about one
   * invoice a month, so the newest page or two hold it; the SDK fetches pages until it is found.
   */
  async customerExists(stripeCustomerId: string): Promise<boolean> {
    return this.call('customerExists', async () => {
      try {
        const customer = await this.stripe.customers.retrieve(stripeCustomerId);
        return customer.deleted !== true;
      } catch (err) {
        if ((err as { code?: string }).code === 'resource_missing') return false;
        throw err;
      }
    });
  }

  async findInvoice(stripeCustomerId: string, invoiceKey: string): Promise<ProviderInvoice | undefined> {
    return this.call('findInvoice', async () => {
      for await (const invoice of this.stripe.invoices.list({ customer: stripeCustomerId, limit: 100 })) {
        if (invoice.metadata?.invoice_key === invoiceKey) return toProviderInvoice(invoice);
      }
      return undefined;
    });
  }

  /** Snapshot of the counters, e.g. for metrics at the end of a job. */
  stats(): { calls: Record<StripeOperation, number>; retries: Record<StripeOperation, number>; failures: Record<StripeOperation, number> } {
    return { calls: { ...this.calls }, retries: { ...this.retries }, failures: { ...this.failures } };
  }

  // ---- internals ------------------------------------------------------------------------------

  private checkKey(op: StripeOperation, key: string): string {
    // Without our key the SDK would invent a fresh one per call, and a re-run could duplicate.
    if (typeof key !== 'string' || key.trim() === '') throw this.refuse(op, 'an idempotency key is required for every Stripe write');
    if (key.length > STRIPE_MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw this.refuse(op, `idempotency key is ${key.length} characters; Stripe accepts at most ${STRIPE_MAX_IDEMPOTENCY_KEY_LENGTH}`);
    }
    return key;
  }

  private refuse(op: StripeOperation, message: string): StripeProviderError {
    return new StripeProviderError(`Stripe ${op}: ${message}`, false, 'invalid_argument', { op, attempts: 0 });
  }

  private notify(op: StripeOperation, attempt: number, outcome: StripeCallOutcome, info: StripeCallInfo = {}): void {
    if (!this.opts.onCall) return;
    try {
      this.opts.onCall(op, attempt, outcome, info);
    } catch {
      // Metrics must never break billing.
    }
  }

  /** The SDK's `request` event: one HTTP request sent, by the operation in whose context it runs. */
  private requested(event: Stripe.RequestEvent): void {
    const call = this.current.getStore();
    if (!call) return; // not one of this provider's operations
    const request = `${event.method} ${event.path} ${event.idempotency_key ?? ''}`;
    const retry = request === call.last;
    // The request before this one is settled: the SDK sent it again, or went on to the next page.
    if (call.attempt > 0) this.notify(call.op, call.attempt, retry ? 'retry' : 'ok');
    call.attempt = retry ? call.attempt + 1 : 1;
    call.last = request;
    this.calls[call.op]++;
    if (retry) this.retries[call.op]++;
  }

  /** Runs one operation's SDK call in its own context, and maps what the SDK finally threw. */
  private async call<T>(op: StripeOperation, send: () => Promise<T>): Promise<T> {
    const call: Call = { op, attempt: 0 };
    try {
      const result = await this.current.run(call, send);
      if (call.attempt > 0) this.notify(op, call.attempt, 'ok');
      return result;
    } catch (err) {
      const c = classify(err);
      if (call.attempt > 0) this.notify(op, call.attempt, 'failed', { errorCode: c.code, statusCode: c.statusCode, requestId: c.requestId, error: err });
      this.failures[op]++;
      const attempts = call.attempt;
      const what = c.retryable ? `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}` : 'failed';
      const where = [c.statusCode !== undefined ? `status ${c.statusCode}` : undefined, c.requestId ? `request ${c.requestId}` : undefined]
        .filter(Boolean)
        .join(', ');
      const error = new StripeProviderError(`Stripe ${op} ${what} (${c.code}${where ? `; ${where}` : ''}): ${c.message}`, c.retryable, c.code, {
        op,
        attempts,
        statusCode: c.statusCode,
        stripeCode: c.stripeCode,
        stripeType: c.stripeType,
        requestId: c.requestId,
      });
      error.cause = err;
      throw error;
    }
  }
}
