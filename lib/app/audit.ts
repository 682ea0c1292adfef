import * as z from 'zod';
import { compareEvents, compareUtf8, eventDay, eventKey } from '../domain/aggregation';
import { keyMayHold, recount, type ArchivedEvent } from '../domain/archive';
import type { CatalogIndex, Meter } from '../domain/catalog';
import { CursorCodec } from '../domain/cursor';
import { ConflictError, NotFoundError, UnavailableError, ValidationError } from '../domain/errors';
import { Q } from '../domain/quantity';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../domain/events';
import type { Principal } from '../domain/apikey';
import { mapLimit } from '../domain/concurrency';
import { checkCustomerId } from './customer-id';
import type { AuditLedger, CounterState, EventArchive, UsageIndex, UsageLedger, VoidRecord } from './ports/usage';
import type { Clock } from './ports/clock';
import { resolvePeriod } from './period-input';

/**
 * Every cent traceable (docs/audit.md): the events behind a customer's counters, taking an event
 * back (void), and proving that counters equal their events (reconciliation). The archive written
 * by the aggregator is the evidence; voids are recorded beside the counters.
 */
export interface AuditDeps {
  catalog: CatalogIndex;
  archive: EventArchive;
  audit: AuditLedger;
  ledger: Pick<UsageLedger, 'read' | 'readDaily'>;
  usageIndex: UsageIndex;
  clock: Clock;
  /** Late events are accepted this long; a void is a late event with a minus sign, so the same window. */
  correctionWindowMs: number;
  cursorSecret: string | undefined;
}

/** The archive object keys of a customer's period, in key order. */
async function archiveKeys(deps: Pick<AuditDeps, 'archive'>, customerId: string, period: string): Promise<string[]> {
  const keys: string[] = [];
  let after: string | undefined;
  do {
    const page = await deps.archive.list(customerId, period, after);
    keys.push(...page.keys);
    after = page.next;
  } while (after !== undefined);
  return keys;
}

/** Every archived event of a customer's period, object by object, and the keys it read. */
async function readArchive(deps: Pick<AuditDeps, 'archive'>, customerId: string, period: string) {
  const keys = await archiveKeys(deps, customerId, period);
  const objects = await mapLimit(keys, 8, (key) => deps.archive.read(key));
  return { keys, events: objects.flat() };
}

const voidedBy = (voids: VoidRecord[]) => {
  const set = new Set(voids.map((v) => eventKey(v)));
  return (e: Pick<ArchivedEvent, 'source' | 'id'>) => set.has(eventKey(e));
};

// ---------------------------------------------------------------------------------------------
// Listing

export const listEventsQuery = z
  .object({
    period: z.string().optional(),
    meter: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a meter slug')
      .optional(),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, 'must be an integer from 1 to 1000')
      .transform(Number)
      .refine((n) => n >= 1 && n <= 1000, 'must be an integer from 1 to 1000')
      .optional(),
    cursor: z.string().optional(),
  })
  .strict();

/** An archived event as the listing shows it. */
interface ListedEvent {
  source: string;
  id: string;
  type: string;
  time: string;
  readings: Record<string, string>;
  voided: boolean;
  voidReason?: string;
  voidedAt?: string;
}

/**
 * GET /customers/{id}/events: the archived events of a period in a stable order (object key, then
 * (source, id) within an object), with voided ones marked. The cursor names the last event returned
 * by that full order, so a page never skips or repeats an event while others arrive (an object
 * that arrives before it is not listed by this listing; one after it is). It is signed for this
 * customer, period and meter filter, so it can never be turned into a read of another customer's
 * archive nor carried to another filter. A listing filtered on a meter reads only the objects whose
 * key names that meter (docs/audit.md, "Listing").
 */
