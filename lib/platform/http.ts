import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import type { ZodType } from 'zod';
import { authenticate } from '../app/auth';
import { limitRequest } from '../app/limits';
import { authorize, requireUnbound, type Principal } from '../domain/apikey';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
  type ErrorDetail,
} from '../domain/errors';
import { isThrottling } from '../adapters/aws-errors';
import { parseJson } from '../domain/json';
import { authArea } from './wiring/auth';
import { wire } from './wiring/base';
import { config } from './config';
import { logger, metrics } from './observability';
import type { API } from './openapi/operations';
import { ROUTES, type JsonRouteKey, type PageRouteKey, type RouteAccess, type RouteKey } from './routes';

export interface HttpRequest {
  event: APIGatewayProxyEventV2;
  requestId: string;
  /** The body as text; read only after the caller has been authorized. */
  readonly body: string;
  header(name: string): string | undefined;
  /** Every header whose name starts with `prefix` (names in lower case). */
  headersStartingWith(prefix: string): Record<string, string>;
  /** A path parameter, percent-decoded (malformed encoding is a 400 naming it). */
  param(name: string): string;
  query(name: string): string | undefined;
  /** The named query parameters, validated with a schema; problems become a 400 naming each. */
  queryAs<T>(schema: ZodType<T>, names: string[]): T;
  /** The authorized caller (route access checked already); 401 on a public route. */
  principal(): Promise<Principal>;
  /** Parses the JSON body with a schema; problems become a 400 naming each field. */
  json<T>(schema: ZodType<T>): T;
}

export interface HttpResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Responses<K extends JsonRouteKey> = (typeof API)[K]['responses'];
type BodyOf<R> = R extends { schema: z.ZodType } ? z.input<R['schema']> : never;

/**
 * What a route's handler may answer: one of the statuses its operation lists
 * (lib/platform/openapi/operations.ts), with a body of that status's schema. Errors are thrown, not
 * answered: `toHttpError` maps them.
 */
export type RouteResponse<K extends JsonRouteKey> = {
  [S in keyof Responses<K> & number]: { status: S; body: BodyOf<Responses<K>[S]>; headers?: Record<string, string> };
}[keyof Responses<K> & number];

/** Seconds a client should wait before repeating a request answered 503. */
const RETRY_AFTER_SECONDS = 2;

function errorBody(code: string, message: string, requestId: string, details: ErrorDetail[] = []) {
  return { error: { code, message, details, requestId } };
}

/** Each kind of domain error and its status: the one mapping (the domain knows no HTTP). */
const STATUS: [new (...args: never[]) => DomainError, number][] = [
  [ValidationError, 400],
  [UnauthorizedError, 401],
  [ForbiddenError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [PayloadTooLargeError, 413],
  [UnsupportedMediaTypeError, 415],
  [RateLimitedError, 429],
  [UnavailableError, 503],
];

function httpStatus(err: DomainError): number {
  return STATUS.find(([kind]) => err instanceof kind)?.[1] ?? 500;
}

/** The one place where errors become HTTP: domain errors keep their message, throttling is a 503, the rest are generic 500s. */
export function toHttpError(err: unknown, requestId: string): HttpResponse {
  if (isThrottling(err)) {
    logger.warn('throttled', { requestId, error: err as Error });
    err = new UnavailableError('service_busy', 'the service is busy; retry the same request shortly (it is safe to repeat)');
  }
  if (err instanceof DomainError) {
    const status = httpStatus(err);
    const res: HttpResponse = { status, body: errorBody(err.code, err.message, requestId, err.details) };
    if (err instanceof RateLimitedError) res.headers = { 'retry-after': String(err.retryAfterSeconds) };
    if (status >= 500) {
      logger.error('request failed', { requestId, code: err.code, error: (err.cause ?? err) as Error });
      // A 503 means "try again shortly": the request is safe to repeat.
      if (status === 503) res.headers = { 'retry-after': String(RETRY_AFTER_SECONDS) };
    }
    return res;
  }
  logger.error('unhandled error', { requestId, error: err as Error });
  return { status: 500, body: errorBody('internal_error', 'an internal error occurred; quote the requestId when reporting it', requestId) };
}

function zodDetails(issues: { path: PropertyKey[]; message: string; code: string }[]): ErrorDetail[] {
  return issues.map((i) => ({
    field: i.path.map(String).join('.') || undefined,
    code: i.code === 'custom' ? 'invalid_field' : i.code,
    message: `${i.path.map(String).join('.') || 'body'}: ${i.message}`,
  }));
}

/**
 * Path parameters arrive percent-encoded (the local router passes the raw segment); decoding a value
 * that holds no `%` changes nothing, and no valid id, period or key id holds one, so decoding is
 * safe whether or not the gateway decoded first. Malformed encoding is the client's error.
 */
function decodePathParameter(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    const message = `path parameter {${name}} is not valid percent-encoded UTF-8`;
    throw new ValidationError('invalid_path_parameter', message, [{ field: name, code: 'invalid_path_parameter', message }]);
  }
}

