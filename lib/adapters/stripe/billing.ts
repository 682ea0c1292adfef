import Stripe from 'stripe';
import {
  BillingProviderError,
  type AddLinesInput,
  type BillingProvider,
  type DraftInvoiceInput,
  type ProviderInvoice,
  type ProviderInvoiceLine,
  type ProviderLine,
} from '../../app/invoicing/stripe-port';
import { retry } from '../../domain/concurrency';
import { Pacer } from './pacer';

/** The provider operations, as named in counters, `onCall` and errors. Each is one Stripe endpoint. */
export type StripeOperation = 'createDraftInvoice' | 'addInvoiceLines' | 'finalizeInvoice' | 'getInvoice' | 'listInvoiceLines' | 'findInvoice';
export const STRIPE_OPERATIONS: readonly StripeOperation[] = [
  'createDraftInvoice',
  'addInvoiceLines',
  'finalizeInvoice',
  'getInvoice',
  'listInvoiceLines',
  'findInvoice',
];

/**
 * Stripe's amounts hold at most eight digits of minor units ("a value of 99999999 for a USD charge
 * of $999,999.99", docs.stripe.com/currencies); it refuses larger ones with amount_too_large.
 */
export const MAX_STRIPE_AMOUNT_MINOR = 99_999_999;

/**
 * What became of one attempt (one HTTP request):
 * - `ok`: answered successfully;
 * - `retry`: failed in a way worth retrying, another attempt follows after `info.delayMs`;
 * - `failed`: failed for good (not retryable, or the last attempt); the call throws.
 */
export type StripeCallOutcome = 'ok' | 'retry' | 'failed';

export interface StripeCallInfo {
  /** Time spent in the SDK for this attempt (pacing wait excluded). */
  durationMs: number;
  /** Time spent waiting for the pacers (the operation's, then the process-wide one) before this attempt. */
  pacedMs: number;
  /** Our error code (see StripeProviderError.code), on retry/failed. */
  errorCode?: string;
  statusCode?: number;
  requestId?: string;
  /** Backoff before the next attempt, on retry. */
  delayMs?: number;
  error?: unknown;
}

export interface StripeBillingOptions {
  /** Requests per second for this instance's pacer (ignored when `pacer` is given). */
  maxRps: number;
  /**
   * Requests per second per operation. Stripe limits every endpoint (method + route) to 25/s on
   * top of its global limit, and each operation here is one endpoint, so each gets its own pacer,
   * passed before the process-wide one. Omitted: no per-operation pacing.
   */
  maxEndpointRps?: number;
  /** Attempts per call including the first; after that a retryable BillingProviderError is thrown. */
  maxAttempts: number;
  /** Backoff base: attempt n waits a uniform random time in [0, min(maxDelayMs, base * 2^(n-1))]. Default 250 ms. */
  baseDelayMs?: number;
  /** Backoff cap. Default 5000 ms. */
  maxDelayMs?: number;
  /** Called after every attempt; exceptions thrown by the hook are ignored. */
  onCall?(op: StripeOperation, attempt: number, outcome: StripeCallOutcome, info: StripeCallInfo): void;
  /** Share one pacer between several StripeBilling instances of a process. */
  pacer?: Pacer;
  /** Backoff sleep (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Random source in [0, 1) for the jitter (tests). */
  random?: () => number;
}

