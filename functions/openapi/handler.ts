import document from '../../docs/openapi.json';
import { httpHandler } from '../../lib/platform/http';

/** GET /api/v1/openapi.json (public): the OpenAPI document, bundled from docs/openapi.json (`npm run openapi`). */
export const handler = httpHandler('GET /api/v1/openapi.json')(async () => ({ status: 200, body: document }));
