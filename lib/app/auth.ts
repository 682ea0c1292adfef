import { SCOPES, bearerToken, parseApiKey, secretMatches, type Principal } from '../domain/apikey';
import { UnauthorizedError } from '../domain/errors';
import type { ApiKeyRepository } from './ports/access';

export interface AuthDeps {
  apiKeys: ApiKeyRepository;
  /** Only on stage "local": this bearer value is accepted with every scope. */
  localAdminKey?: string;
}

/** Missing, malformed, unknown or revoked key: 401. Scope and customer checks come later (403). */
export async function authenticate(deps: AuthDeps, authorization: string | undefined): Promise<Principal> {
  const token = bearerToken(authorization);
  if (!token) throw new UnauthorizedError();
  if (deps.localAdminKey !== undefined && token === deps.localAdminKey) return { keyId: 'local-admin', scopes: [...SCOPES] };
  const parsed = parseApiKey(token);
  if (!parsed) throw new UnauthorizedError('the API key is malformed or unknown');
  const record = await deps.apiKeys.get(parsed.keyId);
  if (!record || record.revokedAt || !secretMatches(parsed.secret, record)) throw new UnauthorizedError('the API key is malformed, unknown or revoked');
  return { keyId: record.keyId, scopes: record.scopes, customerId: record.customerId, limits: record.limits };
}
