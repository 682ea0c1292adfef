import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDeployment, ROOT } from '../../local/runtime/deployment';
import { API } from '../../lib/platform/openapi/operations';
import { ROUTES, type RouteKey } from '../../lib/platform/routes';

/**
 * The route table (lib/platform/routes.ts) is the one description of a route; everything else that
 * names routes is checked against it here: serverless.yml's functions and their httpApi events, the
 * handlers (each serves the route it is deployed on), the operations of the OpenAPI document and
 * the README's table.
 */
const keys = Object.keys(ROUTES) as RouteKey[];

it('serverless.yml deploys every route of the table on its handler, and no other', () => {
  const deployed = loadDeployment()
    .routes.map((r) => `${r.method} ${r.path} -> ${r.fn.handler}`)
    .sort();
  expect(deployed).toEqual(keys.map((k) => `${k} -> ${ROUTES[k].handler}`).sort());
});

it("each handler is built for the route it is deployed on, with that route's key", () => {
  for (const key of keys) {
    const { handler } = ROUTES[key];
    const dot = handler.lastIndexOf('.');
    const source = readFileSync(join(ROOT, `${handler.slice(0, dot)}.ts`), 'utf8');
    const built = new RegExp(`export const ${handler.slice(dot + 1)} = (httpHandler|pageHandler)\\(\\s*'([^']+)'`).exec(source);
    expect({ handler, route: built?.[2] }).toEqual({ handler, route: key });
  }
});

it('pages are the token routes and only they; JSON routes never take a portal token', () => {
  const pages = keys.filter((k) => 'token' in ROUTES[k].access);
  expect(pages.sort()).toEqual(keys.filter((k) => 'page' in API[k]).sort());
});

it('the operations of the OpenAPI document are exactly the routes of the table', () => {
  expect(Object.keys(API).sort()).toEqual([...keys].sort());
});

/** The README's API table: `| \`METHOD path?query\` | scope | what |`, one row per route. */
function readmeRoutes(text: string): Map<string, string> {
  const rows = text.split('\n').filter((l) => /^\| `(GET|POST|PUT|PATCH|DELETE) \//.test(l));
  return new Map(
    rows.map((row) => {
      const [route, scope] = row
        .split('|')
        .map((c) => c.trim())
        .slice(1, 3) as [string, string];
      return [route.replace(/`/g, '').replace(/\?.*$/, ''), scope];
    }),
  );
}

/** What the README's table says differently from the route table, a line per route. */
function readmeProblems(text: string): string[] {
  const readme = readmeRoutes(text);
  const who = (k: RouteKey) => ((a) => ('scope' in a ? a.scope : 'token' in a ? 'token' : 'none'))(ROUTES[k].access as { scope?: string; token?: string });
  return [
    ...keys.filter((k) => readme.get(k) !== who(k)).map((k) => `${k}: README says ${readme.get(k) ?? 'nothing'}, the table ${who(k)}`),
    ...[...readme.keys()].filter((r) => !(r in ROUTES)).map((r) => `${r}: in the README, not a route`),
  ];
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

it("the README's route table lists every route with who may call it, and no route the table lacks", () => {
  expect(readmeProblems(README)).toEqual([]);
});

it('the README check fails on a row left out, a wrong scope or a route that does not exist', () => {
  const broken = README.replace(/^\| `GET \/health`.*\n/m, '')
    .replace(/^\| `GET \/api\/v1\/customers\?[^`]*` +\| admin/m, (row) => row.replace('admin', 'read '))
    .replace(/^(\| `GET \/api\/v1\/openapi.json`)/m, '| `GET /api/v1/nothing` | none | x |\n$1');
  expect(readmeProblems(broken)).toEqual([
    'GET /api/v1/customers: README says read, the table admin',
    'GET /health: README says nothing, the table none',
    'GET /api/v1/nothing: in the README, not a route',
  ]);
});
