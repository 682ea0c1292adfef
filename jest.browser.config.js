/**
 * `npm run test:browser`: the usage page in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against the local stack. Not part of `npm test`: it needs the browser installed.
 * @type {import('jest').Config}
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/browser'],
  testMatch: ['**/*.browser.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120000,
};
