import { createHash } from 'node:crypto';
import { claimIdentity } from '../../domain/aggregation';
import type { MeteredEvent } from '../../domain/events';

/**
 * The key layout of the usage and dedupe tables, in one place (docs/exactly-once.md): counters,
 * day counters, shards, UNIQUE_COUNT markers, claim markers and applied markers. The ledger writes
 * these keys; counter reads and the audit (voids, reconciliation) read them.
 */
export const DUPLICATES_SK = 'm#_duplicates';

/**
 * Counter shards (docs/scaling.md "One hot customer"): additive updates of a batch go to shard
 * `hash(batchId) mod shards` of each counter, item `<sk>` for shard 0 and `<sk>#<n>` for the others
 * (period counters, the duplicates tally and day counters alike). The same batch always lands on
 * the same shard, under the same applied marker, so a redelivery changes nothing; readers add the
 * shards up. MAX and LATEST are never sharded.
 */
export function shardSuffix(batchId: string, shards: number): string {
  if (shards <= 1) return '';
  const n = createHash('sha256').update(batchId, 'utf8').digest().readUInt32BE(0) % shards;
  return n === 0 ? '' : `#${n}`;
}

/** The meter (or `_duplicates`) a counter item belongs to: `m#api_calls#3` -> `api_calls`. */
export const counterOf = (sk: string) => sk.slice(2).split('#')[0]!;

export const usagePk = (customerId: string, period: string) => `${customerId}|${period}`;
export const counterSk = (meter: string) => `m#${meter}`;
/** A meter's counter of one UTC day; `begins_with(sk, "d#")` reads a period's daily series. */
export const dailySk = (meter: string, day: string) => `d#${meter}#${day}`;
/** Written when a batch has been applied in full. */
export const settledPk = (batchId: string) => `ap|${batchId}|settled`;

/** DynamoDB refuses partition keys over 2,048 bytes and sort keys over 1,024 (UTF-8). */
const MAX_PARTITION_KEY_BYTES = 2048;
const MAX_UNIQUE_VALUE_BYTES = 200;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The claim marker of an event: its de-duplication identity (customer, source, id), so one
 * customer's ids never meet another's. Every key DynamoDB can store keeps its readable form; a
 * longer one (ids and sources are up to 256 characters, and JSON escapes a control character into
 * 6 bytes) is named by the SHA-256 of that form. `ev|sha256:` can never be a readable key, which
 * always starts with `ev|[`.
 */
export function claimPk(e: Pick<MeteredEvent, 'customerId' | 'source' | 'id'>): string {
  return keyOf(`ev|${claimIdentity(e)}`);
}

/**
 * The claim of an event as markers were written before the identity included the customer
 * (2026-12-07): (source, id). Read alongside, for as long as such markers can still meet a
 * resend (LEGACY_CLAIMS_UNTIL), so that an event counted before the change stays a duplicate.
 */
export function legacyClaimPk(e: Pick<MeteredEvent, 'source' | 'id'>): string {
  return keyOf(`ev|${JSON.stringify([e.source, e.id])}`);
}

const keyOf = (readable: string) => (Buffer.byteLength(readable, 'utf8') <= MAX_PARTITION_KEY_BYTES ? readable : `ev|sha256:${sha256(readable)}`);

/**
 * One marker per distinct UNIQUE_COUNT value. Long values are stored by their hash; a short value
 * that itself starts with `sha256:` is hashed too, so a client cannot make its value share the
 * marker of someone's long value.
 */
export function uniqueSk(meter: string, value: string): string {
  const readable = Buffer.byteLength(value, 'utf8') <= MAX_UNIQUE_VALUE_BYTES && !value.startsWith('sha256:');
  return `u#${meter}#${readable ? value : `sha256:${sha256(value)}`}`;
}
