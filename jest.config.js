// Tests, and the stacks and CLIs they start, run without the AWS SDK's Node-version warning
// (tools/node-support.ts, docs/decisions.md).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // The Stripe fake keeps its own tests beside it (local/stripe-fake/README.md).
  roots: ['<rootDir>/test', '<rootDir>/local/stripe-fake/test'],
  testMatch: ['**/*.test.ts'],
  // The browser tests need Chromium: `npm run test:browser` (jest.browser.config.js). The soak runs
  // in a process of its own after the rest (`npm run test:soak`, jest.soak.config.js): after the
  // other fifty suites in one process it takes 618 s instead of 147-166 s (measured 2026-11-26).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/browser/', '<rootDir>/test/soak/soak.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  // @middy/core ships ESM only; let swc turn it into CommonJS for jest.
  transformIgnorePatterns: ['node_modules/(?!(@middy)/)'],
  testTimeout: 60000,
};
