import { createHash } from 'node:crypto';
import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError, type ErrorDetail } from '../domain/errors';
import { parseJson } from '../domain/json';
import type { IngestRequest } from '../app/ingest';

/**
 * The CloudEvents HTTP binding as ingest speaks it: which media types carry one event or many,
 * binary content mode (attributes in `ce-*` headers, the data as the body), the request's limits,
 * and the Idempotency-Key header with the digest that says whether two requests are "the same".
 * What comes out is plain values for the use case (lib/app/ingest.ts), which knows no HTTP.
 */
export const MAX_EVENTS_PER_REQUEST = 1000;
const MAX_BODY_BYTES = 1024 * 1024;

const CONTENT_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json'] as const;
type IngestContentType = (typeof CONTENT_TYPES)[number];

/** Only the attributes the product reads are taken from headers; others (ce-dataschema, extensions) are ignored as in structured mode. */
const BINARY_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time'] as const;
const headerOf = (attribute: string) => `ce-${attribute}`;

export interface IngestHttpRequest {
  contentType: string | undefined;
  body: string;
  /** The request's `ce-*` headers, names in lower case. */
  ceHeaders: Record<string, string>;
  idempotencyKey: string | undefined;
}

/** What the use case takes from the request, beside who sent it. */
export type ParsedIngestRequest = Omit<IngestRequest, 'principal'>;

/** Parses an ingest request: media type, size, one or many events, binary mode, Idempotency-Key. */
export function parseIngestRequest(req: IngestHttpRequest): ParsedIngestRequest {
  const type = mediaType(req.contentType);
  if (Buffer.byteLength(req.body, 'utf8') > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError('payload_too_large', `the request body exceeds ${MAX_BODY_BYTES} bytes (1 MiB)`);
  }
  const binary = type === 'application/json' && req.ceHeaders['ce-specversion'] !== undefined;
  const events = binary ? [binaryEvent(req.ceHeaders, req.body.trim() === '' ? undefined : parseJson(req.body))] : structuredEvents(type, req.body);
  const out: ParsedIngestRequest = { events };
  if (binary) out.nameProblem = namedByHeader;
  if (req.idempotencyKey !== undefined) {
    // Its form is checked by the use case, after the events (a client learns of those first).
    // In binary mode the event's identity is in the headers: they are part of "the same request".
    const attributes = binary ? BINARY_ATTRIBUTES.map((a) => `${headerOf(a)}:${req.ceHeaders[headerOf(a)] ?? ''}\n`).join('') : '';
    const requestHash = createHash('sha256').update(type).update('\n').update(attributes).update(req.body).digest('hex');
    out.idempotency = { key: req.idempotencyKey, requestHash };
  }
  return out;
}

function mediaType(header: string | undefined): IngestContentType {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  const found = CONTENT_TYPES.find((t) => t === type);
  if (!found) {
    throw new UnsupportedMediaTypeError('unsupported_media_type', `Content-Type must be one of ${CONTENT_TYPES.join(', ')}; got "${type || '(none)'}"`);
  }
  return found;
}

function structuredEvents(type: IngestContentType, body: string): unknown[] {
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

function namedByHeader(d: ErrorDetail): ErrorDetail {
  const attribute = BINARY_ATTRIBUTES.find((a) => a === d.field);
  if (!attribute) return d;
  return { ...d, field: headerOf(attribute), message: d.message.replace(new RegExp(`^${attribute}\\b`), headerOf(attribute)) };
}
