import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * Serves the HTTP API routes of serverless.yml by invoking the same handler modules with the
 * API Gateway HTTP API (payload v2.0) event shape, as serverless-offline would.
 */
export interface LocalRoute {
  method: string;
  path: string;
  handler: (event: APIGatewayProxyEventV2, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>;
  /** The function's timeout (what getRemainingTimeInMillis counts down from). */
  timeoutMs: number;
}

/** API Gateway HTTP APIs accept payloads up to 10 MB. */
const MAX_PAYLOAD = 10 * 1024 * 1024;

function compile(path: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const segments = path.split('/').map((seg) => {
    const param = /^\{(.+)\}$/.exec(seg);
    if (!param) return seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    names.push(param[1]!);
    return '([^/]+)';
  });
  return { regex: new RegExp(`^${segments.join('/')}$`), names };
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_PAYLOAD) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_PAYLOAD ? 'too_large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const TEXTUAL = /^(application\/([a-z0-9.+-]*json|x-www-form-urlencoded|xml)|text\/)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The request target as API Gateway sees it: the path exactly as sent (no dot-segment resolution,
 * no decoding: `/customers/%2e%2e/usage` is the customer "%2e%2e"), and the query string.
 */
export function splitTarget(target: string): { path: string; query: string } {
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  const rest = origin ? target.slice(origin[0].length) || '/' : target;
  const q = rest.indexOf('?');
  return { path: q < 0 ? rest : rest.slice(0, q), query: q < 0 ? '' : rest.slice(q + 1).replace(/#.*$/, '') };
}

/** A text body is passed as text only when it is valid UTF-8; anything else goes base64, like binary. */
function isUtf8(body: Buffer): boolean {
  try {
    utf8.decode(body);
    return true;
  } catch {
    return false;
  }
}

function toEvent(
  req: IncomingMessage,
  body: Buffer,
  route: LocalRoute,
  params: Record<string, string>,
  target: { path: string; query: string },
  requestId: string,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(target.query)) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const textual = body.length === 0 || (TEXTUAL.test(headers['content-type'] ?? 'application/json') && isUtf8(body));
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: `${route.method} ${route.path}`,
    rawPath: target.path,
    rawQueryString: target.query,
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    pathParameters: Object.keys(params).length ? params : undefined,
    body: body.length ? (textual ? body.toString('utf8') : body.toString('base64')) : undefined,
    isBase64Encoded: !textual,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: route.method,
        path: target.path,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: `${route.method} ${route.path}`,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
  };
}

export interface LocalHttpServer {
  server: Server;
  /** Stops accepting requests, lets the ones in flight finish (their handlers still reach the emulators), then closes. */
  stop(): Promise<void>;
}

export function startHttpServer(routes: LocalRoute[], port: number, host = '127.0.0.1'): Promise<LocalHttpServer> {
  const compiled = routes.map((r) => ({ route: r, ...compile(r.path) }));
  const inFlight = new Set<Promise<void>>();
  let stopping: Promise<void> | undefined;
  const server = createServer((req, res) => {
    const done = handle(req, res).finally(() => inFlight.delete(done));
    inFlight.add(done);
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const send = (status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
      res.writeHead(status, { 'x-request-id': requestId, ...headers });
      res.end(body);
    };
    // Answers the gateway gives itself still use the one error envelope (code, message, details, requestId).
    const fail = (status: number, code: string, message: string) => send(status, JSON.stringify({ error: { code, message, details: [], requestId } }));
    // A request on a kept-alive connection after stop() began: like a Lambda being torn down.
    if (stopping) {
      res.shouldKeepAlive = false;
      return fail(503, 'unavailable', 'the local stack is stopping');
    }
    try {
      const target = splitTarget(req.url ?? '/');
      const candidates = compiled.filter((c) => c.regex.test(target.path));
      const match = candidates.find((c) => c.route.method === req.method);
      if (!match) {
        req.resume();
        // HTTP APIs answer unknown routes with 404 {"message":"Not Found"}; we keep the envelope.
        if (candidates.length) return fail(405, 'method_not_allowed', `${req.method} is not allowed on this path`);
        return fail(404, 'not_found', `no route for ${req.method} ${target.path.slice(0, 200)}`);
      }
      const body = await readBody(req);
      if (body === 'too_large') return fail(413, 'payload_too_large', 'the request body exceeds 10 MB');
      const values = match.regex.exec(target.path)!.slice(1);
      const params = Object.fromEntries(match.names.map((n, i) => [n, values[i]!]));
      const event = toEvent(req, body, match.route, params, target, requestId);
      const deadline = Date.now() + match.route.timeoutMs;
      const context = {
        awsRequestId: requestId,
        functionName: 'local',
        getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      };
      const result = await match.route.handler(event, context);
      const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)]));
      send(result.statusCode ?? 200, result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64').toString() : (result.body ?? ''), headers);
    } catch (err) {
      // Lambda would answer 500 "Internal Server Error" when a handler crashes.
      console.error('handler crashed', err);
      fail(500, 'internal_error', 'an internal error occurred; quote the requestId when reporting it');
    }
  };
  // Longer than clients keep idle connections (API Gateway keeps them for minutes); with Node's
  // 5 s default a client could reuse a socket the server is just closing ("other side closed").
  server.keepAliveTimeout = 65_000;
  // headersTimeout (60 s by default) above keepAliveTimeout too, the usual advice for kept-alive
  // connections: a fetch in start.test.ts once met "other side closed" after about a minute idle.
  server.headersTimeout = 66_000;
  const stop = () =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      while (inFlight.size > 0) await Promise.all(inFlight);
      server.closeAllConnections();
      await closed;
    })());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, stop }));
  });
}
