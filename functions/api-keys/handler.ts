import { apiKeyInput, createApiKey, listApiKeys, revokeApiKey } from '../../lib/app/apikeys';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** POST /api/v1/api-keys (admin): the plain key is in this response only. */
export const create = httpHandler({ scope: 'admin' }, async (req) => {
  const principal = await req.principal();
  return { status: 201, body: await createApiKey(container(), principal, req.json(apiKeyInput)) };
});

/** DELETE /api/v1/api-keys/{keyId} (admin). */
export const revoke = httpHandler({ scope: 'admin' }, async (req) => ({
  status: 200,
  body: await revokeApiKey(container(), await req.principal(), req.param('keyId')),
}));

/** GET /api/v1/api-keys (admin): ids, names, scopes; never secrets. */
export const list = httpHandler({ scope: 'admin' }, async (req) => ({ status: 200, body: await listApiKeys(container(), await req.principal()) }));
