// `eslint .` in `npm run lint`: ESLint's and typescript-eslint's recommended rules, not type-checked
// (tsc --noEmit checks the types; the type-checked no-floating-promises and no-misused-promises found
// nothing and would add about 40 s). Import boundaries and cycles are .dependency-cruiser.cjs, unused
// files, exports and dependencies knip.json (docs/decisions.md, "Layers and lint").
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The few Node globals the plain JavaScript files (jest configs, the emulators' launchers) use.
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'require', 'module', '__dirname', 'setTimeout', 'clearTimeout', 'URL'].map((name) => [
    name,
    name === 'module' ? 'writable' : 'readonly',
  ]),
);

export default defineConfig(
  { ignores: ['node_modules/', 'coverage/', '.local/', '.serverless/', '.esbuild/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // Control characters are matched on purpose: input validation refuses them, the CLI and the
      // alerts escape them, tests strip terminal escapes.
      'no-control-regex': 'off',
      // `let x;` assigned once, later, and read by a callback before that (as `x?.`) cannot be a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // A leading `_` marks a parameter or binding left unused on purpose (a handler's unused event).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    // CommonJS configs (jest, dependency-cruiser) require what they extend.
    files: ['**/*.{js,cjs}'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['local/**', 'tools/**', 'bench/**', 'test/**'],
    rules: {
      // The tooling loads the product after a stack has set its environment (config is read once, at
      // module load), hence `require(...) as typeof import(...)` where an import would run too early.
      '@typescript-eslint/no-require-imports': 'off',
      // The tooling reads JSON answers, CloudFormation and SDK shapes loosely; the product never does.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
