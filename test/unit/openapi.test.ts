import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeployment, ROOT } from '../../local/runtime/deployment';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { validateEvent } from '../../lib/domain/events';
import { buildOpenApiDocument, openApiText } from '../../lib/platform/openapi/document';
import { API } from '../../lib/platform/openapi/operations';
import { Contract } from '../support/contract';

/**
 * The OpenAPI document: committed as generated, valid OpenAPI 3.1 with valid JSON Schema 2020-12,
 * one entry per route of serverless.yml, and a contract check that can fail.
 */
const doc: Record<string, any> = buildOpenApiDocument();
const routes = loadDeployment().routes.map((r) => `${r.method} ${r.path}`);

it('is committed as npm run openapi writes it (docs/openapi.json)', () => {
  const committed = readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8');
  if (committed !== openApiText()) throw new Error('docs/openapi.json is not what the code describes: run `npm run openapi` and commit the result');
});

it('documents every HTTP route of serverless.yml, and only those', () => {
  const missing = routes.filter((r) => !(r in API));
  if (missing.length > 0) {
    throw new Error(
      `serverless.yml routes without an entry in lib/platform/openapi/operations.ts: ${missing.join(', ')}.\n` +
        'Add one entry per route to API there (operationId, tag, summary, description, access, path/query/body schemas, responses with ' +
        'their zod schemas from lib/app/responses.ts, and the error codes it answers), then run `npm run openapi`.',
    );
  }
  expect(Object.keys(API).filter((r) => !routes.includes(r))).toEqual([]);
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  );
  expect(documented.sort()).toEqual([...routes].sort());
});

describe('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', () => {
  const cli = require.resolve('@seriousme/openapi-schema-validator/bin/validate-api-cli.js');
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'openapi-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // The validator is ESM only, and jest runs CommonJS: it runs as its own CLI.
  const validate = (document: unknown): { valid: boolean; errors?: unknown } => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(document));
    try {
      return JSON.parse(execFileSync(process.execPath, [cli, file], { encoding: 'utf8' }));
    } catch (err) {
      return JSON.parse((err as { stdout: string }).stdout);
    }
  };

  it('accepts the document', () => {
    expect(validate(doc)).toEqual({ valid: true });
  });

  it('would refuse a broken one (a response without its description, a reference to nothing)', () => {
    const broken = structuredClone(doc) as any;
    delete broken.paths['/health'].get.responses['200'].description;
    expect(validate(broken).valid).toBe(false);
    const dangling = structuredClone(doc) as any;
    dangling.paths['/health'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nothing' };
    expect(validate(dangling).valid).toBe(false);
  });
});

it('holds only valid JSON Schema 2020-12 that compiles in strict mode (no unknown keyword, no type mistakes)', () => {
  // The OpenAPI validator checks the document's structure, not its schemas' keywords.
  const ajv = new Ajv2020({ strict: true });
  addFormats(ajv);
  ajv.addVocabulary(['openapi', 'info', 'tags', 'paths', 'components']);
  ajv.addSchema({ $id: 'urn:usage-metering:doc', ...doc });
  const schemas: [string, unknown][] = Object.entries(doc.components.schemas).map(([name, s]) => [`#/components/schemas/${name}`, s]);
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const p of op.parameters ?? []) schemas.push([`${at} parameter ${p.name}`, p.schema]);
      for (const [type, c] of Object.entries(op.requestBody?.content ?? {})) schemas.push([`${at} body ${type}`, (c as any).schema]);
      for (const [status, r] of Object.entries(op.responses))
        for (const [type, c] of Object.entries((r as any).content)) schemas.push([`${at} ${status} ${type}`, (c as any).schema]);
    }
  }
  const refsInDoc = (s: unknown) => JSON.parse(JSON.stringify(s).replace(/"#\/components\//g, '"urn:usage-metering:doc#/components/'));
  for (const [where, schema] of schemas) {
    expect({ where, valid: ajv.validateSchema(schema as object), errors: ajv.errors ?? null }).toEqual({ where, valid: true, errors: null });
    expect(() => ajv.compile(refsInDoc(schema))).not.toThrow();
  }
  expect(schemas.length).toBeGreaterThan(100);
});

it('says which scope each operation needs, and lets only /health, the document itself and the usage page (its token is the credential) be called without a key', () => {
  const access = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${path}`, op.security.map((s: Record<string, string[]>) => s.apiKey?.join()).join()]),
  );
  expect(Object.fromEntries(access.filter(([, scope]) => scope === ''))).toEqual({
    'GET /health': '',
    'GET /api/v1/openapi.json': '',
    'GET /portal': '',
    'GET /portal/usage.csv': '',
  });
  for (const [route, scope] of access)
    if (scope)
      expect({
        route,
        scope,
        inDescription: doc.paths[route.split(' ')[1]!][route.split(' ')[0]!.toLowerCase()].description.includes(`Scope: \`${scope}\``),
      }).toEqual({ route, scope, inDescription: true });
});

it('writes money and quantities as decimal strings with a pattern, never as numbers', () => {
  for (const name of ['Money', 'Decimal', 'Quantity', 'Percent']) {
    expect(doc.components.schemas[name]).toMatchObject({ type: 'string', pattern: expect.any(String), description: expect.any(String) });
  }
  const usage = JSON.stringify(doc.components.schemas.MeterUsage);
  expect(usage).toContain('"amount":{"description":"What the meter adds to the invoice: the sum of its rounded lines.","$ref":"#/components/schemas/Money"}');
});

