/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  // @middy/core ships ESM only; let swc turn it into CommonJS for jest.
  transformIgnorePatterns: ['node_modules/(?!(@middy)/)'],
  testTimeout: 60000,
};
