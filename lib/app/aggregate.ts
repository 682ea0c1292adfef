import { distinctEvents, planAggregation, type AggregationPlan } from '../domain/aggregation';
import { archiveGroups, groupIndex } from '../domain/archive';
import type { CatalogIndex } from '../domain/catalog';
import type { MeteredEvent } from '../domain/events';
import { evaluateTouched, type AlertDeps } from './alerts';
import type { EventArchive, UsageEpoch, UsageLedger } from './ports/usage';
import type { UsageBatch } from './messages';

export interface BatchOutcome {
  batchId: string;
  events: number;
  counted: number;
  duplicates: number;
  /** Events left for a later delivery: their meters are not known to this aggregator yet (a deploy under way). */
  deferred: number;
  /** The (customer, period) pairs whose counters this batch owns changes to (alerts look at them). */
  touched: { customerId: string; period: string }[];
  /** Per meter (by slug), events counted and dropped as duplicates: an event counts for each meter it has a reading for. */
  byMeter: { meter: string; counted: number; duplicates: number }[];
}

function tallyByMeter(owned: MeteredEvent[], duplicates: MeteredEvent[]): BatchOutcome['byMeter'] {
  const tally = new Map<string, { meter: string; counted: number; duplicates: number }>();
  const add = (events: MeteredEvent[], field: 'counted' | 'duplicates') => {
    for (const e of events) {
      for (const meter of Object.keys(e.readings)) {
        const t = tally.get(meter) ?? { meter, counted: 0, duplicates: 0 };
        t[field] += 1;
        tally.set(meter, t);
      }
    }
  };
  add(owned, 'counted');
  add(duplicates, 'duplicates');
  return [...tally.values()].sort((a, b) => (a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0));
}

/** The part of a message whose meters the aggregator did not know yet, counted by a later delivery under this batch id. */
const deferredBatchId = (batchId: string) => `${batchId}~deferred`;

/** An event this aggregator cannot count: a reading for a meter its catalog (and what was published) does not know. */
const unknownTo = (catalog: CatalogIndex) => (e: MeteredEvent) => Object.keys(e.readings).some((slug) => catalog.meter(slug) === undefined);

/** The message holds an event this aggregator cannot count: a newer one claimed it. Fail the message; a later delivery counts it. */
class UnknownMeterHeldError extends Error {
  constructor(batchId: string, meters: string[]) {
    super(`batch ${batchId} holds events of meters this aggregator does not know (${meters.join(', ')}): left to a later delivery`);
    this.name = 'UnknownMeterHeldError';
  }
}

/**
 * Counts one queue message exactly once (docs/exactly-once.md):
 * 1. claim every distinct event whose meters this aggregator knows for this batch (a conditional
 *    marker per event, which also records where the event is archived: customer, period and
 *    group); reserve every other one for the batch's deferred part (`<batchId>~deferred`);
 * 2. archive the events this batch owns, one object per (customer, period) group, before any
 *    counter moves, so that an archived object exists for everything counted;
 * 3. plan the counter changes from the owned events and apply them under the batch's "applied" marker;
 * 4. the deferred part likewise, once every meter in it is known: until then the outcome says how
 *    many events wait (`deferred`), and the caller leaves the message to SQS to deliver again.
 * Which batch holds an event's claim decides, once and for every later delivery, which part counts
 * it: an aggregator with another catalog, on a later delivery, finds the same parts. Any failure
 * leaves the message to SQS: a redelivery re-claims its own markers, rewrites the same archive
 * objects (same content, same keys) and either finds each plan applied or applies it now.
 */
export async function countBatch(deps: { ledger: UsageLedger; catalog: CatalogIndex; archive: EventArchive }, batch: UsageBatch): Promise<BatchOutcome> {
  const { distinct, repeats } = distinctEvents(batch.events);
  const groups = groupIndex(batch.events);
  const groupOf = (e: MeteredEvent) => groups.get(`${e.customerId}\u0001${e.period}`)!;
  const unknown = unknownTo(deps.catalog);
  const deferredId = deferredBatchId(batch.batchId);
  const known = distinct.filter((e) => !unknown(e));
  const strange = distinct.filter(unknown);
  const [heldKnown, heldStrange] = await Promise.all([
    deps.ledger.claim(batch.batchId, known, groupOf),
    strange.length > 0 ? deps.ledger.claim(deferredId, strange, groupOf) : [],
  ]);
  const holder = new Map<MeteredEvent, string>([...known.map((e, i) => [e, heldKnown[i]!] as const), ...strange.map((e, i) => [e, heldStrange[i]!] as const)]);
  const held = (by: string) => distinct.filter((e) => holder.get(e) === by);
  const owned = held(batch.batchId);
  const deferred = held(deferredId);
  const duplicates = [...distinct.filter((e) => holder.get(e) !== batch.batchId && holder.get(e) !== deferredId), ...repeats];
  const stuck = owned.filter(unknown);
  if (stuck.length > 0) throw new UnknownMeterHeldError(batch.batchId, unknownSlugs(deps.catalog, stuck));

  await count(deps, batch.batchId, batch.events, owned, planAggregation(owned, duplicates, deps.catalog));
  // The deferred part counts when every meter in it is known, all of it at once: its plan is then the same whichever delivery applies it.
  const waiting = deferred.some(unknown);
  if (deferred.length > 0 && !waiting) await count(deps, deferredId, batch.events, deferred, planAggregation(deferred, [], deps.catalog));
  const counted = waiting ? owned : [...owned, ...deferred];
  const touched = new Map(counted.map((e) => [`${e.customerId}\u0001${e.period}`, { customerId: e.customerId, period: e.period }]));
  return {
    batchId: batch.batchId,
    events: batch.events.length,
    counted: counted.length,
    duplicates: duplicates.length,
    deferred: waiting ? deferred.length : 0,
    touched: [...touched.values()],
    byMeter: tallyByMeter(counted, duplicates),
  };
}

/** Archives a part's events (groups numbered over the whole message) and applies its plan under its batch id. */
async function count(deps: { ledger: UsageLedger; archive: EventArchive }, batchId: string, all: MeteredEvent[], owned: MeteredEvent[], plan: AggregationPlan) {
  await Promise.all(archiveGroups(batchId, all, owned).map((g) => deps.archive.put(g)));
  await deps.ledger.apply(batchId, plan);
}

function unknownSlugs(catalog: CatalogIndex, events: MeteredEvent[]): string[] {
  return [...new Set(events.flatMap((e) => Object.keys(e.readings)).filter((slug) => catalog.meter(slug) === undefined))].sort();
}

export interface UsageMessageDeps extends AlertDeps {
  ledger: UsageLedger;
  archive: EventArchive;
  epoch: Pick<UsageEpoch, 'note'>;
}

/**
 * One usage message, end to end: its events counted exactly once, its periods noted as having
 * usage (invoice runs start from the first), then the alerts of every (customer, period) it
 * changed. Alerts are part of the message: if evaluating fails, SQS delivers it again, the counting
 * finds itself done, and the evaluation runs again (level-triggered, each alert claimed once).
 */
export async function processUsageMessage(deps: UsageMessageDeps, batch: UsageBatch) {
  const counted = await countBatch(deps, batch);
  await Promise.all([...new Set(counted.touched.map((t) => t.period))].map((p) => deps.epoch.note(p)));
  const alerts = await evaluateTouched(deps, counted.touched);
  return { ...counted, alerts };
}
