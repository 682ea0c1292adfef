import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The AWS SDK warns on every process under Node 20 that its releases from 2027 on need Node 22
 * (docs/decisions.md, "Node 20 here, Node 22 on Lambda"). Our entry points silence exactly that
 * warning, through the SDK's own switch, and nothing else.
 */
const root = join(__dirname, '..', '..');
const BUILD_A_CLIENT = `
  const { SQSClient } = require('@aws-sdk/client-sqs');
  new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }).config.region();
  process.emitWarning('SomeOtherWarning: still shown');
`;
const run = (prelude: string) => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  return spawnSync(process.execPath, ['--import', 'tsx', '-e', prelude + BUILD_A_CLIENT], { cwd: root, env, encoding: 'utf8' }).stderr;
};
const major = Number(process.versions.node.split('.')[0]);

it('silences the SDK node-version warning and only it', () => {
  const quiet = run("require('./tools/node-support');");
  expect(quiet).not.toContain('NodeVersionSupportWarning');
  expect(quiet).toContain('SomeOtherWarning: still shown');
  // Without it the warning is there (on Node 20, where the SDK emits it): the test above can fail.
  if (major < 22) expect(run('')).toContain('NodeVersionSupportWarning');
});

it('is loaded by the CLI, npm start, the demo and the local stack, and set for the tests', () => {
  for (const entry of ['tools/cli.ts', 'local/dev/start.ts', 'local/dev/demo.ts', 'local/runtime/stack.ts']) {
    expect(require('node:fs').readFileSync(join(root, entry), 'utf8')).toMatch(/^import '(\.\.?\/)+(tools\/)?node-support';$/m);
  }
  expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
});
