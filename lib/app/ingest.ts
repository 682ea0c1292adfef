import { createHash, randomUUID } from 'node:crypto';
import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import {
  ConflictError,
  ForbiddenError,
  PayloadTooLargeError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
  type ErrorDetail,
} from '../domain/errors';
import { validateEvent, type MeteredEvent } from '../domain/events';
import { asciiJson, parseJson } from '../domain/json';
import { limitEvents, type LimitDeps } from './limits';
import type { Clock, IdempotencyStore, UsageBatch, UsageQueue } from './ports';

export const MAX_EVENTS_PER_REQUEST = 1000;
export const MAX_BODY_BYTES = 1024 * 1024;
/** Keeps every queue message well under SQS's 256 KiB message and batch limits. */
export const MAX_BATCH_BYTES = 120 * 1024;

export interface IngestDeps extends LimitDeps {
  catalog: CatalogIndex;
  queue: UsageQueue;
  idempotency: IdempotencyStore;
  clock: Clock;
  maxEventAgeMs: number;
}

export interface IngestRequest {
  principal: Principal;
  contentType: string | undefined;
  body: string;
  idempotencyKey?: string;
  /** The request's `ce-*` headers, names in lower case: CloudEvents binary content mode when `ce-specversion` is one. */
  ceHeaders?: Record<string, string>;
}

export interface IngestResult {
  status: number;
  body: { accepted: number };
  replayed: boolean;
}

const CONTENT_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json'] as const;
type IngestContentType = (typeof CONTENT_TYPES)[number];

function mediaType(header: string | undefined): IngestContentType {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  const found = CONTENT_TYPES.find((t) => t === type);
  if (!found) {
    throw new UnsupportedMediaTypeError('unsupported_media_type', `Content-Type must be one of ${CONTENT_TYPES.join(', ')}; got "${type || '(none)'}"`);
  }
  return found;
}

/**
 * CloudEvents binary content mode: the attributes travel as `ce-*` headers, the event's data is
 * the body (`Content-Type: application/json`). Only the attributes the product reads are taken;
 * others (ce-dataschema, extensions) are ignored as they are in structured mode.
 */
const BINARY_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time'] as const;
const headerOf = (attribute: string) => `ce-${attribute}`;

function isBinaryMode(type: IngestContentType, ceHeaders: Record<string, string> | undefined): ceHeaders is Record<string, string> {
  return type === 'application/json' && ceHeaders?.['ce-specversion'] !== undefined;
}

/**
 * Header values are percent-encoded UTF-8 (CloudEvents HTTP binding 3.1.3.2): a `%` not followed
 * by two hex digits of valid UTF-8, or a raw character outside printable ASCII, is refused rather
 * than guessed at, since it would become part of an event's identity.
 */
function binaryEvent(ceHeaders: Record<string, string>, data: unknown): unknown {
  const event: Record<string, unknown> = { data };
  const errors: ErrorDetail[] = [];
  for (const attribute of BINARY_ATTRIBUTES) {
    const header = headerOf(attribute);
    const value = ceHeaders[header];
    if (value === undefined) continue;
    try {
      if (!/^[\x20-\x7e]*$/.test(value)) throw new URIError('raw non-ASCII');
      event[attribute] = decodeURIComponent(value);
    } catch {
      const message = `${header} must be printable ASCII with other characters percent-encoded as UTF-8 (a literal "%" is %25)`;
      errors.push({ index: 0, field: header, code: 'invalid_header_encoding', message });
    }
  }
  if (errors.length > 0) throw new ValidationError('invalid_events', 'the event is invalid; nothing was accepted', errors);
  return event;
}

/** In binary mode a problem is named by its header: `ce-id`, not `id`. */
function namedByHeader(d: ErrorDetail): ErrorDetail {
  const attribute = BINARY_ATTRIBUTES.find((a) => a === d.field);
  if (!attribute) return d;
  return { ...d, field: headerOf(attribute), message: d.message.replace(new RegExp(`^${attribute}\\b`), headerOf(attribute)) };
}

function checkBodySize(body: string): void {
  if (Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError('payload_too_large', `the request body exceeds ${MAX_BODY_BYTES} bytes (1 MiB)`);
  }
}

/** Parses the body into raw events: the content type (and ce-* headers) say whether one or many. */
export function parseEnvelope(contentType: string | undefined, body: string, ceHeaders?: Record<string, string>): unknown[] {
  const type = mediaType(contentType);
  checkBodySize(body);
  if (isBinaryMode(type, ceHeaders)) return [binaryEvent(ceHeaders, body.trim() === '' ? undefined : parseJson(body))];
  const parsed = parseJson(body);
  if (type === 'application/cloudevents+json' && Array.isArray(parsed)) {
    throw new ValidationError('invalid_body', 'application/cloudevents+json carries one event; send arrays as application/cloudevents-batch+json');
  }
  if (type === 'application/cloudevents-batch+json' && !Array.isArray(parsed)) {
    throw new ValidationError('invalid_body', 'application/cloudevents-batch+json must be a JSON array of events');
  }
  const events = Array.isArray(parsed) ? parsed : [parsed];
  if (events.length === 0) throw new ValidationError('empty_batch', 'the request contains no events');
  if (events.length > MAX_EVENTS_PER_REQUEST) {
    throw new PayloadTooLargeError('too_many_events', `a request may carry at most ${MAX_EVENTS_PER_REQUEST} events; got ${events.length}`);
  }
  return events;
}

