import * as z from 'zod';
import {
  KEY_ID_PATTERN,
  KEY_LIMIT_BOUNDS,
  SCOPES,
  authorize,
  generateApiKey,
  hashSecret,
  requireUnbound,
  type ApiKeyRecord,
  type KeyLimits,
  type Principal,
} from '../domain/apikey';
import { effectiveLimits } from '../domain/rate-limit';
import { NotFoundError, ValidationError } from '../domain/errors';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../domain/events';
import type { ApiKeyRepository } from './ports/access';
import type { Clock } from './ports/clock';

const limit = (name: keyof KeyLimits) => z.int().min(KEY_LIMIT_BOUNDS[name].min).max(KEY_LIMIT_BOUNDS[name].max);
const LIMIT_FIELDS = {
  requestsPerSecond: limit('requestsPerSecond').meta({ description: 'Requests in one calendar second (UTC), 1..1000.' }),
  eventsPerMinute: limit('eventsPerMinute').meta({ description: 'Events ingested in one calendar minute (UTC), 1,000..60,000,000.' }),
};

export const apiKeyInput = z
  .object({
    name: z.string().trim().min(1).max(128),
    scopes: z.array(z.enum(SCOPES)).min(1),
    customerId: z.string().regex(SUBJECT_PATTERN, SUBJECT_RULE).optional(),
    limits: z
      .object({ requestsPerSecond: LIMIT_FIELDS.requestsPerSecond.optional(), eventsPerMinute: LIMIT_FIELDS.eventsPerMinute.optional() })
      .strict()
      .optional()
      .meta({ description: "The key's own limits; one left out is the deployment's default." }),
  })
  .strict();
export type ApiKeyInput = z.infer<typeof apiKeyInput>;

/** PATCH: the limits given replace the key's; `null` returns one to the deployment's default; one left out stays. */
export const apiKeyPatch = z
  .object({
    limits: z
      .object({ requestsPerSecond: LIMIT_FIELDS.requestsPerSecond.nullable().optional(), eventsPerMinute: LIMIT_FIELDS.eventsPerMinute.nullable().optional() })
      .strict(),
  })
  .strict();
export type ApiKeyPatch = z.infer<typeof apiKeyPatch>;

interface KeyDeps {
  apiKeys: ApiKeyRepository;
  defaultLimits: KeyLimits;
}

const view = (r: ApiKeyRecord, defaults: KeyLimits) => ({
  keyId: r.keyId,
  name: r.name,
  scopes: r.scopes,
  customerId: r.customerId ?? null,
  createdAt: r.createdAt,
  revokedAt: r.revokedAt ?? null,
  limits: effectiveLimits(r.limits, defaults),
  customLimits: { ...r.limits },
});

/** Creates a key; the plain key is returned once and only its hash is stored. */
export async function createApiKey(deps: KeyDeps & { clock: Clock }, principal: Principal, input: ApiKeyInput) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  if (input.customerId !== undefined && input.scopes.includes('admin')) {
    // authorize() refuses admin endpoints to every bound key: such a key would hold a scope it can never use.
    const message = `a key bound to a customer can never use an admin endpoint: leave out "admin" for a key of ${input.customerId}, or leave out customerId for an admin key`;
    throw new ValidationError('admin_key_bound', message, [{ field: 'scopes', code: 'admin_key_bound', message }]);
  }
  const { keyId, secret, plain } = generateApiKey();
  const record: ApiKeyRecord = {
    keyId,
    secretHash: hashSecret(secret),
    name: input.name,
    scopes: [...new Set(input.scopes)],
    customerId: input.customerId,
    createdAt: deps.clock.now().toISOString(),
    ...(input.limits && Object.keys(input.limits).length > 0 ? { limits: input.limits } : {}),
  };
  await deps.apiKeys.create(record);
  return { ...view(record, deps.defaultLimits), key: plain };
}

function checkKeyId(keyId: string): void {
  if (!KEY_ID_PATTERN.test(keyId)) {
    const message = 'key id must be 12 characters of [a-z0-9], as key lists show it';
    throw new ValidationError('invalid_key_id', message, [{ field: 'keyId', code: 'invalid_key_id', message }]);
  }
}
const keyNotFound = (keyId: string) => new NotFoundError('api_key_not_found', `API key "${keyId}" does not exist`);

export async function revokeApiKey(deps: KeyDeps & { clock: Clock }, principal: Principal, keyId: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkKeyId(keyId);
  if (!(await deps.apiKeys.revoke(keyId, deps.clock.now().toISOString()))) throw keyNotFound(keyId);
  return view((await deps.apiKeys.get(keyId))!, deps.defaultLimits);
}

/** Changes a key's limits; they apply from its next request (every request reads its key). */
export async function updateApiKey(deps: KeyDeps, principal: Principal, keyId: string, patch: ApiKeyPatch) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkKeyId(keyId);
  const record = await deps.apiKeys.get(keyId);
  if (!record) throw keyNotFound(keyId);
  const limits: Partial<KeyLimits> = { ...record.limits };
  for (const name of ['requestsPerSecond', 'eventsPerMinute'] as const) {
    const value = patch.limits[name];
    if (value === null) delete limits[name];
    else if (value !== undefined) limits[name] = value;
  }
  if (!(await deps.apiKeys.setLimits(keyId, limits))) throw keyNotFound(keyId);
  return view({ ...record, limits }, deps.defaultLimits);
}

export async function listApiKeys(deps: KeyDeps, principal: Principal) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  return { apiKeys: (await deps.apiKeys.list()).map((r) => view(r, deps.defaultLimits)) };
}