export interface StripeErrorDetails {
  op: StripeOperation;
  /** Attempts made, the failing one included. */
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
 * `provider_unavailable` (5xx) - these four are retryable;
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

/** Stripe accepts idempotency keys of up to 255 characters. */
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** A Retry-After beyond this is treated as this (a Lambda cannot wait for minutes). */
const MAX_RETRY_AFTER_MS = 60_000;

interface Classified {
  retryable: boolean;
  code: string;
  retryAfterMs?: number;
  statusCode?: number;
  stripeCode?: string;
  stripeType?: string;
  requestId?: string;
  message: string;
}

/** Node lower-cases response header names; the lookup tolerates other casings anyway. */
function header(headers: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const v = headers[name] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(v) ? v[0] : v;
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  let ms: number;
  if (Number.isFinite(seconds)) ms = seconds * 1000;
  else {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
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
  const headers = err.headers as Record<string, string | string[] | undefined> | undefined;
  // Stripe says explicitly whether a retry can help (e.g. `false` for a 500 it would replay).
  const shouldRetry = header(headers, 'stripe-should-retry');
  const status = err.statusCode;

  // Same key, different parameters or endpoint: our bug. A retry would fail the same way.
  if (err instanceof E.StripeIdempotencyError) return { ...base, retryable: false, code: 'idempotency_conflict' };
  if (err instanceof E.StripeRateLimitError) {
    return { ...base, retryable: true, code: 'rate_limited', retryAfterMs: parseRetryAfter(header(headers, 'retry-after')) };
  }
  if (err instanceof E.StripeConnectionError) {
    const timedOut = /timeout/i.test(err.message) || (err.detail as { code?: string } | undefined)?.code === 'ETIMEDOUT';
    return { ...base, retryable: true, code: timedOut ? 'timeout' : 'connection_error' };
  }
  // 409: the same idempotency key is still being executed (idempotency_key_in_use), or a lock timeout.
  if (status === 409) return { ...base, retryable: shouldRetry !== 'false', code: 'conflict' };
  if (status !== undefined && status >= 500) {
    return { ...base, retryable: shouldRetry !== 'false', code: 'provider_unavailable', retryAfterMs: parseRetryAfter(header(headers, 'retry-after')) };
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

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function zeroCounters(): Record<StripeOperation, number> {
  return Object.fromEntries(STRIPE_OPERATIONS.map((op) => [op, 0])) as Record<StripeOperation, number>;
}

/**
 * BillingProvider on the official Stripe SDK.
 *
 * - Every request (reads, writes, each page of a list, each retry) waits for the pacer first: its
 *   operation's own (`maxEndpointRps`, as Stripe limits each endpoint), then the process-wide one.
 * - Writes always send the caller's idempotency key (`{ idempotencyKey }` request option); the SDK
 *   never makes one up, so a retry here, a re-delivered job or a re-run after a crash all reuse
 *   the same key and Stripe replays the first result instead of creating a second object.
 * - Retried with full-jitter exponential backoff: 429 (at least Retry-After when sent), 5xx,
 *   connection errors and timeouts, 409 (key still in use). Not retried: other 4xx, idempotency
 *   conflicts (`idempotency_conflict`), auth and card errors. When Stripe sends
 *   `Stripe-Should-Retry`, it wins.
 * - After `maxAttempts` the call throws a StripeProviderError (a BillingProviderError) with
 *   `retryable: true`.
 */
export class StripeBilling implements BillingProvider {
  /** Requests sent per operation (every attempt, retries included). */
  readonly calls = zeroCounters();
  /** Of those, requests that were retries. */
  readonly retries = zeroCounters();
  /** Calls that ended by throwing (after their last attempt). */
  readonly failures = zeroCounters();

  private readonly pacer: Pacer;
  private readonly endpointPacers = new Map<StripeOperation, Pacer>();
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly stripe: Stripe,
    private readonly opts: StripeBillingOptions,
  ) {
    if (!(Number.isInteger(opts.maxAttempts) && opts.maxAttempts >= 1)) {
      throw new RangeError(`StripeBilling: maxAttempts must be an integer >= 1, got ${opts.maxAttempts}`);
    }
    this.pacer = opts.pacer ?? new Pacer({ ratePerSecond: opts.maxRps });
    if (opts.maxEndpointRps !== undefined) {
      for (const op of STRIPE_OPERATIONS) this.endpointPacers.set(op, new Pacer({ ratePerSecond: opts.maxEndpointRps }));
    }
    this.maxAttempts = opts.maxAttempts;
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 5000;
    this.sleep = opts.sleep ?? defaultSleep;
    this.random = opts.random ?? Math.random;
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
   * invoice item per line, all or nothing, and answers with the updated invoice. Stripe documents no
   * per-request maximum, but an invoice holds at most 250 items; beyond that Stripe refuses the whole
   * request (a non-retryable error). A line whose amount is not an integer of at most eight digits is
   * refused here, before calling Stripe. Retried like every write, always with the caller's key.
   */
  async addInvoiceLines(input: AddLinesInput): Promise<ProviderInvoice> {
    const idempotencyKey = this.checkKey('addInvoiceLines', input.idempotencyKey);
    if (input.lines.length === 0) throw this.refuse('addInvoiceLines', 'at least one line is required');
    input.lines.forEach((line, i) => {
      const name = `line ${i}${line.metadata.line_key === undefined ? '' : ` (line_key ${line.metadata.line_key})`}`;
      if (!Number.isSafeInteger(line.amountMinor)) {
        throw this.refuse('addInvoiceLines', `${name}: amountMinor must be an integer number of minor units, got ${line.amountMinor}`);
      }
      if (Math.abs(line.amountMinor) > MAX_STRIPE_AMOUNT_MINOR) {
        throw this.refuse(
          'addInvoiceLines',
          `${name}: amountMinor ${line.amountMinor} has more than eight digits; Stripe accepts at most ${MAX_STRIPE_AMOUNT_MINOR} in absolute value`,
        );
      }
    });
    const lines: Stripe.InvoiceAddLinesParams.Line[] = input.lines.map((line: ProviderLine) => ({
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
   * All lines of the invoice, in the invoice's order, each page (of 100) paced and retried on its
   * own. Stripe forgets idempotency keys after 24 hours: a later retry of addInvoiceLines reads this
   * first and sends only the lines (by `metadata.line_key`) that are not on the draft yet.
   */
  async listInvoiceLines(invoiceId: string): Promise<ProviderInvoiceLine[]> {
    const lines = await this.allPages('listInvoiceLines', (startingAfter) => {
      const params: Stripe.InvoiceListLineItemsParams = { limit: 100 };
      if (startingAfter !== undefined) params.starting_after = startingAfter;
      return this.stripe.invoices.listLineItems(invoiceId, params);
    });
    return lines.map((line) => ({ id: line.id, amountMinor: line.amount, metadata: { ...(line.metadata ?? {}) } }));
  }

  /**
   * The customer's invoice carrying metadata.invoice_key = invoiceKey. A customer has about one
   * invoice a month, so the newest page or two hold it; pages are paced like every request.
   */
  async findInvoice(stripeCustomerId: string, invoiceKey: string): Promise<ProviderInvoice | undefined> {
    let startingAfter: string | undefined;
    for (;;) {
      const params: Stripe.InvoiceListParams = { customer: stripeCustomerId, limit: 100 };
      if (startingAfter !== undefined) params.starting_after = startingAfter;
      const page = await this.call('findInvoice', () => this.stripe.invoices.list(params));
      const found = page.data.find((inv) => inv.metadata?.invoice_key === invoiceKey);
      if (found) return toProviderInvoice(found);
      const last = page.data[page.data.length - 1];
      if (!page.has_more || last === undefined) return undefined;
      startingAfter = last.id;
    }
  }

  /** Snapshot of the counters, e.g. for metrics at the end of a job. */
  stats(): { calls: Record<StripeOperation, number>; retries: Record<StripeOperation, number>; failures: Record<StripeOperation, number> } {
    return { calls: { ...this.calls }, retries: { ...this.retries }, failures: { ...this.failures } };
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Every page of a list (has_more / starting_after), one paced and retried call per page. */
  private async allPages<T extends { id: string }>(
    op: StripeOperation,
    fetchPage: (startingAfter: string | undefined) => Promise<{ data: T[]; has_more: boolean }>,
  ): Promise<T[]> {
    const rows: T[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const after = startingAfter;
      const page = await this.call(op, () => fetchPage(after));
      rows.push(...page.data);
      const last = page.data[page.data.length - 1];
      if (!page.has_more || last === undefined) return rows;
      startingAfter = last.id;
    }
  }

  private checkKey(op: StripeOperation, key: string): string {
    // Without our key the SDK would invent a fresh one per call, and a re-run could duplicate.
    if (typeof key !== 'string' || key.trim() === '') throw this.refuse(op, 'an idempotency key is required for every Stripe write');
    if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw this.refuse(op, `idempotency key is ${key.length} characters; Stripe accepts at most ${MAX_IDEMPOTENCY_KEY_LENGTH}`);
    }
    return key;
  }

  private refuse(op: StripeOperation, message: string): StripeProviderError {
    return new StripeProviderError(`Stripe ${op}: ${message}`, false, 'invalid_argument', { op, attempts: 0 });
  }

  private notify(op: StripeOperation, attempt: number, outcome: StripeCallOutcome, info: StripeCallInfo): void {
    if (!this.opts.onCall) return;
    try {
      this.opts.onCall(op, attempt, outcome, info);
    } catch {
      // Metrics must never break billing.
    }
  }

  /** Waits for the operation's pacer and then, in that turn, for the process-wide one. */
  private pace(op: StripeOperation): Promise<number> {
    const endpoint = this.endpointPacers.get(op);
    return endpoint ? endpoint.acquire(() => this.pacer.acquire()) : this.pacer.acquire();
  }

  /** One paced, retried operation (the shared backoff; Stripe's Retry-After is a floor). */
  private async call<T>(op: StripeOperation, send: () => Promise<T>): Promise<T> {
    let last: { attempt: number; c: Classified; info: StripeCallInfo } | undefined;
    try {
      return await retry(
        async (attempt) => {
          const pacedMs = await this.pace(op);
          this.calls[op]++;
          if (attempt > 1) this.retries[op]++;
          const started = Date.now();
          try {
            const result = await send();
            this.notify(op, attempt, 'ok', { durationMs: Date.now() - started, pacedMs });
            return result;
          } catch (err) {
            const c = classify(err);
            last = {
              attempt,
              c,
              info: { durationMs: Date.now() - started, pacedMs, errorCode: c.code, statusCode: c.statusCode, requestId: c.requestId, error: err },
            };
            throw err;
          }
        },
        {
          attempts: this.maxAttempts,
          baseMs: this.baseDelayMs,
          maxMs: this.maxDelayMs,
          retryable: () => last?.c.retryable === true,
          minDelayMs: () => last?.c.retryAfterMs,
          onRetry: (_err, attempt, delayMs) => this.notify(op, attempt, 'retry', { ...last!.info, delayMs }),
          sleep: this.sleep,
          random: this.random,
        },
      );
    } catch (err) {
      if (last === undefined) throw err;
      const { attempt, c, info } = last;
      this.notify(op, attempt, 'failed', info);
      this.failures[op]++;
      const what = c.retryable ? `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}` : 'failed';
      const where = [c.statusCode !== undefined ? `status ${c.statusCode}` : undefined, c.requestId ? `request ${c.requestId}` : undefined]
        .filter(Boolean)
        .join(', ');
      const error = new StripeProviderError(`Stripe ${op} ${what} (${c.code}${where ? `; ${where}` : ''}): ${c.message}`, c.retryable, c.code, {
        op,
        attempts: attempt,
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
