import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { loadDeployment } from '../../local/runtime/deployment';
import { buildOpenApiDocument } from '../../lib/platform/openapi/document';

/**
 * The contract: every answer of the HTTP API must be one the OpenAPI document allows, for its
 * route, method and status: the body against the response schema (JSON Schema 2020-12, ajv), the
 * headers the response declares required, and the error envelope's requestId equal to
 * x-request-id. TestStack checks every request it makes, so all the integration and trust suites
 * test the document as a side effect (test/integration/contract.test.ts covers every route and
 * status on purpose). The yardstick is the document built from the code now; that
 * docs/openapi.json is the same is test/unit/openapi.test.ts's business.
 */
export interface Exchange {
  method: string;
  /** The request target as sent: path and query string. */
  target: string;
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined when there was none or it was not JSON. */
  body: unknown;
}

type Json = Record<string, any>;
const ROOT_ID = 'urn:usage-metering:openapi';

/** The route template of a request path, or undefined: literal segments beat parameters, as in API Gateway. */
function matcher(templates: string[]): (path: string) => string | undefined {
  const compiled = templates
    .map((t) => ({
      t,
      re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^/}]+\\?\}/g, '[^/]+')}$`),
      literal: t.split(/\{[^}]+\}/).join('').length,
    }))
    .sort((a, b) => b.literal - a.literal);
  return (path) => compiled.find((c) => c.re.test(path))?.t;
}

const pointer = (...parts: string[]) => `${ROOT_ID}#/${parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

function firstError(errors: ErrorObject[] | null | undefined, body: unknown): string {
  const e = errors?.[0];
  if (!e) return 'invalid';
  const at = e.instancePath || '(body)';
  let value: unknown = body;
  for (const part of e.instancePath.split('/').slice(1)) value = (value as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  const shown = JSON.stringify(value);
  // The messages of these keywords do not say which property or which values.
  const extra = ['additionalProperties', 'enum', 'const'].includes(e.keyword) ? ` ${JSON.stringify(e.params)}` : '';
  return `${at} ${e.message}${extra}${shown === undefined ? '' : ` (got ${shown.length > 120 ? `${shown.slice(0, 120)}...` : shown})`}`;
}

export class Contract {
  readonly doc: Json;
  /** `METHOD template` -> the statuses seen, for coverage. */
  readonly seen = new Map<string, Set<number>>();
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly documented: (path: string) => string | undefined;
  private readonly deployed: (path: string) => string | undefined;
  private readonly deployedRoutes: Set<string>;

  constructor(doc: Json = buildOpenApiDocument()) {
    this.doc = doc;
    this.ajv = new Ajv2020({ strict: true, allErrors: false });
    addFormats(this.ajv);
    // The document is one schema resource, so that "#/components/schemas/X" resolves inside it.
    this.ajv.addVocabulary(['openapi', 'info', 'tags', 'paths', 'components']);
    this.ajv.addSchema({ $id: ROOT_ID, ...doc });
    this.documented = matcher(Object.keys(doc.paths));
    const routes = loadDeployment().routes;
    this.deployed = matcher(routes.map((r) => r.path));
    this.deployedRoutes = new Set(routes.map((r) => `${r.method} ${r.path}`));
  }

  private validator(...parts: string[]): ValidateFunction {
    const key = pointer(...parts);
    let v = this.validators.get(key);
    if (!v) this.validators.set(key, (v = this.ajv.compile({ $ref: key })));
    return v;
  }

  /** What is wrong with this answer, or undefined when the document allows it. */
  problem(ex: Exchange): string | undefined {
    const method = ex.method.toUpperCase();
    const path = ex.target.replace(/[?#].*$/, '');
    const template = this.documented(path);
    const operation = template === undefined ? undefined : (this.doc.paths[template]?.[method.toLowerCase()] as Json | undefined);
    const where = `${method} ${template ?? path} answered ${ex.status}`;
    const envelope = () => this.checkBody(ex, this.validator('components', 'schemas', 'Error'), where) ?? this.checkRequestId(ex, where);
    if (!operation) {
      // A route of serverless.yml without an entry in the document: test/unit/openapi.test.ts says so, once.
      const deployed = this.deployed(path);
      if (deployed !== undefined && this.deployedRoutes.has(`${method} ${deployed}`)) return undefined;
      // The HTTP API's own answers (no route, method not allowed) are in the envelope too.
      if (ex.status === 404 || ex.status === 405) return envelope();
      return `${where}, but docs/openapi.json has no such route`;
    }
    this.record(`${method} ${template}`, ex.status);
    // The gateway's 413 (a body over 10 MB) can come from any route.
    if (ex.status === 413 && !operation.responses[String(ex.status)]) return envelope();
    const response = operation.responses[String(ex.status)] as Json | undefined;
    if (!response) return `${where}, a status docs/openapi.json does not list for it (it lists ${Object.keys(operation.responses).join(', ')})`;
    for (const [name, h] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
      const header = h.$ref ? this.doc.components.headers[String(h.$ref).split('/').pop()!] : h;
      if (header.required && !ex.headers.has(name)) return `${where} without the header ${name}, which docs/openapi.json requires`;
    }
    if (method === 'HEAD') return undefined;
    const [mediaType] = Object.keys(response.content ?? {});
    if (mediaType !== undefined && mediaType !== 'application/json') {
      // A page (HTML, CSV): the right media type; its body is the document itself.
      const given = ex.headers.get('content-type') ?? '';
      return given.startsWith(mediaType) ? undefined : `${where} as ${given || 'no content type'}, not the ${mediaType} docs/openapi.json says`;
    }
    const problem = this.checkBody(
      ex,
      this.validator('paths', template!, method.toLowerCase(), 'responses', String(ex.status), 'content', 'application/json', 'schema'),
      where,
    );
    return problem ?? (ex.status >= 400 ? this.checkRequestId(ex, where) : undefined);
  }

  private checkBody(ex: Exchange, validate: ValidateFunction, where: string): string | undefined {
    if (ex.body === undefined) return `${where} with no JSON body`;
    if (validate(ex.body)) return undefined;
    return `${where} with a body docs/openapi.json does not allow: ${firstError(validate.errors, ex.body)}`;
  }

  private checkRequestId(ex: Exchange, where: string): string | undefined {
    const id = (ex.body as Json).error.requestId;
    return id === ex.headers.get('x-request-id') ? undefined : `${where}: error.requestId ${JSON.stringify(id)} is not the x-request-id header`;
  }

  private record(route: string, status: number) {
    (this.seen.get(route) ?? this.seen.set(route, new Set()).get(route)!).add(status);
  }

  /** Throws, naming the route, the status and the first mismatch, unless the document allows the answer. */
  check(ex: Exchange): void {
    const problem = this.problem(ex);
    if (problem) {
      throw new Error(
        `${problem}.\nFix the handler, or the route's entry (lib/platform/openapi/operations.ts) or response schema (lib/app/responses.ts), then run npm run openapi.`,
      );
    }
  }
}

let shared: Contract | undefined;
/** One contract per test file (jest gives each file its own modules). */
export function contract(): Contract {
  return (shared ??= new Contract());
}
