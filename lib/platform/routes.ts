import type { Scope } from '../domain/apikey';

/**
 * Who may call a route, checked before its body or query is read (401, then 403):
 * - `public`: anyone (health, the OpenAPI document);
 * - `token`: a signed link's token in the query is the credential, checked by the page itself (the
 *   usage page and its CSV): public at the HTTP level, never an API key;
 * - `scope`: an API key with that scope (admin also refuses keys bound to a customer); with
 *   `customerParam`, the path parameter naming the customer, which a bound key must match.
 */
export type RouteAccess = { public: true } | { token: 'portal' } | { scope: Scope; customerParam?: 'id' };

export interface Route {
  /** The function's handler as serverless.yml names it: `functions/<dir>/handler.<export>`. */
  handler: string;
  access: RouteAccess;
}

const read = { scope: 'read', customerParam: 'id' } as const;
const admin = { scope: 'admin' } as const;

/**
 * The HTTP API, one entry per route, keyed `METHOD path` as API Gateway names it. The rest of a
 * route is keyed by the same names, so it cannot drift from this table:
 * - its handler (`httpHandler(route, ...)` takes the access from here and types its answers by the
 *   route's response schemas: a use case returning something else is a compile error);
 * - its request and response schemas and error codes (lib/platform/openapi/operations.ts, typed
 *   `Record<RouteKey, ...>`), from which docs/openapi.json is generated;
 * - serverless.yml's function with this handler and this one httpApi event, and the README's route
 *   table (test/unit/routes.test.ts checks both).
 *
 * Kept apart from the schemas on purpose: every HTTP function loads this module, and a Lambda that
 * loads every route's zod schemas would carry all of them (ingest's bundle must stay under 400 KB).
 *
 * Adding a route: an entry here, one in operations.ts, the handler, its function in serverless.yml
 * (with its IAM statements), its README row, then `npm run openapi`.
 */
export const ROUTES = {
  'POST /api/v1/events': { handler: 'functions/ingest/handler.handler', access: { scope: 'ingest' } },
  'POST /api/v1/events/void': { handler: 'functions/events/handler.voidOne', access: admin },
  'GET /api/v1/customers': { handler: 'functions/customers/handler.list', access: admin },
  'PUT /api/v1/customers/{id}': { handler: 'functions/customers/handler.put', access: admin },
  'PATCH /api/v1/customers/{id}': { handler: 'functions/customers/handler.patch', access: admin },
  'GET /api/v1/customers/{id}': { handler: 'functions/customers/handler.get', access: read },
  'GET /api/v1/customers/{id}/usage': { handler: 'functions/usage/handler.handler', access: read },
  'GET /api/v1/customers/{id}/events': { handler: 'functions/events/handler.list', access: read },
  'GET /api/v1/customers/{id}/entitlements': { handler: 'functions/entitlements/handler.list', access: read },
  'GET /api/v1/customers/{id}/entitlements/{meter}': { handler: 'functions/entitlements/handler.one', access: read },
  'GET /api/v1/customers/{id}/alerts': { handler: 'functions/alerts/handler.handler', access: read },
  'GET /api/v1/customers/{id}/invoices': { handler: 'functions/invoices/handler.list', access: read },
  'GET /api/v1/customers/{id}/invoices/upcoming': { handler: 'functions/invoices/handler.upcoming', access: read },
  'GET /api/v1/customers/{id}/credits': { handler: 'functions/credits/handler.list', access: read },
  'POST /api/v1/customers/{id}/credits/{key}/settle': { handler: 'functions/credits/handler.settle', access: admin },
  'POST /api/v1/customers/{id}/portal-links': { handler: 'functions/portal/handler.createLink', access: read },
  'POST /api/v1/invoice-runs': { handler: 'functions/invoice-runs/handler.start', access: admin },
  'GET /api/v1/invoice-runs/{period}': { handler: 'functions/invoice-runs/handler.progress', access: admin },
  'POST /api/v1/api-keys': { handler: 'functions/api-keys/handler.create', access: admin },
  'GET /api/v1/api-keys': { handler: 'functions/api-keys/handler.list', access: admin },
  'PATCH /api/v1/api-keys/{keyId}': { handler: 'functions/api-keys/handler.update', access: admin },
  'DELETE /api/v1/api-keys/{keyId}': { handler: 'functions/api-keys/handler.revoke', access: admin },
  'GET /portal': { handler: 'functions/portal/handler.page', access: { token: 'portal' } },
  'GET /portal/usage.csv': { handler: 'functions/portal/handler.csv', access: { token: 'portal' } },
  'GET /api/v1/openapi.json': { handler: 'functions/openapi/handler.handler', access: { public: true } },
  'GET /health': { handler: 'functions/health/handler.handler', access: { public: true } },
} as const satisfies Record<string, Route>;

export type RouteKey = keyof typeof ROUTES;
/** Routes answered with JSON by `httpHandler`; the others are pages (`pageHandler`). */
export type JsonRouteKey = { [K in RouteKey]: (typeof ROUTES)[K]['access'] extends { token: 'portal' } ? never : K }[RouteKey];
export type PageRouteKey = Exclude<RouteKey, JsonRouteKey>;