function request(event: APIGatewayProxyEventV2, requestId: string, principal: Principal | undefined): HttpRequest {
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  let body: string | undefined;
  const readBody = () => (body ??= decodeBody(event));
  return {
    event,
    requestId,
    get body() {
      return readBody();
    },
    header: (name) => headers[name.toLowerCase()],
    headersStartingWith: (prefix) =>
      Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[0].startsWith(prefix) && e[1] !== undefined)),
    param: (name) => decodePathParameter(name, event.pathParameters?.[name] ?? ''),
    query: (name) => event.queryStringParameters?.[name],
    queryAs<T>(schema: ZodType<T>, names: string[]): T {
      const raw = Object.fromEntries(names.map((n) => [n, event.queryStringParameters?.[n]]).filter(([, v]) => v !== undefined));
      const result = schema.safeParse(raw);
      if (!result.success) throw new ValidationError('invalid_query', 'the query string is invalid', zodDetails(result.error.issues));
      return result.data;
    },
    principal: async () => {
      if (!principal) throw new UnauthorizedError();
      return principal;
    },
    json<T>(schema: ZodType<T>): T {
      const text = readBody();
      const result = schema.safeParse(text === '' ? undefined : parseJson(text));
      if (!result.success) throw new ValidationError('invalid_body', 'the request body is invalid', zodDetails(result.error.issues));
      return result.data;
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Bodies are UTF-8. Guessing would be worse than refusing: replacing bad bytes with U+FFFD would
 * make two different event ids equal, and one of the two events would be dropped as a duplicate.
 */
function decodeBody(event: APIGatewayProxyEventV2): string {
  if (event.body === undefined) return '';
  if (!event.isBase64Encoded) return event.body;
  try {
    return utf8.decode(Buffer.from(event.body, 'base64'));
  } catch {
    throw new ValidationError('invalid_encoding', 'the request body is not valid UTF-8');
  }
}

/**
 * 401 for no usable key, 403 for the wrong scope or customer: before the body is read. A known key's
 * request is counted against its requests per second first (lib/app/limits.ts): one refused 403 counts
 * too, and past the limit every request is 429 rate_limited, whatever else it would be.
 */
async function authorizeRoute(access: RouteAccess, event: APIGatewayProxyEventV2): Promise<Principal | undefined> {
  if (!('scope' in access)) return undefined;
  const c = wire(authArea);
  const authorization = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const principal = await authenticate({ apiKeys: c.apiKeys, localAdminKey: c.config.isLocal ? c.config.LOCAL_ADMIN_KEY : undefined }, authorization);
  await limitRequest(c, principal);
  authorize(principal, access.scope);
  if (access.scope === 'admin') requireUnbound(principal);
  if (access.customerParam !== undefined) {
    authorize(principal, access.scope, decodePathParameter(access.customerParam, event.pathParameters?.[access.customerParam] ?? ''));
  }
  return principal;
}

/**
 * Middy composition for every JSON route: Lambda context in the logs, the route's access (from the
 * route table, lib/platform/routes.ts) checked first, one error mapping, JSON out. The handler's
 * answers are typed by the route's response schemas. The function carries its route as `route`
 * (test/unit/routes.test.ts checks that serverless.yml deploys each handler on its own route).
 */
export function httpHandler<K extends JsonRouteKey>(route: K) {
  // Curried so that TypeScript knows K before it types fn's answers (literal statuses stay literal).
  return (fn: (req: HttpRequest) => Promise<RouteResponse<K>>) => jsonHandler(route, fn as (req: HttpRequest) => Promise<HttpResponse>);
}

function jsonHandler(route: JsonRouteKey, fn: (req: HttpRequest) => Promise<HttpResponse>) {
  const access: RouteAccess = ROUTES[route].access;
  return routeHandler(route, async (event, requestId) => {
    let res: HttpResponse;
    try {
      res = await fn(request(event, requestId, await authorizeRoute(access, event)));
    } catch (err) {
      res = toHttpError(err, requestId);
    }
    return {
      statusCode: res.status,
      headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...res.headers },
      body: res.body === undefined ? '' : JSON.stringify(res.body),
    };
  });
}

