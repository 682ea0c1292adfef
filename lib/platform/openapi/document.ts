import * as z from 'zod';
import { errorEnvelope } from '../../app/responses';
import { ROUTES, type RouteAccess, type RouteKey } from '../routes';
import { API, type ErrorStatus, type RouteDoc } from './operations';

/**
 * Builds the OpenAPI 3.1 document from the route table (../routes.ts: who may call what) and what
 * each route takes and answers (operations.ts) with zod's own JSON Schema
 * conversion (draft 2020-12, the dialect of OpenAPI 3.1): requests as the handlers parse them
 * (`io: 'input'`), responses as the use cases build them (`io: 'output'`). Schemas with an `id`
 * become components. `npm run openapi` writes the result to docs/openapi.json.
 */
const OPENAPI_VERSION = '3.1.1';
type Json = Record<string, unknown>;

const INFO_DESCRIPTION = `Meters API calls, storage, compute seconds and seats per customer, exactly once; prices them with volume tiers; shows them as they accrue; and invoices them through Stripe.

**Keys.** \`Authorization: Bearer <key>\` (only spaces or tabs between the two). A key has scopes \`ingest\`, \`read\` or \`admin\` (\`admin\` implies the others); a key bound to a customer reads and sends only that customer's usage and cannot use admin routes. The key, its scope and its customer are checked before anything else of the request is read: a caller without the right gets 401 or 403, never a 400 about a body it may not send.

**Limits.** Every request of a key counts against its requests per calendar second, and ingest against its events per calendar minute (each key has its own or the deployment's defaults; \`GET /api/v1/api-keys\` shows them). Past one, the answer is 429 \`rate_limited\` with \`Retry-After\` in seconds, and nothing of the request was done. The HTTP API also throttles the whole stage: its own 429 is API Gateway's \`{"message":"Too Many Requests"}\` without \`Retry-After\` (back off and retry).

**Errors.** Every error, the HTTP API's own 404 (no route), 405 (method not allowed) and 413 (body over 10 MB) included, is the \`Error\` envelope \`{"error":{"code","message","details":[...],"requestId"}}\`, and every response carries the same id in \`x-request-id\`. A 503 carries \`Retry-After\`: repeating the same request is safe. A 5xx never carries internal details.

**Numbers.** Money, prices and quantities are decimal strings, never JSON numbers: \`Money\` is rounded to the currency's minor unit, \`Decimal\` and \`Quantity\` are exact.

**Paths.** Path parameters are percent-decoded; malformed encoding is a 400 \`invalid_path_parameter\` naming the parameter. Bodies are JSON in UTF-8 (anything else is a 400 \`invalid_encoding\`).

**Compatibility.** Response objects list every property they have today; new properties may be added, so clients should ignore the ones they do not know.`;

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input; `details` names each problem.',
  401: 'No usable API key: missing, malformed, unknown or revoked.',
  403: 'The key lacks the scope, or is bound to another customer (a bound key cannot use admin routes).',
  404: 'Not found.',
  409: 'The request conflicts with the state of things.',
  413: 'The request is too large.',
  415: 'Unsupported Content-Type.',
  429: 'The key went past one of its limits: repeat the same request after `Retry-After` seconds.',
  503: 'A dependency failed or is busy: repeat the same request after `Retry-After` seconds (it is safe to repeat).',
};

/** The 400s of `req.json`: a body that is not UTF-8, not JSON, has a key twice, or does not match the schema. */
const JSON_BODY_CODES = ['invalid_encoding', 'malformed_json', 'duplicate_key', 'invalid_body'];

const SECURITY_SCHEME = 'apiKey';
const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** Named schemas, collected from every conversion; one name, one schema. */
class Schemas {
  readonly named = new Map<string, Json>();

  /** A zod schema as JSON Schema: its named parts go to components, the rest stays inline. */
  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const { $schema: _, $defs, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'throw' }) as Json;
    for (const [name, def] of Object.entries(($defs ?? {}) as Record<string, Json>)) {
      const json = refsToComponents(def) as Json;
      const known = this.named.get(name);
      if (known && JSON.stringify(known) !== JSON.stringify(json)) throw new Error(`schema id "${name}" names two different schemas`);
      this.named.set(name, json);
    }
    return refsToComponents(rest) as Json;
  }
}

function refsToComponents(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(refsToComponents);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' ? v.replace(/^#\/\$defs\//, '#/components/schemas/') : refsToComponents(v),
    ]),
  );
}

function parameters(route: RouteDoc, schemas: Schemas): Json[] {
  const sources: ['path' | 'query' | 'header', z.ZodObject | undefined][] = [
    ['path', route.path],
    ['query', route.query],
    ['header', route.headers],
  ];
  return sources.flatMap(([where, object]) =>
    Object.entries(object?.shape ?? {}).map(([name, field]) => {
      const { description, ...schema } = schemas.convert(field as z.ZodType, 'input');
      const required = where === 'path' || !(field as z.ZodType).safeParse(undefined).success;
      return { name, in: where, required, description: route.parameters?.[name] ?? description, schema };
    }),
  );
}

function requestBody(route: RouteDoc, schemas: Schemas): Json | undefined {
  if (!route.body) return undefined;
  if (route.body instanceof z.ZodType) {
    // A body the handler also accepts absent (e.g. an optional settings object) is not required.
    return { required: !route.body.safeParse(undefined).success, content: { 'application/json': { schema: schemas.convert(route.body, 'input') } } };
  }
  const content = Object.fromEntries(Object.entries(route.body.content).map(([type, schema]) => [type, { schema: schemas.convert(schema, 'input') }]));
  return { required: true, description: route.body.description, content };
}