export async function listEvents(deps: AuditDeps, customerId: string, query: z.infer<typeof listEventsQuery>) {
  checkCustomerId(customerId);
  const period = resolvePeriod(query.period, deps.clock);
  if (query.meter !== undefined && !deps.catalog.meter(query.meter)) {
    throw new ValidationError('unknown_meter', `meter "${query.meter}" is not in the catalog`, [
      { field: 'meter', code: 'unknown_meter', message: 'not in the catalog' },
    ]);
  }
  const limit = query.limit ?? 100;
  const codec = new CursorCodec(deps.cursorSecret, `events\n${customerId}\n${period.key}\n${query.meter ?? ''}`);
  const after = query.cursor === undefined ? undefined : parsePosition(codec.decode(query.cursor, (p) => parsePosition(p) !== undefined));
  const voids = new Map((await deps.audit.voids(customerId, period.key)).map((v) => [eventKey(v), v]));
  const events: ListedEvent[] = [];
  let last: Position | undefined;
  /** Takes an object's events after the cursor; false once the page is full. */
  const take = async (key: string, from?: Position): Promise<boolean> => {
    if (query.meter !== undefined && !keyMayHold(key, query.meter)) return true;
    for (const e of await deps.archive.read(key)) {
      if (from !== undefined && compareEvents(e, from) <= 0) continue;
      if (query.meter !== undefined && !(query.meter in e.readings)) continue;
      if (events.length === limit) return false;
      const v = voids.get(eventKey(e));
      events.push({
        source: e.source,
        id: e.id,
        type: e.type,
        time: e.time,
        readings: e.readings,
        voided: v !== undefined,
        ...(v ? { voidReason: v.reason, voidedAt: v.voidedAt } : {}),
      });
      last = { key, source: e.source, id: e.id };
    }
    return true;
  };
  let full = after !== undefined && !(await take(after.key, after));
  for (let startAfter = after?.key; !full;) {
    const page = await deps.archive.list(customerId, period.key, startAfter);
    for (const key of page.keys) if ((full = !(await take(key)))) break;
    if (page.next === undefined) break;
    startAfter = page.next;
  }
  return { customerId, period: period.key, events, nextCursor: full && last ? codec.encode(JSON.stringify([last.key, last.source, last.id])) : null };
}

/** The last event a page returned, by the listing's order: its object, then (source, id). */
interface Position {
  key: string;
  source: string;
  id: string;
}

function parsePosition(text: string): Position | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'string')) return undefined;
    return { key: v[0] as string, source: v[1] as string, id: v[2] as string };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Void

export const voidInput = z
  .object({
    /** The customer whose event it is: (customer, source, id) is the event's identity. */
    customerId: z.string().regex(SUBJECT_PATTERN, SUBJECT_RULE),
    source: z.string().min(1).max(256),
    id: z.string().min(1).max(256),
    reason: z.string().trim().min(1).max(500),
  })
  .strict();

/**
 * POST /events/void: the event stops counting, exactly once. SUM and COUNT readings are subtracted
 * in the same transaction that records the void; MAX, LATEST and UNIQUE_COUNT meters are
 * recomputed from the archive minus voided events. Voiding again changes nothing (and finishes a
 * recomputation a crash may have cut short). A void of an already invoiced period lowers its
 * counters, and the next invoice corrects it like any late event.
 */
