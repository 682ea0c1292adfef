import { apiKeyInput, apiKeyPatch, createApiKey, listApiKeys, revokeApiKey, updateApiKey } from '../../lib/app/apikeys';
import { wire } from '../../lib/platform/wiring/base';
import { authArea } from '../../lib/platform/wiring/auth';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(authArea);

/** POST /api/v1/api-keys (admin): the plain key is in this response only. */
export const create = httpHandler('POST /api/v1/api-keys')(async (req) => {
  const principal = await req.principal();
  return { status: 201, body: await createApiKey(deps(), principal, req.json(apiKeyInput)) };
});

/** DELETE /api/v1/api-keys/{keyId} (admin). */
export const revoke = httpHandler('DELETE /api/v1/api-keys/{keyId}')(async (req) => ({
  status: 200,
  body: await revokeApiKey(deps(), await req.principal(), req.param('keyId')),
}));

/** PATCH /api/v1/api-keys/{keyId} (admin): the key's limits. */
export const update = httpHandler('PATCH /api/v1/api-keys/{keyId}')(async (req) => {
  const principal = await req.principal();
  const keyId = req.param('keyId');
  return { status: 200, body: await updateApiKey(deps(), principal, keyId, req.json(apiKeyPatch)) };
});

/** GET /api/v1/api-keys (admin): ids, names, scopes; never secrets. */
export const list = httpHandler('GET /api/v1/api-keys')(async (req) => ({ status: 200, body: await listApiKeys(deps(), await req.principal()) }));
