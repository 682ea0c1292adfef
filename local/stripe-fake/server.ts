/**
 * A Stripe-compatible HTTP server for local runs and tests.
 *
 * Point the official SDK at it with
 *   new Stripe('sk_test_anything', { host: '127.0.0.1', port, protocol: 'http' })
 * and it answers the customer and invoice endpoints the product uses (README.md),
 * with Stripe's error shapes, idempotency semantics, rate limits and injectable failures.
 * Everything lives in memory; `reset()` (or POST /_fake/reset) starts over.
 *
 * Request pipeline for /v1 (the order matters, it decides what a failure leaves behind):
 *   auth -> decode params -> rate limits (global, then the endpoint's) -> route lookup -> injected 500/429
 *   -> idempotency (replay / conflict / reserve) -> [delay] -> execute -> save result
 *   -> answer (or, for timeout_after_commit, hold the socket and never answer).
 * Everything before "execute" leaves no trace except the request log.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FakeStripeError, internalError, missingApiKey, rateLimited, unrecognizedUrl } from './errors';
import { canonicalParams, parseForm } from './form';
import { describeFailure, FailureInjector, failureFromJson, type ActiveFailure, type FailureMode, type FailureSpec } from './failures';
import { IdempotencyStore, type Reservation, type StoredResponse } from './idempotency';
import { newRequestId } from './ids';
import { RateLimiter, type RateLimits, type RateLimitSetting } from './rate-limits';
import { describeRoutes, matchRoute, type MatchedRoute } from './routes';
import { TrafficStats, type FakeStats } from './stats';
import { StripeStore } from './store';
import type { CustomerJson, FormObject, InvoiceItemJson, InvoiceJson } from './types';

export type { RateLimitSetting } from './rate-limits';
export type { FakeStats } from './stats';

/** The API version stripe@23 pins; echoed when the client sends none. */
const FAKE_API_VERSION = '2026-10-28.endive';
/** Bodies above this are refused; real Stripe requests are a few KB. */
const MAX_BODY_BYTES = 1024 * 1024;
/** The request log is for inspection, not an archive: keep the newest entries only. */
const MAX_LOG_ENTRIES = 10_000;

export interface StripeFakeOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Rate limits over /v1 requests (beyond them the fake answers 429): `'live'` (100/s global, 25/s
   * per endpoint, as Stripe in live mode), `'sandbox'` (25 and 25), `{ global, perEndpoint }` or a
   * number (global). None by default; `reset()` restores these.
   */
  rateLimit?: RateLimitSetting;
  /** Print one line per request to stdout. */
  log?: boolean;
}

interface RequestLogEntry {
  /** Stripe-style `req_...` id, also sent as the Request-Id header. */
  requestId: string;
  /** ISO time the request arrived. */
  at: string;
  method: string;
  /** Path without query string. */
  path: string;
  /** Decoded body (POST) merged over query parameters. */
  params: FormObject;
  idempotencyKey: string | null;
  /** HTTP status sent; null while in flight or when no answer was ever sent (timeout_after_commit). */
  status: number | null;
  /** True when the answer was an idempotent replay of an earlier response. */
  replayed: boolean;
  /** The injected failure this request hit, if any. */
  injected: FailureMode | null;
}

interface FakeState {
  url: string;
  rateLimit: RateLimits;
  stats: FakeStats;
  endpoints: string[];
  failures: Record<string, unknown>[];
  customers: CustomerJson[];
  invoices: InvoiceJson[];
  invoiceItems: InvoiceItemJson[];
  requests: RequestLogEntry[];
}

