/**
 * Stripe's idempotency layer.
 *
 * A POST carrying `Idempotency-Key` is remembered per API key together with
 * its method, path and parameters. Rules (as documented by Stripe):
 * - same key, same request, earlier one finished  -> replay the saved status and body;
 * - same key, different endpoint or parameters    -> 400 idempotency_error;
 * - same key while the first is still executing   -> 409 (no result is saved);
 * - a request rejected before the endpoint started executing (bad parameters,
 *   rate limiting, auth) saves nothing, so a corrected retry may reuse the key;
 * - keys are forgotten after 24 hours.
 */
import { FakeStripeError } from './errors';

const KEY_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_KEY_LENGTH = 255;

export interface Fingerprint {
  method: string;
  path: string;
  /** Output of `canonicalParams`. */
  params: string;
}

export interface StoredResponse {
  status: number;
  /** Exact bytes sent the first time; replays send the same bytes. */
  body: string;
  requestId: string;
}

interface Entry {
  fingerprint: Fingerprint;
  createdAt: number;
  response: StoredResponse | undefined;
}

/** A key reserved for a request that is executing now. Exactly one of commit/release must be called. */
export interface Reservation {
  commit(response: StoredResponse): void;
  release(): void;
}

export type Decision =
  { kind: 'proceed'; reservation: Reservation } | { kind: 'replay'; response: StoredResponse } | { kind: 'reject'; error: FakeStripeError };

function idempotencyError(status: number, message: string, code?: string): FakeStripeError {
  return new FakeStripeError(status, 'idempotency_error', message, { code, preExecution: true });
}

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  clear(): void {
    this.entries.clear();
  }

  begin(apiKey: string, key: string, fingerprint: Fingerprint, now: number): Decision {
    if (key.length > MAX_KEY_LENGTH) {
      return {
        kind: 'reject',
        error: new FakeStripeError(
          400,
          'invalid_request_error',
          `Idempotency keys can be no longer than ${MAX_KEY_LENGTH} characters; yours was ${key.length}.`,
          { preExecution: true },
        ),
      };
    }
    this.expire(now);
    // The NUL separator cannot occur in an HTTP header value, so scoping cannot collide.
    const scoped = `${apiKey}\u0000${key}`;
    const existing = this.entries.get(scoped);
    if (existing) {
      const before = existing.fingerprint;
      if (before.method !== fingerprint.method || before.path !== fingerprint.path) {
        return {
          kind: 'reject',
          error: idempotencyError(
            400,
            `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${before.method} ${before.path}' vs '${fingerprint.method} ${fingerprint.path}'). Try using a key other than '${key}' if you meant to execute a different request.`,
          ),
        };
      }
      if (before.params !== fingerprint.params) {
        return {
          kind: 'reject',
          error: idempotencyError(
            400,
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          ),
        };
      }
      if (existing.response === undefined) {
        return {
          kind: 'reject',
          error: idempotencyError(
            409,
            `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${key}. Please try again later.`,
            'idempotency_key_in_use',
          ),
        };
      }
      return { kind: 'replay', response: existing.response };
    }

    const entry: Entry = { fingerprint, createdAt: now, response: undefined };
    this.entries.set(scoped, entry);
    let settled = false;
    return {
      kind: 'proceed',
      reservation: {
        commit: (response) => {
          if (settled) return;
          settled = true;
          // A reset() while the request was executing dropped the entry; do not resurrect it.
          if (this.entries.get(scoped) === entry) entry.response = response;
        },
        release: () => {
          if (settled) return;
          settled = true;
          if (this.entries.get(scoped) === entry) this.entries.delete(scoped);
        },
      },
    };
  }

  private expire(now: number): void {
    // Map iteration is insertion order, i.e. oldest first: stop at the first live entry.
    for (const [k, e] of this.entries) {
      if (now - e.createdAt < KEY_TTL_MS) break;
      this.entries.delete(k);
    }
  }
}
