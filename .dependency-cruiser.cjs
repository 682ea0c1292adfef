/**
 * The import boundaries of the product, checked by `npm run lint` (docs/decisions.md, "Layers and
 * lint"). The layers, bottom to top, and what each may import besides itself, Node and npm packages:
 *
 *   lib/domain     nothing of ours
 *   lib/app        lib/domain
 *   lib/adapters   lib/app, lib/domain (never lib/platform: adapters are handed their clients)
 *   lib/platform   everything in lib/, and the catalog's JSON (config, clients, wiring, http)
 *   functions/     lib/platform, lib/app, lib/domain: a handler is where HTTP meets a use case;
 *                  adapters come only through lib/platform/wiring. A function imports no other
 *                  function's folder.
 *
 * The product (lib/, functions/) never imports the tooling (local/, tools/, bench/, test/); the
 * tooling may import the product. No import cycle anywhere in the repository.
 *
 * To see them fail: `(cd test/fixtures/layers && npx depcruise --config ../../../.dependency-cruiser.cjs .)`
 * (test/fixtures/layers/README.md; test/unit/layers.test.ts expects each violation).
 * @type {import('dependency-cruiser').IConfiguration}
 */
const path = require('node:path');

/** What any layer may import from outside the repository's code. */
const outside = ['^node_modules/'];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle anywhere in the repository: a cycle makes two modules one.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'product-never-imports-tooling',
      comment: 'lib/ and functions/ deploy; local/, tools/, bench/ and test/ do not.',
      severity: 'error',
      from: { path: '^(lib|functions)/' },
      to: { path: '^(local|tools|bench|test)/' },
    },
    {
      name: 'domain-imports-nothing-of-ours',
      comment: 'lib/domain is the bottom layer: pure rules, only Node and npm packages.',
      severity: 'error',
      from: { path: '^lib/domain/' },
      to: { pathNot: ['^lib/domain/', ...outside], dependencyTypesNot: ['core'] },
    },
    {
      name: 'app-imports-only-domain',
      comment: 'Use cases and ports see the domain, never an adapter or the platform.',
      severity: 'error',
      from: { path: '^lib/app/' },
      to: { pathNot: ['^lib/(app|domain)/', ...outside], dependencyTypesNot: ['core'] },
    },
    {
      name: 'adapters-import-app-and-domain',
      comment: 'An adapter implements a port of lib/app with the records of lib/domain; the platform wires it.',
      severity: 'error',
      from: { path: '^lib/adapters/' },
      to: { pathNot: ['^lib/(adapters|app|domain)/', ...outside], dependencyTypesNot: ['core'] },
    },
    {
      name: 'platform-imports-only-lib',
      comment: 'The platform may import everything in lib/ (and the catalog it loads), nothing above it.',
      severity: 'error',
      from: { path: '^lib/platform/' },
      to: { pathNot: ['^lib/', '^catalog/[^/]+[.]json$', ...outside], dependencyTypesNot: ['core'] },
    },
    {
      name: 'functions-not-adapters',
      comment: 'A handler imports lib/platform, lib/app and lib/domain; adapters come only through lib/platform/wiring.',
      severity: 'error',
      from: { path: '^functions/' },
      to: {
        pathNot: ['^functions/', '^lib/(platform|app|domain)/', '^docs/openapi[.]json$', ...outside],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'function-imports-no-other-function',
      comment: 'Each function is packaged on its own (package.individually); what two share lives in lib/.',
      severity: 'error',
      from: { path: '^functions/([^/]+)/' },
      to: { path: '^functions/', pathNot: '^functions/$1/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import the cruiser cannot resolve would escape every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    // The fixtures break the rules on purpose (test/unit/layers.test.ts cruises them on their own).
    exclude: { path: ['^test/fixtures/', '^[.](local|serverless|esbuild)/', '^coverage/'] },
    // Type-only imports count: a port's type from the wrong layer is still a wrong dependency.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: path.join(__dirname, 'tsconfig.json') },
    enhancedResolveOptions: {
      // Packages' subpath exports (`@aws-lambda-powertools/logger/middleware`, `csv-stringify/sync`).
      exportsFields: ['exports'],
      conditionNames: ['require', 'import', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