/**
 * What every HTTP function shares: the environment checked at init (a bad one fails the function's
 * start, not each request), Lambda context in the logs, metrics flushed after each invocation, the
 * request id, and the route it serves as `route`.
 */
function routeHandler(route: RouteKey, answer: (event: APIGatewayProxyEventV2, requestId: string) => Promise<APIGatewayProxyStructuredResultV2>) {
  config();
  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .handler((event, context) => answer(event, event.requestContext?.requestId ?? context?.awsRequestId ?? 'local'));
  return Object.assign(handler, { route });
}

/**
 * The address clients reach this API at, for links it hands out: PUBLIC_URL when configured (a
 * custom domain, a CDN in front), else the request's domain name (API Gateway's `domainName`; the
 * Host header on the local stack, served over plain HTTP).
 */
export function requestBaseUrl(event: APIGatewayProxyEventV2, opts: { publicUrl?: string; isLocal: boolean }): string {
  if (opts.publicUrl !== undefined) return opts.publicUrl;
  const host = event.requestContext?.domainName ?? '';
  if (!/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/.test(host)) {
    throw new ValidationError('invalid_host', 'the request names no host a link could point at; configure PUBLIC_URL');
  }
  return `${opts.isLocal ? 'http' : 'https'}://${host}`;
}

export interface PageResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** What an error page is made from: the status and the error as the API would have answered it. */
export interface PageError {
  status: number;
  code: string;
  message: string;
  requestId: string;
}

/**
 * Middy composition for pages a person opens in a browser (the usage page and its CSV). They are
 * public at the HTTP level: a signed token in the URL is their credential, checked by the page.
 * Errors go through the same mapping as the API's (statuses, 5xx details never shown) but come
 * back as `errorPage` renders them: a page, never JSON or a stack trace.
 */
export function pageHandler(route: PageRouteKey, fn: (req: HttpRequest) => Promise<PageResponse>, errorPage: (error: PageError) => PageResponse) {
  return routeHandler(route, async (event, requestId) => {
    let res: PageResponse;
    try {
      res = await fn(request(event, requestId, undefined));
    } catch (err) {
      const mapped = toHttpError(err, requestId);
      const { code, message } = (mapped.body as ReturnType<typeof errorBody>).error;
      const page = errorPage({ status: mapped.status, code, message, requestId });
      res = { ...page, headers: { ...page.headers, ...mapped.headers } };
    }
    return { statusCode: res.status, headers: { ...res.headers, 'x-request-id': requestId }, body: res.body };
  });
}
