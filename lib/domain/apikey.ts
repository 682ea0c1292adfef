import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ForbiddenError } from './errors';

/**
 * API keys look like `mk_<keyId>_<secret>`. The key id is public (it names the key in lists and
 * revocations); the secret is 32 random bytes and only its SHA-256 is stored. A slow password hash
 * buys nothing for a 256-bit random secret, and a fast one keeps every request cheap.
 */
export const SCOPES = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyRecord {
  keyId: string;
  secretHash: string;
  name: string;
  scopes: Scope[];
  customerId?: string;
  createdAt: string;
  revokedAt?: string;
  /** This key's own limits; a limit left out is the deployment's default. */
  limits?: Partial<KeyLimits>;
}

export interface Principal {
  keyId: string;
  scopes: Scope[];
  /** When set, the key may only touch this customer. */
  customerId?: string;
  /** The key's own limits (the rest are the deployment's defaults). */
  limits?: Partial<KeyLimits>;
}

/**
 * What one key may do (docs/scaling.md, "Limits"): requests in one calendar second (UTC), and events
 * ingested in one calendar minute. A key's events-per-minute can take at least one full request.
 */
export interface KeyLimits {
  requestsPerSecond: number;
  eventsPerMinute: number;
}
export const KEY_LIMIT_BOUNDS: Record<keyof KeyLimits, { min: number; max: number }> = {
  // A key's requests of one minute are counted on one DynamoDB item, which takes ~1,000 writes/s.
  requestsPerSecond: { min: 1, max: 1_000 },
  // The most events one request carries (lib/app/ingest.ts), up to 1,000 full requests a second.
  eventsPerMinute: { min: 1_000, max: 60_000_000 },
};

const KEY_PATTERN = /^mk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
/** The public part of a key: what lists show and revocations name. */
export const KEY_ID_PATTERN = /^[a-z0-9]{12}$/;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateApiKey(): { keyId: string; secret: string; plain: string } {
  const keyId = randomBytes(9)
    .toString('base64url')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0')
    .slice(0, 12)
    .padEnd(12, '0');
  const secret = randomBytes(32).toString('base64url');
  return { keyId, secret, plain: `mk_${keyId}_${secret}` };
}

export function parseApiKey(plain: string): { keyId: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(plain);
  return m ? { keyId: m[1]!, secret: m[2]! } : undefined;
}

export function secretMatches(secret: string, record: Pick<ApiKeyRecord, 'secretHash'>): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(record.secretHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * RFC 9110/6750: `Bearer` (any case), then SP or HTAB only, then a token68. JavaScript's \s would
 * also take a no-break space or any other Unicode space as a separator.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i.exec(authorization ?? '');
  return m?.[1];
}

/** 401 for no/unknown key is decided before this; here a known key meets its scope and customer binding. */
export function authorize(principal: Principal, scope: Scope, customerId?: string): void {
  if (!principal.scopes.includes(scope) && !principal.scopes.includes('admin')) {
    throw new ForbiddenError('insufficient_scope', `this API key lacks the "${scope}" scope`);
  }
  if (customerId !== undefined && principal.customerId !== undefined && principal.customerId !== customerId) {
    throw new ForbiddenError('customer_forbidden', `this API key is bound to another customer and may not access "${customerId}"`);
  }
}

export function requireUnbound(principal: Principal): void {
  if (principal.customerId !== undefined) {
    throw new ForbiddenError('customer_forbidden', 'this API key is bound to one customer and may not use this endpoint');
  }
}
