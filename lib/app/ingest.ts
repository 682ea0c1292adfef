import { createHash, randomUUID } from 'node:crypto';
import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { ConflictError, ForbiddenError, UnavailableError, ValidationError, type ErrorDetail } from '../domain/errors';
import { validateEvent, type MeteredEvent } from '../domain/events';
import { asciiJson } from '../domain/json';
import { limitEvents, type LimitDeps } from './limits';
import type { Clock } from './ports/clock';
import type { IdempotencyStore } from './ports/access';
import type { UsageQueue } from './ports/usage';
import type { UsageBatch } from './messages';

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
  /** The events as sent, not yet validated (the HTTP layer has parsed the envelope). */
  events: unknown[];
  /** Renames a problem's field (binary mode names an attribute by its header). */
  nameProblem?: (d: ErrorDetail) => ErrorDetail;
  /** The request's Idempotency-Key and the digest of everything that makes a request the same one. */
  idempotency?: { key: string; requestHash: string };
}

export interface IngestResult {
  accepted: number;
  /** The answer of an earlier request with the same Idempotency-Key, nothing done again. */
  replayed: boolean;
}

/** Validates every event; the whole request fails if any one does (all-or-nothing). `name` renames a problem's field. */
function validateAll(
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
  const events = validateAll(req.events, deps, req.principal, req.nameProblem);
  // Counted against the key's minute before anything is recorded: a refused request leaves no trace
  // (a retry of an accepted one, Idempotency-Key or not, counts again).
  await limitEvents(deps, req.principal, events.length);

  let batchId: (n: number) => string = () => randomUUID();
  const idem = req.idempotency;
  if (idem !== undefined) {
    if (!/^[\x21-\x7e]{1,255}$/.test(idem.key)) {
      throw new ValidationError('invalid_idempotency_key', 'Idempotency-Key must be 1..255 visible ASCII characters');
    }
    const existing = await deps.idempotency.begin(req.principal.keyId, idem.key, idem.requestHash);
    if (existing && existing.requestHash !== idem.requestHash) {
      throw new ConflictError('idempotency_key_reused', 'this Idempotency-Key was already used with a different request body');
    }
    if (existing?.response) return { accepted: existing.response.accepted, replayed: true };
    // Deterministic batch ids: a retry after a crash re-sends the same batches, which the
    // aggregator then recognises as already applied (and every event is de-duplicated anyway).
    // They name the request, not only its key: a key reused for another request once its record has
    // expired (after 24 hours) is a new batch, never one whose events were counted before.
    const base = createHash('sha256')
      .update(req.principal.keyId)
      .update('\n')
      .update(idem.key)
      .update('\n')
      .update(idem.requestHash)
      .digest('hex')
      .slice(0, 32);
    batchId = (n) => `idem-${base}-${n}`;
  }

  try {
    await deps.queue.enqueue(toBatches(events, deps.clock.now().toISOString(), batchId));
  } catch (err) {
    if (!(err instanceof UnavailableError)) throw err;
    // Some messages may be queued: a retry re-sends them all, and the per-event claim (or, with the
    // same Idempotency-Key, the same batch ids) makes every event count once.
    throw Object.assign(
      new UnavailableError(
        'enqueue_incomplete',
        'not every event could be queued; it is safe to retry this exact request (with or without the same Idempotency-Key): each event is counted exactly once',
      ),
      { cause: err },
    );
  }
  if (idem !== undefined) await deps.idempotency.complete(req.principal.keyId, idem.key, { accepted: events.length });
  return { accepted: events.length, replayed: false };
}
