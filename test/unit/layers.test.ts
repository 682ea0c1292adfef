import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The import boundaries of `npm run lint` (.dependency-cruiser.cjs) fail when broken: the fixtures
 * in test/fixtures/layers break each rule once, on purpose, and nothing else. The lint itself
 * leaves the fixtures out; here they are cruised from their own folder, where their paths read as
 * the repository's (`lib/domain/bad.ts`).
 */
const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'layers');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

/** dependency-cruiser's CLI with the repository's config, run from the fixtures' folder. */
function cruiseFixtures(outputType: 'json' | 'err') {
  const cli = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const run = spawnSync(process.execPath, [cli, '--config', join(ROOT, '.dependency-cruiser.cjs'), '-T', outputType, '.'], {
    cwd: FIXTURES,
    encoding: 'utf8',
  });
  if (run.error) throw run.error;
  return run;
}

it('names each broken layer rule and the cycle, and nothing that keeps the rules', () => {
  const { summary } = JSON.parse(cruiseFixtures('json').stdout) as { summary: { violations: Violation[] } };
  const violations = summary.violations;

  expect(violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort()).toEqual([
    'adapters-import-app-and-domain: lib/adapters/store.ts -> lib/platform/config.ts',
    'app-imports-only-domain: lib/app/bad.ts -> lib/adapters/store.ts',
    'domain-imports-nothing-of-ours: lib/domain/bad.ts -> lib/app/use-case.ts',
    'function-imports-no-other-function: functions/ingest/handler.ts -> functions/usage/handler.ts',
    'functions-not-adapters: functions/usage/handler.ts -> lib/adapters/store.ts',
    'no-circular: local/dev/demo.ts -> local/dev/start.ts',
    'platform-imports-only-lib: lib/platform/debug.ts -> tools/helper.ts',
    'product-never-imports-tooling: lib/platform/debug.ts -> tools/helper.ts',
  ]);
  expect(violations.find((v) => v.rule.name === 'no-circular')?.cycle?.map((m) => m.name)).toEqual(['local/dev/start.ts', 'local/dev/demo.ts']);
});

it('fails the way `npm run lint` runs it: a non-zero exit and one error line per violation', () => {
  const run = cruiseFixtures('err');

  expect(run.status).toBe(8);
  expect(run.stdout).toContain('error domain-imports-nothing-of-ours: lib/domain/bad.ts → lib/app/use-case.ts');
  expect(run.stdout).toContain('error no-circular: local/dev/demo.ts →');
  expect(run.stdout).toContain('x 8 dependency violations (8 errors, 0 warnings)');
});