/** Every error the route can answer, by status: its own codes plus those its access, parameters and body bring. */
function errorCodes(route: RouteDoc, access: RouteAccess): Map<number, string[]> {
  const codes = new Map<number, Set<string>>();
  const add = (status: number, list: string[]) => list.forEach((c) => (codes.get(status) ?? codes.set(status, new Set()).get(status)!).add(c));
  if (route.path) add(400, ['invalid_path_parameter']);
  if (route.body instanceof z.ZodType) add(400, JSON_BODY_CODES);
  for (const [status, list] of Object.entries(route.errors) as [string, string[]][]) add(Number(status) as ErrorStatus, list);
  if ('scope' in access) {
    add(401, ['unauthorized']);
    add(403, ['insufficient_scope', 'customer_forbidden']);
    // Every request of a key counts against its requests per second (ingest: its events per minute too).
    add(429, ['rate_limited']);
    // Every route with a key reads it from DynamoDB: throttling that outlasts the SDK's retries.
    add(503, ['service_busy']);
  }
  return new Map([...codes].sort(([a], [b]) => a - b).map(([s, set]) => [s, [...set].sort()]));
}

function responses(route: RouteDoc, access: RouteAccess, schemas: Schemas): Json {
  const headers = (extra: string[] = []) => ({
    'x-request-id': ref('headers', 'RequestId'),
    ...Object.fromEntries(extra.map((h) => [h, ref('headers', h === 'retry-after' ? 'RetryAfter' : 'IdempotentReplayed')])),
  });
  const out: Json = {};
  if (route.page) {
    // A page: its body is the document itself, its errors are pages too (not the JSON envelope).
    for (const [status, r] of Object.entries(route.responses)) {
      out[status] = { description: r.description, headers: headers(r.headers), content: { [route.page.mediaType]: { schema: { type: 'string' } } } };
    }
    for (const [status, description] of Object.entries(route.page.errorPages)) {
      out[status] = {
        description: `${STATUS_TEXT[Number(status)] ?? ''} ${description}`.trim(),
        headers: headers(),
        content: { 'text/html': { schema: { type: 'string' } } },
      };
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => Number(a) - Number(b)));
  }
  for (const [status, r] of Object.entries(route.responses)) {
    out[status] = { description: r.description, headers: headers(r.headers), content: { 'application/json': { schema: schemas.convert(r.schema, 'output') } } };
  }
  for (const [status, codes] of errorCodes(route, access)) {
    out[status] = {
      description: `${STATUS_TEXT[status]} Codes: ${codes.map((c) => `\`${c}\``).join(', ')}.`,
      headers: headers(status === 503 || status === 429 ? ['retry-after'] : []),
      content: {
        'application/json': {
          schema: { allOf: [ref('schemas', 'Error'), { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } }] },
        },
      },
    };
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => Number(a) - Number(b)));
}

function security(access: RouteAccess): { security: Json[]; access: string } {
  if ('public' in access) return { security: [], access: 'Public: no key needed.' };
  if ('token' in access) return { security: [], access: 'No key: the token of a portal link is the credential.' };
  const customer = access.customerParam ? ' A key bound to a customer may call it for that customer only.' : '';
  const admin = access.scope === 'admin' ? ' Not with a key bound to a customer.' : '';
  return { security: [{ [SECURITY_SCHEME]: [access.scope] }], access: `Scope: \`${access.scope}\`.${admin}${customer}` };
}

export function buildOpenApiDocument(api: Record<RouteKey, RouteDoc> = API): Json {
  const schemas = new Schemas();
  schemas.convert(errorEnvelope, 'output');
  const paths: Record<string, Json> = {};
  for (const [key, route] of Object.entries(api) as [RouteKey, RouteDoc][]) {
    const [method, path] = key.split(' ') as [string, string];
    const { security: requirement, access } = security(ROUTES[key].access);
    const params = parameters(route, schemas);
    const body = requestBody(route, schemas);
    (paths[path] ??= {})[method.toLowerCase()] = {
      operationId: route.operationId,
      tags: [route.tag],
      summary: route.summary,
      description: `${route.description}\n\n${access}`,
      security: requirement,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(body ? { requestBody: body } : {}),
      responses: responses(route, ROUTES[key].access, schemas),
    };
  }
  const tags = [...new Set(Object.values(api).map((r) => r.tag))].map((name) => ({ name }));
  return {
    openapi: OPENAPI_VERSION,
    info: { title: 'Usage metering and billing API', version: '1.0.0', description: INFO_DESCRIPTION },
    tags,
    paths,
    components: {
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'mk_<keyId>_<secret>',
          description:
            'An API key made with `npm run cli -- keys create` or `POST /api/v1/api-keys`. The scope an operation needs is listed in its security requirement and its description.',
        },
      },
      headers: {
        RequestId: { description: 'The id of this request, also in the error envelope.', required: true, schema: { type: 'string' } },
        RetryAfter: { description: 'Seconds to wait before repeating the same request.', required: true, schema: { type: 'string', pattern: '^[1-9][0-9]*$' } },
        IdempotentReplayed: {
          description: '`true` when the answer is the stored answer of an earlier request with the same Idempotency-Key.',
          schema: { const: 'true' },
        },
      },
      schemas: Object.fromEntries([...schemas.named].sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}

/** The document as docs/openapi.json holds it. */
export function openApiText(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}
