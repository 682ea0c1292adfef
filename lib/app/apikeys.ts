import * as z from 'zod';
import { KEY_ID_PATTERN, SCOPES, authorize, generateApiKey, hashSecret, requireUnbound, type ApiKeyRecord, type Principal } from '../domain/apikey';
import { NotFoundError, ValidationError } from '../domain/errors';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../domain/events';
import type { ApiKeyRepository, Clock } from './ports';

export const apiKeyInput = z
  .object({
    name: z.string().trim().min(1).max(128),
    scopes: z.array(z.enum(SCOPES)).min(1),
    customerId: z.string().regex(SUBJECT_PATTERN, SUBJECT_RULE).optional(),
  })
  .strict();
export type ApiKeyInput = z.infer<typeof apiKeyInput>;

const view = (r: ApiKeyRecord) => ({
  keyId: r.keyId,
  name: r.name,
  scopes: r.scopes,
  customerId: r.customerId ?? null,
  createdAt: r.createdAt,
  revokedAt: r.revokedAt ?? null,
});

/** Creates a key; the plain key is returned once and only its hash is stored. */
export async function createApiKey(deps: { apiKeys: ApiKeyRepository; clock: Clock }, principal: Principal, input: ApiKeyInput) {
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
  };
  await deps.apiKeys.create(record);
  return { ...view(record), key: plain };
}

export async function revokeApiKey(deps: { apiKeys: ApiKeyRepository; clock: Clock }, principal: Principal, keyId: string) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  if (!KEY_ID_PATTERN.test(keyId)) {
    const message = 'key id must be 12 characters of [a-z0-9], as key lists show it';
    throw new ValidationError('invalid_key_id', message, [{ field: 'keyId', code: 'invalid_key_id', message }]);
  }
  if (!(await deps.apiKeys.revoke(keyId, deps.clock.now().toISOString()))) throw new NotFoundError('api_key_not_found', `API key "${keyId}" does not exist`);
  return view((await deps.apiKeys.get(keyId))!);
}

export async function listApiKeys(deps: { apiKeys: ApiKeyRepository }, principal: Principal) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  return { apiKeys: (await deps.apiKeys.list()).map(view) };
}