export interface StripeFake {
  readonly port: number;
  /** e.g. http://127.0.0.1:12111 */
  readonly url: string;
  /** Copy of the request log (oldest first) for /v1 requests. */
  readonly requests: readonly RequestLogEntry[];
  /** Closes the server and every socket, including held and delayed ones. */
  stop(): Promise<void>;
  injectFailure(spec: FailureSpec): void;
  clearFailures(): void;
  /** Puts a coupon on a customer (percent or amount off): its invoices inherit it unless created with `discounts=''`. */
  setCustomerCoupon(customerId: string, coupon: { percentOff?: number; amountOff?: number }): CustomerJson;
  /**
   * A number sets the global limit (requests per second); `{ global?, perEndpoint? }` sets the
   * fields given (null = off); `'live'` / `'sandbox'` set Stripe's limits; undefined = no limits.
   * Every sliding window starts afresh.
   */
  setRateLimit(setting: RateLimitSetting): void;
  /** Requests received per endpoint and 429s answered, since start or the last reset(). */
  stats(): FakeStats;
  /** Forgets all objects, idempotency keys, failures, the request log and stats; restores the start-up rate limits. */
  reset(): void;
  /** Snapshots, oldest first. */
  customers(): CustomerJson[];
  invoices(): InvoiceJson[];
  invoiceItems(): InvoiceItemJson[];
  state(): FakeState;
}

interface ApiResult {
  status: number;
  body: string;
  /** Whether Stripe would save this result under the idempotency key. */
  save: boolean;
}

