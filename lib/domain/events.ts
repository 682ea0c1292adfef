import type { CatalogIndex, Meter } from './catalog';
import type { ErrorDetail } from './errors';
import { InexactNumber, isJsonObject } from './json';
import { Period } from './period';
import { isNegative, parseReading } from './quantity';

/**
 * CloudEvents 1.0 (JSON structured mode), as OpenMeter ingests them, turned into the compact form
 * that travels on the usage queue: identity, customer, normalized time and one reading per meter.
 */
export interface MeteredEvent {
  source: string;
  id: string;
  type: string;
  customerId: string;
  /** UTC, nanosecond digits, fixed width: sorts lexicographically in time order (LATEST meters). */
  time: string;
  period: string;
  /** meter slug -> canonical decimal string (COUNT: "1"; UNIQUE_COUNT: the distinct value as text). */
  readings: Record<string, string>;
}

/**
 * Customer ids travel in URL paths (`/customers/{id}/usage`): 1..128 of [A-Za-z0-9._:-], but not
 * "." or "..", which a path normalizes away, so such a customer could never be read back.
 */
export const SUBJECT_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$/;
export const SUBJECT_RULE = 'must be 1..128 characters of [A-Za-z0-9._:-], and not "." or ".."';
const FUTURE_TOLERANCE_MS = 5 * 60 * 1000;

export interface ValidationContext {
  catalog: CatalogIndex;
  now: Date;
  /** Events older than this are rejected (the de-duplication window must cover them). */
  maxAgeMs: number;
}

export type EventValidation = { ok: true; event: MeteredEvent } | { ok: false; errors: ErrorDetail[] };

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp into its instant (ms) and a normalized, sortable UTC text.
 *
 * A leap second (second 60, which RFC 3339 allows where UTC has one: 23:59:60 UTC, whatever the
 * offset it is written in) has no place in a count of milliseconds. It becomes the last instant of
 * its minute, 23:59:59.999999999 UTC: the same day and billing period as the leap second itself,
 * after every other time of that minute.
 */
export function parseEventTime(text: string): { instant: Date; normalized: string } | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, written] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  const leap = written === 60;
  const second = leap ? 59 : written;
  if (month! < 1 || month! > 12 || hour! > 23 || minute! > 59 || second! > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (day! < 1 || day! > daysInMonth) return undefined;
  let ms = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  if (m[9]) {
    const offsetMin = Number(m[10]) * 60 + Number(m[11]);
    if (Number(m[10]) > 23 || Number(m[11]) > 59) return undefined;
    ms -= (m[9] === '+' ? 1 : -1) * offsetMin * 60_000;
  }
  const fraction = leap ? '999999999' : (m[7] ?? '.').slice(1).padEnd(9, '0');
  ms += Number(fraction.slice(0, 3));
  const instant = new Date(ms);
  if (Number.isNaN(instant.getTime()) || instant.getUTCFullYear() < 1970 || instant.getUTCFullYear() > 9999) return undefined;
  if (leap && instant.toISOString().slice(11, 19) !== '23:59:59') return undefined;
  const normalized = `${instant.toISOString().slice(0, 19)}.${fraction}Z`;
  return { instant, normalized };
}

const TIME_RULE = 'an RFC 3339 string, e.g. "2026-11-23T18:00:00Z"';

/** What a JSON value is, for messages: "a number (1796662889535)", "an object", "null". */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof InexactNumber) return `a number (${v.text.slice(0, 32)})`;
  switch (typeof v) {
    case 'number':
      return `a number (${String(v)})`;
    case 'boolean':
      return `a boolean (${String(v)})`;
    case 'object':
      return 'an object';
    default:
      return `a ${typeof v}`;
  }
}

/**
 * A number sent as the time is most likely Unix time: say which RFC 3339 string it would be, in
 * milliseconds (13 digits for today's dates) or seconds (10), so the fix is one copy away.
 */
function asEpochTime(v: unknown): string {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return '';
  const [ms, unit] = v >= 1e11 ? [v, 'milliseconds'] : [v * 1000, 'seconds'];
  const instant = new Date(ms);
  if (Number.isNaN(instant.getTime()) || instant.getUTCFullYear() > 9999) return '';
  return ` (as Unix time in ${unit}, that is "${instant.toISOString().replace('.000Z', 'Z')}")`;
}

/** An unknown_type message lists at most this many event types, in at most this many characters; then "and N more". */
const TYPES_LISTED = { count: 20, chars: 400 };

