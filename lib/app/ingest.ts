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
import type { Clock, IdempotencyStore, UsageBatch, UsageQueue } from './ports';

export const MAX_EVENTS_PER_REQUEST = 1000;
export const MAX_BODY_BYTES = 1024 * 1024;
/** Keeps every queue message well under SQS's 256 KiB message and batch limits. */
export const MAX_BATCH_BYTES = 120 * 1024;

export interface IngestDeps {
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

/** Parses the body into raw events per SPEC 3.2: the content type says whether one or many. */
export function parseEnvelope(contentType: string | undefined, body: string): unknown[] {
  const type = mediaType(contentType);
  if (Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError('payload_too_large', `the request body exceeds ${MAX_BODY_BYTES} bytes (1 MiB)`);
  }
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

/** Validates every event; the whole request fails if any one does (all-or-nothing). */
export function validateAll(raw: unknown[], deps: Pick<IngestDeps, 'catalog' | 'clock' | 'maxEventAgeMs'>, principal: Principal): MeteredEvent[] {
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
    throw new ValidationError('invalid_events', `${n} of ${raw.length} events are invalid; nothing was accepted`, errors);
  }
  if (principal.customerId !== undefined) {
    const foreign = events.findIndex((e) => e.customerId !== principal.customerId);
    if (foreign >= 0) {
      throw new ForbiddenError('customer_forbidden', `this API key may only send events for "${principal.customerId}"`, [
        { index: foreign, field: 'subject', code: 'customer_forbidden', message: `subject "${events[foreign]!.customerId}" is not the key's customer` },
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
  const raw = parseEnvelope(req.contentType, req.body);
  const events = validateAll(raw, deps, req.principal);
  const result = { status: 202, body: { accepted: events.length } };

  let batchId: (n: number) => string = () => randomUUID();
  if (req.idempotencyKey !== undefined) {
    if (!/^[\x21-\x7e]{1,255}$/.test(req.idempotencyKey)) {
      throw new ValidationError('invalid_idempotency_key', 'Idempotency-Key must be 1..255 visible ASCII characters');
    }
    const requestHash = createHash('sha256').update(mediaType(req.contentType)).update('\n').update(req.body).digest('hex');
    const existing = await deps.idempotency.begin(req.principal.keyId, req.idempotencyKey, requestHash);
    if (existing && existing.requestHash !== requestHash) {
      throw new ConflictError('idempotency_key_reused', 'this Idempotency-Key was already used with a different request body');
    }
    if (existing?.response) {
      return { status: existing.response.status, body: existing.response.body as { accepted: number }, replayed: true };
    }
    // Deterministic batch ids: a retry after a crash re-sends the same batches, which the
    // aggregator then recognises as already applied (and every event is de-duplicated anyway).
    const base = createHash('sha256').update(req.principal.keyId).update('\n').update(req.idempotencyKey).digest('hex').slice(0, 32);
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