export async function voidEvent(deps: AuditDeps, principal: Principal, input: z.infer<typeof voidInput>) {
  const at = deps.clock.now();
  const where = await deps.audit.locate(input.customerId, input.source, input.id);
  if (!where) throw new NotFoundError('event_not_found', `${input.customerId} has no counted event with this (source, id) within the de-duplication window`);
  if (!where.settled) throw new UnavailableError('event_not_settled', 'the event is still being counted; retry in a few seconds');
  const key = await deps.archive.groupObject(where.customerId, where.period, where.batchId, where.group);
  const archived = key === undefined ? undefined : (await deps.archive.read(key)).find((e) => e.source === input.source && e.id === input.id);
  if (!archived) throw new UnavailableError('event_not_settled', 'the event is still being archived; retry in a few seconds');
  if (Date.parse(archived.time) < at.getTime() - deps.correctionWindowMs) {
    const days = Math.round(deps.correctionWindowMs / 86_400_000);
    throw new ConflictError('event_outside_window', `the event happened more than ${days} days ago: its period can no longer change`);
  }
  const meters = Object.keys(archived.readings)
    .map((slug) => deps.catalog.meter(slug))
    .filter((m): m is Meter => m !== undefined);
  const additive = meters.filter((m) => m.aggregation === 'SUM' || m.aggregation === 'COUNT');
  const record: VoidRecord = { source: input.source, id: input.id, reason: input.reason, voidedAt: at.toISOString(), voidedBy: principal.keyId };
  const subtract = additive.map((m) => ({ meter: m.slug, value: archived.readings[m.slug]! })).filter((s) => !new Q(s.value).isZero());
  const day = eventDay(archived);
  const recorded = await deps.audit.recordVoid(where.customerId, where.period, record, subtract, day);
  await recomputeMeters(
    deps,
    where.customerId,
    where.period,
    meters.filter((m) => !additive.includes(m)),
    day,
  );
  const stored = recorded ? record : (await deps.audit.voids(where.customerId, where.period)).find((v) => eventKey(v) === eventKey(input))!;
  return {
    customerId: where.customerId,
    period: where.period,
    source: input.source,
    id: input.id,
    voided: true as const,
    alreadyVoided: !recorded,
    reason: stored.reason,
    voidedAt: stored.voidedAt,
  };
}

/** What a recount says one counter (of the period, or of `day`) must hold, in the form the store keeps it. */
function recounted(r: ReturnType<typeof recount>, m: Meter, day?: string): CounterState | undefined {
  const value = day === undefined ? r.values[m.slug] : r.days[m.slug]?.[day];
  if (value === undefined) return undefined;
  const order = day === undefined ? r.latest[m.slug] : r.latestDays[m.slug]?.[day];
  return { value, ...(m.aggregation === 'LATEST' ? { order } : {}) };
}

/**
 * Sets MAX, LATEST and UNIQUE_COUNT counters, and the MAX and LATEST counters of `day` (the voided
 * event's day: no other day changes), to what the archive (minus voids) says. Each counter is set
 * only if it still holds what was read, and the archive is listed again afterwards: events are
 * archived before they are counted, so an event counted meanwhile either moved a counter (the
 * compare-and-set fails) or shows up in the second listing; either way the work is done again.
 */