function json(value: unknown): string {
  // Stripe pretty-prints its responses; matching it keeps replays comparable with curl output.
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** The API key of `Authorization: Bearer <key>` (stripe-node's way; Basic auth is not modelled). */
function apiKeyFrom(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

class BodyTooLargeError extends Error {}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError());
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

class StripeFakeServer implements StripeFake {
  private readonly store = new StripeStore();
  private readonly idempotency = new IdempotencyStore();
  private readonly failures = new FailureInjector();
  private readonly limiter = new RateLimiter();
  private readonly startupLimits: RateLimits;
  private readonly traffic = new TrafficStats();
  private log: RequestLogEntry[] = [];
  private readonly sockets = new Set<Socket>();
  /** Timers of held (timeout_after_commit) and delayed requests; cleared by stop(). */
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Wakes delayed requests when stop() clears their timers, so their promises settle. */
  private readonly sleepers = new Set<() => void>();
  private stopping: Promise<void> | undefined;
  port = 0;
  url = '';

  constructor(
    private readonly server: http.Server,
    private readonly options: StripeFakeOptions,
  ) {
    this.limiter.set(options.rateLimit);
    this.startupLimits = this.limiter.current;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Last resort: a bug in the fake must not leave the client hanging.
        this.print(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        if (!res.headersSent) this.sendJson(res, 500, json(internalError().toJSON()), {});
        else res.destroy();
      });
    });
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.port = address.port;
    const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    this.url = `http://${urlHost}:${this.port}`;
  }

  // ---- public surface ------------------------------------------------------------------------

  get requests(): readonly RequestLogEntry[] {
    // Deep copy: entries are still updated while requests are in flight, and callers must not edit them.
    return structuredClone(this.log);
  }

  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const wake of this.sleepers) wake();
      this.sleepers.clear();
      this.server.close(() => resolve());
      // close() only stops accepting; keep-alive, held and delayed sockets must be cut explicitly.
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    });
    return this.stopping;
  }

  injectFailure(spec: FailureSpec): void {
    this.failures.add(spec);
  }

  clearFailures(): void {
    this.failures.clear();
  }

  setRateLimit(setting: RateLimitSetting): void {
    this.limiter.set(setting);
  }

  setCustomerCoupon(customerId: string, coupon: { percentOff?: number; amountOff?: number }): CustomerJson {
    return this.store.setCustomerCoupon(customerId, coupon, Math.floor(Date.now() / 1000));
  }

  stats(): FakeStats {
    return this.traffic.snapshot();
  }

  reset(): void {
    this.store.clear();
    this.idempotency.clear();
    this.failures.clear();
    this.log = [];
    this.traffic.clear();
    this.limiter.set({ ...this.startupLimits });
  }

  customers(): CustomerJson[] {
    return this.store.allCustomers();
  }

  invoices(): InvoiceJson[] {
    return this.store.allInvoices();
  }

  invoiceItems(): InvoiceItemJson[] {
    return this.store.allInvoiceItems();
  }

  state(): FakeState {
    return {
      url: this.url,
      rateLimit: this.limiter.current,
      stats: this.stats(),
      endpoints: describeRoutes(),
      failures: this.failures.active().map(describeFailure),
      customers: this.customers(),
      invoices: this.invoices(),
      invoiceItems: this.invoiceItems(),
      requests: [...this.requests],
    };
  }

  // ---- request handling ---------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stripe-fake');
    let body: string;
    try {
      body = await readBody(req);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        const error = new FakeStripeError(413, 'invalid_request_error', `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
        this.sendJson(res, 413, json(error.toJSON()), { Connection: 'close' });
        return;
      }
      throw err;
    }
    if (url.pathname === '/_fake' || url.pathname.startsWith('/_fake/')) {
      this.handleControl(req.method ?? 'GET', url.pathname, body, res);
      return;
    }
    await this.handleApi(req, res, url, body);
  }

  private async handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname;
    const idempotencyKey = headerValue(req.headers['idempotency-key']) ?? null;
    const route = matchRoute(method, path);
    this.traffic.received(route?.endpoint);
    const entry: RequestLogEntry = {
      requestId: newRequestId(),
      at: new Date().toISOString(),
      method,
      path,
      params: {},
      idempotencyKey,
      status: null,
      replayed: false,
      injected: null,
    };
    this.record(entry);
    const headers: Record<string, string> = {
      'Request-Id': entry.requestId,
      'Stripe-Version': headerValue(req.headers['stripe-version']) ?? FAKE_API_VERSION,
    };
    if (idempotencyKey !== null) headers['Idempotency-Key'] = idempotencyKey;
    const fail = (error: FakeStripeError): void => this.answer(res, entry, error.status, json(error.toJSON()), headers);

    const apiKey = apiKeyFrom(headerValue(req.headers.authorization));
    if (apiKey === undefined) return fail(missingApiKey());

    try {
      const query = parseForm(url.search.slice(1));
      // Only POST carries a form body; stripe-node puts GET/DELETE parameters in the query.
      entry.params = method === 'POST' ? { ...query, ...parseForm(body) } : query;
    } catch (err) {
      if (err instanceof FakeStripeError) return fail(err);
      throw err;
    }

    const limitedBy = this.limiter.admit(route?.endpoint, Date.now());
    if (limitedBy !== undefined) {
      this.traffic.rateLimited(route?.endpoint, limitedBy);
      // Stripe says which limiter refused the request; it sends no Retry-After.
      headers['Stripe-Rate-Limited-Reason'] = limitedBy;
      return fail(rateLimited());
    }

    if (!route) return fail(unrecognizedUrl(method, path));

    const failure = this.failures.take(method, path);
    if (failure) entry.injected = failure.mode;
    if (failure?.mode === '500') return fail(internalError());
    if (failure?.mode === '429') {
      this.traffic.rateLimited(route.endpoint, 'injected');
      return fail(rateLimited());
    }

    // Stripe ignores idempotency keys on GET and DELETE: those are idempotent by nature.
    let reservation: Reservation | undefined;
    if (method === 'POST' && idempotencyKey !== null) {
      const decision = this.idempotency.begin(apiKey, idempotencyKey, { method, path, params: canonicalParams(entry.params) }, Date.now());
      if (decision.kind === 'reject') return fail(decision.error);
      if (decision.kind === 'replay') {
        entry.replayed = true;
        const replayHeaders = { ...headers, 'Idempotent-Replayed': 'true', 'Original-Request': decision.response.requestId };
        return this.deliver(res, entry, decision.response, replayHeaders, failure);
      }
      reservation = decision.reservation;
    }

    if (failure?.mode === 'delay') {
      const released = await this.sleep(failure.holdMs);
      if (!released) {
        // The fake is stopping: nothing runs, nothing is saved.
        reservation?.release();
        return;
      }
    }

    const result = this.execute(route, method, path, entry.params);
    const stored: StoredResponse = { status: result.status, body: result.body, requestId: entry.requestId };
    if (reservation) {
      if (result.save) reservation.commit(stored);
      else reservation.release();
    }
    this.deliver(res, entry, stored, headers, failure);
  }

  private execute(route: MatchedRoute, method: string, path: string, params: FormObject): ApiResult {
    try {
      const value = route.run(this.store, { method, path, params, now: Math.floor(Date.now() / 1000) });
      return { status: 200, body: json(value), save: true };
    } catch (err) {
      if (err instanceof FakeStripeError) return { status: err.status, body: json(err.toJSON()), save: !err.preExecution };
      this.print(`handler crashed on ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      // Not saved: a crash in the fake says nothing about what Stripe would have done.
      return { status: 500, body: json(internalError().toJSON()), save: false };
    }
  }

  /** Sends a result, unless the request is to time out after committing. */
  private deliver(
    res: http.ServerResponse,
    entry: RequestLogEntry,
    response: StoredResponse,
    headers: Record<string, string>,
    failure: ActiveFailure | undefined,
  ): void {
    if (failure?.mode === 'timeout_after_commit') {
      this.hold(res, failure.holdMs, entry);
      return;
    }
    this.answer(res, entry, response.status, response.body, headers);
  }

  /** Never answers: keeps the socket open for holdMs, then destroys it. */
  private hold(res: http.ServerResponse, holdMs: number, entry: RequestLogEntry): void {
    const socket = res.socket;
    this.print(`${entry.method} ${entry.path} -> (held ${holdMs}ms, no answer) [timeout_after_commit]`);
    if (!socket) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      socket.destroy();
    }, holdMs);
    this.timers.add(timer);
    // The client usually gives up first; then there is nothing left to hold.
    socket.once('close', () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    });
  }

  /** Resolves true after ms, or false if the fake stops first. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.stopping) return resolve(false);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.sleepers.delete(cancel);
        resolve(true);
      }, ms);
      const cancel = (): void => resolve(false);
      this.timers.add(timer);
      this.sleepers.add(cancel);
    });
  }

  private answer(res: http.ServerResponse, entry: RequestLogEntry, status: number, body: string, headers: Record<string, string>): void {
    entry.status = status;
    this.print(`${entry.method} ${entry.path} -> ${status}${entry.replayed ? ' (replayed)' : ''}${entry.injected ? ` [${entry.injected}]` : ''}`);
    this.sendJson(res, status, body, headers);
  }

  private sendJson(res: http.ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  }

  private record(entry: RequestLogEntry): void {
    this.log.push(entry);
    if (this.log.length > MAX_LOG_ENTRIES) this.log.splice(0, this.log.length - MAX_LOG_ENTRIES);
  }

  private print(line: string): void {
    if (this.options.log) process.stdout.write(`[stripe-fake] ${line}\n`);
  }

  // ---- control surface ----------------------------------------------------------------------

  private handleControl(method: string, path: string, body: string, res: http.ServerResponse): void {
    const ok = (value: unknown): void => this.sendJson(res, 200, json(value), {});
    const bad = (status: number, message: string): void => this.sendJson(res, status, json({ error: { message } }), {});
    const route = `${method.toUpperCase()} ${path.replace(/\/+$/, '')}`;
    try {
      switch (route) {
        case 'GET /_fake/state':
          return ok(this.state());
        case 'POST /_fake/failures': {
          const parsed: unknown = JSON.parse(body === '' ? '{}' : body);
          const specs = (Array.isArray(parsed) ? parsed : [parsed]).map(failureFromJson);
          for (const spec of specs) this.injectFailure(spec);
          return ok({ failures: this.failures.active().map(describeFailure) });
        }
        case 'DELETE /_fake/failures':
          this.clearFailures();
          return ok({ failures: [] });
        case 'POST /_fake/reset':
          this.reset();
          return ok({ ok: true });
        default:
          return bad(404, `Unknown control endpoint ${route}`);
      }
    } catch (err) {
      return bad(400, err instanceof Error ? err.message : String(err));
    }
  }
}

/** Starts a fake Stripe API. Resolves once it is listening. */
export async function startStripeFake(opts: StripeFakeOptions = {}): Promise<StripeFake> {
  const server = http.createServer();
  // Longer than clients' idle keep-alive: otherwise the server may close a pooled socket just as
  // stripe-node reuses it, which the SDK silently retries, muddying "exactly N requests" checks.
  server.keepAliveTimeout = 60_000;
  const fake = new StripeFakeServer(server, opts);
  await fake.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  return fake;
}