/** Validates every event; the whole request fails if any one does (all-or-nothing). `name` renames a problem's field. */
export function validateAll(
  raw: unknown[],
  deps: Pick<IngestDeps, 'catalog' | 'clock' | 'maxEventAgeMs'>,
  principal: Principal,
  name: (detail: ErrorDetail) => ErrorDetail = (d) => d,
): MeteredEvent[] {
  const ctx = { catalog: deps.catalog, now: deps.clock.now(), maxAgeMs: deps.maxEventAgeMs };
  const errors: ErrorDetail[] = [];
  const events: MeteredEvent[] = [];
  raw.forEach((r, i) => {
    const v = validateEvent(r, i, ctx);
    if (v.ok) events.push(v.event);
    else errors.push(...v.errors);
  });
  if (errors.length > 0) {
    const n = new Set(errors.map((e) => e.index)).size;
    throw new ValidationError('invalid_events', `${n} of ${raw.length} events are invalid; nothing was accepted`, errors.map(name));
  }
  if (principal.customerId !== undefined) {
    const foreign = events.findIndex((e) => e.customerId !== principal.customerId);
    if (foreign >= 0) {
      throw new ForbiddenError('customer_forbidden', `this API key may only send events for "${principal.customerId}"`, [
        name({ index: foreign, field: 'subject', code: 'customer_forbidden', message: `subject "${events[foreign]!.customerId}" is not the key's customer` }),
      ]);
    }
  }
  return events;
}

/**
 * Cuts events into queue messages by serialized size. Events are grouped by customer and period
 * first, so that each message touches as few counters as possible: the aggregator pays 2 write
 * units per counter per message (docs/exactly-once.md). Order inside a request carries no meaning
 * (LATEST is decided by event time), so regrouping is safe.
 */
export function toBatches(events: MeteredEvent[], receivedAt: string, batchId: (n: number) => string): UsageBatch[] {
  const grouped = [...events].sort((a, b) =>
    a.customerId === b.customerId ? (a.period < b.period ? -1 : a.period > b.period ? 1 : 0) : a.customerId < b.customerId ? -1 : 1,
  );
  const batches: UsageBatch[] = [];
  let current: MeteredEvent[] = [];
  let size = 0;
  const flush = () => {
    if (current.length === 0) return;
    batches.push({ v: 1, batchId: batchId(batches.length), receivedAt, events: current });
    current = [];
    size = 0;
  };
  for (const e of grouped) {
    // The queue writes ASCII JSON (up to 6 bytes per character): measure what it will send.
    const bytes = asciiJson(e).length + 1;
    if (size + bytes > MAX_BATCH_BYTES) flush();
    current.push(e);
    size += bytes;
  }
  flush();
  return batches;
}

export async function ingestEvents(deps: IngestDeps, req: IngestRequest): Promise<IngestResult> {
  authorize(req.principal, 'ingest');
  const binary = isBinaryMode(mediaType(req.contentType), req.ceHeaders);
  const events = validateAll(parseEnvelope(req.contentType, req.body, req.ceHeaders), deps, req.principal, binary ? namedByHeader : undefined);
  // Counted against the key's minute before anything is recorded: a refused request leaves no trace
  // (a retry of an accepted one, Idempotency-Key or not, counts again).
  await limitEvents(deps, req.principal, events.length);
  const result = { status: 202, body: { accepted: events.length } };

  let batchId: (n: number) => string = () => randomUUID();
  if (req.idempotencyKey !== undefined) {
    if (!/^[\x21-\x7e]{1,255}$/.test(req.idempotencyKey)) {
      throw new ValidationError('invalid_idempotency_key', 'Idempotency-Key must be 1..255 visible ASCII characters');
    }
    // In binary mode the event's identity is in the headers: they are part of "the same request".
    const attributes = binary ? BINARY_ATTRIBUTES.map((a) => `${headerOf(a)}:${req.ceHeaders![headerOf(a)] ?? ''}\n`).join('') : '';
    const requestHash = createHash('sha256').update(mediaType(req.contentType)).update('\n').update(attributes).update(req.body).digest('hex');
    const existing = await deps.idempotency.begin(req.principal.keyId, req.idempotencyKey, requestHash);
    if (existing && existing.requestHash !== requestHash) {
      throw new ConflictError('idempotency_key_reused', 'this Idempotency-Key was already used with a different request body');
    }
    if (existing?.response) {
      return { status: existing.response.status, body: existing.response.body as { accepted: number }, replayed: true };
    }
    // Deterministic batch ids: a retry after a crash re-sends the same batches, which the
    // aggregator then recognises as already applied (and every event is de-duplicated anyway).
    // They name the request, not only its key: a key reused for another request once its record has
    // expired (after 24 hours) is a new batch, never one whose events were counted before.
    const base = createHash('sha256')
      .update(req.principal.keyId)
      .update('\n')
      .update(req.idempotencyKey)
      .update('\n')
      .update(requestHash)
      .digest('hex')
      .slice(0, 32);
    batchId = (n) => `idem-${base}-${n}`;
  }

  try {
    await deps.queue.enqueue(toBatches(events, deps.clock.now().toISOString(), batchId));
  } catch (err) {
    if (!(err instanceof UnavailableError)) throw err;
    // Some messages may be queued: a retry re-sends them all, and the per-event (source, id) claim
    // (or, with the same Idempotency-Key, the same batch ids) makes every event count once.
    throw Object.assign(
      new UnavailableError(
        'enqueue_incomplete',
        'not every event could be queued; it is safe to retry this exact request (with or without the same Idempotency-Key): each event is counted exactly once',
      ),
      { cause: err },
    );
  }
  if (req.idempotencyKey !== undefined) await deps.idempotency.complete(req.principal.keyId, req.idempotencyKey, result);
  return { ...result, replayed: false };
}