async function recomputeMeters(deps: Pick<AuditDeps, 'archive' | 'audit' | 'catalog'>, customerId: string, period: string, meters: Meter[], day: string) {
  if (meters.length === 0) return;
  // UNIQUE_COUNT has no daily counter (docs/portal.md).
  const counters = [...meters.map((m) => ({ m, day: undefined })), ...meters.filter((m) => m.aggregation !== 'UNIQUE_COUNT').map((m) => ({ m, day }))];
  for (let attempt = 1; attempt <= 8; attempt++) {
    const before = await Promise.all(counters.map((c) => deps.audit.counter(customerId, period, c.m.slug, c.day)));
    const { keys, events } = await readArchive(deps, customerId, period);
    const r = recount(deps.catalog, events, voidedBy(await deps.audit.voids(customerId, period)));
    let moved = false;
    for (const [i, c] of counters.entries()) {
      if (c.m.aggregation === 'UNIQUE_COUNT') await deps.audit.syncUnique(customerId, period, c.m.slug, r.distinct.get(c.m.slug) ?? []);
      if (!(await deps.audit.setCounter(customerId, period, c.m.slug, before[i], recounted(r, c.m, c.day), c.day))) moved = true;
    }
    if (!moved && (await archiveKeys(deps, customerId, period)).length === keys.length) return;
  }
  throw new UnavailableError('counters_busy', 'the counters kept changing while they were recomputed; retry the same request');
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

export interface DriftRow {
  customerId: string;
  meter: string;
  /** Set for a daily counter (the UTC day, YYYY-MM-DD); absent for the period's counter. */
  day?: string;
  counter: string;
  archive: string;
  /** archive - counter */
  drift: string;
  fixed?: boolean;
}

export interface ReconcileOptions {
  period: string;
  customerId?: string;
  /** Write the archive's value over each drifting counter (compare-and-set) and keep an audit entry. */
  fix?: { by: string };
  onProgress?: (done: number, total: number) => void;
}

async function customersWithUsage(deps: Pick<AuditDeps, 'usageIndex'>, period: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.usageIndex.customersWithUsage(period, { cursor, limit: 1000 });
    ids.push(...page.ids);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return ids;
}

/** Recomputes every counter of a period from the archive (minus voids) and compares it with the store. */
export async function reconcile(deps: AuditDeps, opts: ReconcileOptions) {
  // Customers with a counter, and customers with archived events (a counter deleted by hand has no index entry).
  const customers =
    opts.customerId !== undefined
      ? [opts.customerId]
      : [...new Set([...(await customersWithUsage(deps, opts.period)), ...(await deps.archive.customers(opts.period))])].sort(compareUtf8);
  const rows: DriftRow[] = [];
  let events = 0;
  let done = 0;
  await mapLimit(customers, 8, async (customerId) => {
    const [counters, days, archived, voids] = await Promise.all([
      deps.ledger.read(customerId, opts.period),
      deps.ledger.readDaily(customerId, opts.period),
      readArchive(deps, customerId, opts.period),
      deps.audit.voids(customerId, opts.period),
    ]);
    events += archived.events.length;
    const r = recount(deps.catalog, archived.events, voidedBy(voids));
    const known = (s: string) => deps.catalog.meter(s) !== undefined;
    const compare = async (meter: string, counter: string, archive: string, day?: string) => {
      if (new Q(counter).eq(archive)) return;
      const row: DriftRow = { customerId, meter, ...(day === undefined ? {} : { day }), counter, archive, drift: new Q(archive).minus(counter).toFixed() };
      if (opts.fix) row.fixed = await repair(deps, customerId, opts.period, deps.catalog.meter(meter)!, r, opts.fix.by, day);
      rows.push(row);
    };
    for (const meter of [...new Set([...Object.keys(counters.values), ...Object.keys(r.values)])].filter(known)) {
      await compare(meter, counters.values[meter] ?? '0', r.values[meter] ?? '0');
    }
    // The daily counters come from the same archive read: one more query per customer.
    for (const meter of [...new Set([...Object.keys(days), ...Object.keys(r.days)])].filter(known)) {
      for (const day of new Set([...Object.keys(days[meter] ?? {}), ...Object.keys(r.days[meter] ?? {})])) {
        await compare(meter, days[meter]?.[day] ?? '0', r.days[meter]?.[day] ?? '0', day);
      }
    }
    opts.onProgress?.(++done, customers.length);
  });
  const rowKey = (d: DriftRow) => `${d.customerId}\u0001${d.meter}\u0001${d.day ?? ''}`;
  rows.sort((a, b) => compareUtf8(rowKey(a), rowKey(b)));
  return { period: opts.period, customers: customers.length, events, drifts: rows };
}

async function repair(
  deps: AuditDeps,
  customerId: string,
  period: string,
  meter: Meter,
  r: ReturnType<typeof recount>,
  by: string,
  day?: string,
): Promise<boolean> {
  const before = await deps.audit.counter(customerId, period, meter.slug, day);
  const next = recounted(r, meter, day);
  if (meter.aggregation === 'UNIQUE_COUNT' && day === undefined) await deps.audit.syncUnique(customerId, period, meter.slug, r.distinct.get(meter.slug) ?? []);
  const fixed = await deps.audit.setCounter(customerId, period, meter.slug, before, next, day);
  if (fixed) {
    const at = deps.clock.now().toISOString();
    await deps.audit.audit(customerId, period, {
      meter: meter.slug,
      ...(day === undefined ? {} : { day }),
      before: before?.value ?? '0',
      after: next?.value ?? '0',
      by,
      at,
      reason: 'reconcile --fix: set to the archive',
    });
  }
  return fixed;
}
