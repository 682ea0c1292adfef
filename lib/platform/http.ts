import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { ZodType } from 'zod';
import { authenticate } from '../app/auth';
import type { Principal } from '../domain/apikey';
import { DomainError, ValidationError, type ErrorDetail } from '../domain/errors';
import { container } from './container';
import { logger } from './observability';

export interface HttpRequest {
  event: APIGatewayProxyEventV2;
  requestId: string;
  body: string;
  header(name: string): string | undefined;
  param(name: string): string;
  query(name: string): string | undefined;
  /** Authenticates the bearer key (401 when missing/unknown). */
  principal(): Promise<Principal>;
  /** Parses the JSON body with a schema; problems become a 400 naming each field. */
  json<T>(schema: ZodType<T>): T;
}

export interface HttpResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Seconds a client should wait before repeating a request answered 503. */
export const RETRY_AFTER_SECONDS = 2;

export function errorBody(code: string, message: string, requestId: string, details: ErrorDetail[] = []) {
  return { error: { code, message, details, requestId } };
}

/** The one place where errors become HTTP: domain errors keep their message, the rest are generic 500s. */
export function toHttpError(err: unknown, requestId: string): HttpResponse {
  if (err instanceof DomainError) {
    const res: HttpResponse = { status: err.status, body: errorBody(err.code, err.message, requestId, err.details) };
    if (err.status >= 500) {
      logger.error('request failed', { requestId, code: err.code, error: (err.cause ?? err) as Error });
      // A 503 means "try again shortly": the request is safe to repeat.
      if (err.status === 503) res.headers = { 'retry-after': String(RETRY_AFTER_SECONDS) };
    }
    return res;
  }
  logger.error('unhandled error', { requestId, error: err as Error });
  return { status: 500, body: errorBody('internal_error', 'an internal error occurred; quote the requestId when reporting it', requestId) };
}

export function zodDetails(issues: { path: PropertyKey[]; message: string; code: string }[]): ErrorDetail[] {
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
export function decodePathParameter(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    const message = `path parameter {${name}} is not valid percent-encoded UTF-8`;
    throw new ValidationError('invalid_path_parameter', message, [{ field: name, code: 'invalid_path_parameter', message }]);
  }
}

function request(event: APIGatewayProxyEventV2, requestId: string): HttpRequest {
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const body = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  let principal: Promise<Principal> | undefined;
  return {
    event,
    requestId,
    body,
    header: (name) => headers[name.toLowerCase()],
    param: (name) => decodePathParameter(name, event.pathParameters?.[name] ?? ''),
    query: (name) => event.queryStringParameters?.[name],
    principal: () => {
      const c = container();
      return (principal ??= authenticate(
        { apiKeys: c.apiKeys, localAdminKey: c.config.isLocal ? c.config.LOCAL_ADMIN_KEY : undefined },
        headers.authorization,
      ));
    },
    json<T>(schema: ZodType<T>): T {
      let parsed: unknown;
      try {
        parsed = body === '' ? undefined : JSON.parse(body);
      } catch {
        throw new ValidationError('malformed_json', 'the request body is not valid JSON');
      }
      const result = schema.safeParse(parsed);
      if (!result.success) throw new ValidationError('invalid_body', 'the request body is invalid', zodDetails(result.error.issues));
      return result.data;
    },
  };
}

/** Middy composition for every HTTP function: Lambda context in the logs, one error mapping, JSON out. */
export function httpHandler(fn: (req: HttpRequest) => Promise<HttpResponse>) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event, context) => {
      const requestId = event.requestContext?.requestId ?? context?.awsRequestId ?? 'local';
      let res: HttpResponse;
      try {
        res = await fn(request(event, requestId));
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
