import type { ApiKeyRecord, KeyLimits } from '../../domain/apikey';
import type { LimitWindow } from '../../domain/rate-limit';

/** API keys, their limits, and Idempotency-Key records. lib/adapters implements it on AWS. */

export interface ApiKeyRepository {
  get(keyId: string): Promise<ApiKeyRecord | undefined>;
  create(record: ApiKeyRecord): Promise<void>;
  revoke(keyId: string, at: string): Promise<boolean>;
  /** Replaces the key's own limits (an empty object: the defaults); false if there is no such key. */
  setLimits(keyId: string, limits: Partial<KeyLimits>): Promise<boolean>;
  list(): Promise<ApiKeyRecord[]>;
}

/** Counters of the keys' limit windows (lib/domain/rate-limit.ts). */
export interface RateLimiter {
  /** Adds `count` to the window unless that would take it past `limit`: false (nothing added) then. */
  take(window: LimitWindow, count: number, limit: number): Promise<boolean>;
}

export interface IdempotencyRecord {
  scope: string;
  key: string;
  requestHash: string;
  /** What the request was answered, once it was done. */
  response?: { accepted: number };
}

export interface IdempotencyStore {
  /** Records the key for this request hash unless it exists; returns the existing record if any. */
  begin(scope: string, key: string, requestHash: string): Promise<IdempotencyRecord | undefined>;
  complete(scope: string, key: string, response: { accepted: number }): Promise<void>;
}
