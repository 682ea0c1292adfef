/**
 * `npm run test:soak` (the last step of `npm test`): the 50,000-event soak, in a process of its own.
 * @type {import('jest').Config}
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/soak'],
  testMatch: ['**/soak.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
};