/** The event types the catalog's meters read, sorted, for an unknown_type message (bounded by TYPES_LISTED). */
function typesRead(catalog: CatalogIndex): string {
  const types = [...new Set(catalog.meters().map((m) => m.eventType))].sort();
  if (types.length === 0) return 'the catalog has no meters';
  const listed: string[] = [];
  let chars = 0;
  for (const t of types) {
    if (listed.length === TYPES_LISTED.count || (listed.length > 0 && chars + t.length + 4 > TYPES_LISTED.chars)) break;
    listed.push(`"${t}"`);
    chars += t.length + 4;
  }
  const more = types.length - listed.length;
  return `the types read are ${listed.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

/** Reads `$.a.b` from an object. */
function readPath(data: unknown, path: string): unknown {
  let current: unknown = data;
  for (const key of path.slice(2).split('.')) {
    if (!isJsonObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

function isString(v: unknown, min: number, max: number): v is string {
  return typeof v === 'string' && v.length >= min && v.length <= max;
}

/**
 * A lone surrogate (JSON allows `"\ud800"`) has no UTF-8 form: DynamoDB compares and stores keys as
 * UTF-8 and a hash of the text would replace it with U+FFFD, so two different ids could meet. Such
 * strings are refused at ingest; every other code point, U+0000 and U+FFFF included, is carried.
 */
function hasLoneSurrogate(text: string): boolean {
  return /\p{Cs}/u.test(text);
}
const LONE_SURROGATE = 'must be well-formed Unicode (a lone UTF-16 surrogate such as \\ud800 cannot be stored)';

function reading(meter: Meter, data: unknown): { ok: true; value: string } | { ok: false; error: Omit<ErrorDetail, 'index'> } {
  if (meter.aggregation === 'COUNT') return { ok: true, value: '1' };
  const path = meter.valueProperty!;
  const field = `data${path.slice(1)}`;
  const raw = readPath(data, path);
  if (meter.aggregation === 'UNIQUE_COUNT') {
    if (typeof raw === 'number' && Number.isFinite(raw)) return { ok: true, value: String(raw) };
    if (raw instanceof InexactNumber) {
      const message = `${field}: ${raw.text.slice(0, 64)} has more digits than a JSON number (a double) carries exactly; send it as a string`;
      return { ok: false, error: { field, code: 'inexact_number', message } };
    }
    if (isString(raw, 1, 256) && hasLoneSurrogate(raw)) return { ok: false, error: { field, code: 'invalid_unicode', message: `${field} ${LONE_SURROGATE}` } };
    if (isString(raw, 1, 256)) return { ok: true, value: raw };
    return {
      ok: false,
      error: {
        field,
        code: raw === undefined ? 'value_missing' : 'invalid_value',
        message: `${field} must be a string (1..256 chars) or a number for meter "${meter.slug}"`,
      },
    };
  }
  const q = parseReading(raw);
  if (!q.ok) return { ok: false, error: { field, code: q.code, message: `${field}: ${q.message} (meter "${meter.slug}")` } };
  if ((meter.aggregation === 'SUM' || meter.aggregation === 'MAX') && isNegative(q.value)) {
    return { ok: false, error: { field, code: 'negative_value', message: `${field} must not be negative for ${meter.aggregation} meter "${meter.slug}"` } };
  }
  return { ok: true, value: q.value };
}

/** Validates one CloudEvent (the event rules in the README); every problem is reported, not just the first. */
export function validateEvent(raw: unknown, index: number, ctx: ValidationContext): EventValidation {
  const errors: ErrorDetail[] = [];
  const add = (field: string, code: string, message: string) => errors.push({ index, field, code, message });
  if (!isJsonObject(raw)) {
    return { ok: false, errors: [{ index, code: 'invalid_event', message: 'each event must be a JSON object' }] };
  }
  const e = raw as Record<string, unknown>;
  if (e.specversion !== '1.0') add('specversion', 'invalid_specversion', 'specversion must be "1.0"');
  for (const field of ['id', 'source'] as const) {
    const v = e[field];
    if (!isString(v, 1, 256)) add(field, v === undefined ? 'missing_field' : 'invalid_field', `${field} must be a string of 1..256 characters`);
    else if (hasLoneSurrogate(v)) add(field, 'invalid_unicode', `${field} ${LONE_SURROGATE}`);
  }
  if (typeof e.subject !== 'string' || !SUBJECT_PATTERN.test(e.subject)) {
    add('subject', e.subject === undefined ? 'missing_field' : 'invalid_field', `subject (the customer id) ${SUBJECT_RULE}`);
  }
  if (e.datacontenttype !== undefined && e.datacontenttype !== 'application/json') {
    add('datacontenttype', 'invalid_field', 'datacontenttype must be "application/json" when present');
  }
  if (e.data !== undefined && !isJsonObject(e.data)) {
    add('data', 'invalid_field', 'data must be a JSON object');
  }

  let time: { instant: Date; normalized: string } | undefined;
  if (e.time === undefined) add('time', 'missing_field', `time is required: ${TIME_RULE}`);
  else if (typeof e.time !== 'string') add('time', 'invalid_field', `time must be ${TIME_RULE}; got ${describeValue(e.time)}${asEpochTime(e.time)}`);
  else if (!(time = parseEventTime(e.time))) add('time', 'invalid_time', `time "${e.time.slice(0, 64)}" is not a valid RFC 3339 timestamp`);
  else if (time.instant.getTime() > ctx.now.getTime() + FUTURE_TOLERANCE_MS) add('time', 'event_in_future', 'time is more than 5 minutes in the future');
  else if (time.instant.getTime() < ctx.now.getTime() - ctx.maxAgeMs) {
    add('time', 'event_too_old', `time is older than the ${Math.round(ctx.maxAgeMs / 86_400_000)}-day de-duplication window`);
  }

  const readings: Record<string, string> = {};
  if (typeof e.type !== 'string' || e.type.length === 0)
    add('type', e.type === undefined ? 'missing_field' : 'invalid_field', 'type must be a non-empty string');
  else {
    const meters = ctx.catalog.metersForType(e.type);
    if (meters.length === 0) add('type', 'unknown_type', `type "${e.type.slice(0, 128)}" is not read by any meter; ${typesRead(ctx.catalog)}`);
    for (const meter of meters) {
      const r = reading(meter, e.data);
      if (r.ok) readings[meter.slug] = r.value;
      else errors.push({ index, ...r.error });
    }
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    event: {
      source: e.source as string,
      id: e.id as string,
      type: e.type as string,
      customerId: e.subject as string,
      time: time!.normalized,
      period: Period.containing(time!.instant).key,
      readings,
    },
  };
}