describe('the contract check', () => {
  const contract = new Contract(doc);
  const headers = (h: Record<string, string> = {}) => new Headers({ 'x-request-id': 'req-1', ...h });
  const apiKey = {
    keyId: 'abcdefghijkl',
    name: 'k',
    scopes: ['read'],
    customerId: null,
    createdAt: '2026-11-23T18:00:00.000Z',
    revokedAt: null,
    limits: { requestsPerSecond: 500, eventsPerMinute: 3_000_000 },
    customLimits: {},
  };
  const error = (code: string) => ({ error: { code, message: 'm', details: [], requestId: 'req-1' } });

  it('accepts an answer the document allows', () => {
    expect(contract.problem({ method: 'GET', target: '/api/v1/api-keys', status: 200, headers: headers(), body: { apiKeys: [apiKey] } })).toBeUndefined();
    expect(
      contract.problem({ method: 'DELETE', target: '/api/v1/api-keys/x', status: 404, headers: headers(), body: error('api_key_not_found') }),
    ).toBeUndefined();
    expect(contract.problem({ method: 'GET', target: '/no/such/route', status: 404, headers: headers(), body: error('not_found') })).toBeUndefined();
  });

  it.each([
    [
      'a property the document does not list',
      200,
      { apiKeys: [{ ...apiKey, secretHash: 'x' }] },
      headers(),
      /GET \/api\/v1\/api-keys answered 200 .*must NOT have additional properties.*secretHash/,
    ],
    ['a missing property', 200, { apiKeys: [{ ...apiKey, revokedAt: undefined }] }, headers(), /must have required property 'revokedAt'/],
    [
      'a timestamp that is not one',
      200,
      { apiKeys: [{ ...apiKey, createdAt: 'yesterday' }] },
      headers(),
      /\/apiKeys\/0\/createdAt must match format "date-time"/,
    ],
    ['a status the route does not answer', 409, error('conflict'), headers(), /answered 409, a status docs\/openapi.json does not list for it/],
    ['an error code the status does not list', 404, error('customer_not_found'), headers(), /\/error\/code must be equal to one of the allowed values/],
    [
      'an error whose requestId is not x-request-id',
      403,
      { error: { ...error('insufficient_scope').error, requestId: 'other' } },
      headers(),
      /error.requestId "other" is not the x-request-id header/,
    ],
    ['no x-request-id', 200, { apiKeys: [] }, new Headers(), /without the header x-request-id/],
    ['a 503 without Retry-After', 503, error('service_busy'), headers(), /without the header retry-after/],
  ])('refuses %s, naming the route, the status and the mismatch', (_name, status, body, h, message) => {
    const target = status === 404 ? '/api/v1/api-keys/abcdefghijkl' : '/api/v1/api-keys';
    const method = status === 404 ? 'DELETE' : 'GET';
    expect(contract.problem({ method, target, status, headers: h, body })).toMatch(message);
  });

  it('refuses money sent as a number on the usage page', () => {
    const problem = contract.problem({
      method: 'GET',
      target: '/api/v1/customers/c/usage?period=2026-11',
      status: 200,
      headers: headers(),
      body: { subtotal: 1.5 },
    });
    expect(problem).toMatch(/^GET \/api\/v1\/customers\/\{id\}\/usage answered 200 with a body docs\/openapi.json does not allow/);
  });
});

describe('the CloudEvent schema of the ingest body', () => {
  const catalog = new CatalogIndex(parseCatalog(JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'catalog.json'), 'utf8'))));
  const ajv = new Ajv2020({ strict: true });
  addFormats(ajv);
  const schema = ajv.compile(doc.components.schemas.CloudEvent);
  const now = new Date('2026-11-23T18:00:00Z');
  const base = { specversion: '1.0', id: 'e1', source: 's', type: 'api_calls', subject: 'cus_1', time: '2026-11-23T17:59:00Z', data: { value: 1 } };
  const accepted = (e: unknown) => validateEvent(e, 0, { catalog, now, maxAgeMs: 35 * 86_400_000 }).ok;

  it.each([
    ['a plain event', base],
    ['an offset time with nanoseconds', { ...base, time: '2026-11-23T19:59:00.123456789+02:00' }],
    ['a leap second', { ...base, time: '2016-12-31T23:59:60Z' }],
    ['a UNIQUE_COUNT reading', { ...base, type: 'user_activity', data: { userId: 'u' } }],
    ['ids of 256 characters, any Unicode', { ...base, id: '\u0000\uffff'.repeat(128), source: '\u{1f600}'.repeat(128) }],
    ['extensions and datacontenttype', { ...base, datacontenttype: 'application/json', traceparent: 'x' }],
    ['a numeric string value', { ...base, data: { value: '123456789.123456789012' } }],
  ])('accepts what ingest accepts: %s', (_name, event) => {
    const time = event.time === '2016-12-31T23:59:60Z' ? new Date('2017-01-01T00:00:00Z') : now;
    expect(validateEvent(event, 0, { catalog, now: time, maxAgeMs: 35 * 86_400_000 }).ok).toBe(true);
    expect({ valid: schema(event), errors: schema.errors ?? null }).toEqual({ valid: true, errors: null });
  });

  it.each([
    ['specversion 0.3', { ...base, specversion: '0.3' }],
    ['no id', { ...base, id: undefined }],
    ['an empty source', { ...base, source: '' }],
    ['subject ".."', { ...base, subject: '..' }],
    ['a subject with a space', { ...base, subject: 'cus 1' }],
    ['data that is an array', { ...base, data: [1] }],
    ['another datacontenttype', { ...base, datacontenttype: 'text/plain' }],
  ])('refuses what ingest refuses for its shape: %s', (_name, event) => {
    expect(accepted(event)).toBe(false);
    expect(schema(event)).toBe(false);
  });
});
