import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `osls package --stage prod` must work offline, without AWS credentials, and produce every
 * resource the running system needs.
 */
const root = join(__dirname, '..', '..');
let dir: string;
let resources: Record<string, { Type: string; Properties?: any; DeletionPolicy?: string; UpdateReplacePolicy?: string; DependsOn?: unknown }>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sls-package-'));
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: 'no-such-profile',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
  execFileSync(process.execPath, [join(root, 'node_modules', 'osls', 'bin', 'serverless.js'), 'package', '--stage', 'prod', '--package', dir], {
    cwd: root,
    env,
    stdio: 'pipe',
    timeout: 180_000,
  });
  resources = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')).Resources;
}, 200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

it('declares the tables with their keys, TTL and the period index', () => {
  const tables = Object.fromEntries(ofType('AWS::DynamoDB::Table'));
  expect(Object.keys(tables).sort()).toEqual(['AlertsTable', 'ApiKeysTable', 'CustomersTable', 'DedupeTable', 'InvoicesTable', 'UsageTable']);
  expect(tables.AlertsTable!.Properties.GlobalSecondaryIndexes[0].IndexName).toBe('pending');
  expect(tables.UsageTable!.Properties.KeySchema).toEqual([
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ]);
  expect(tables.UsageTable!.Properties.GlobalSecondaryIndexes[0].IndexName).toBe('byPeriod');
  expect(tables.DedupeTable!.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
  for (const t of Object.values(tables)) expect(t.Properties.BillingMode).toBe('PAY_PER_REQUEST');
});

it('declares the queues with DLQ redrive and event source mappings that report batch item failures', () => {
  expect(resources.UsageQueue!.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': ['UsageDLQ', 'Arn'] }, maxReceiveCount: 5 });
  expect(resources.InvoiceQueue!.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': ['InvoiceDLQ', 'Arn'] }, maxReceiveCount: 3 });
  const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);
  expect(mappings).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ EventSourceArn: { 'Fn::GetAtt': ['UsageQueue', 'Arn'] }, FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 10 }),
      expect.objectContaining({ EventSourceArn: { 'Fn::GetAtt': ['InvoiceQueue', 'Arn'] }, FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 1 }),
    ]),
  );
  expect(resources.AlertsTopic!.Type).toBe('AWS::SNS::Topic');
});

it('schedules the monthly invoice run and the alert outbox sweeper with EventBridge', () => {
  const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
  const monthly = rules.find((r) => r.ScheduleExpression === 'cron(0 1 1 * ? *)');
  expect(JSON.stringify(monthly?.Targets)).toContain('InvoiceSchedulerLambdaFunction');
  const sweeper = rules.find((r) => r.ScheduleExpression === 'rate(1 minute)');
  expect(JSON.stringify(sweeper?.Targets)).toContain('AlertSweeperLambdaFunction');
});

it('subscribes the ops address to every alert when it is given', () => {
  expect(resources.OpsAlertsSubscription).toMatchObject({
    Type: 'AWS::SNS::Subscription',
    Condition: 'HasOpsEmail',
    Properties: { Protocol: 'email', TopicArn: { Ref: 'AlertsTopic' } },
  });
});

it('routes every HTTP API path to a function', () => {
  const routes = ofType('AWS::ApiGatewayV2::Route')
    .map(([, r]) => r.Properties.RouteKey)
    .sort();
  expect(routes).toEqual(
    [
      'DELETE /api/v1/api-keys/{keyId}',
      'GET /api/v1/api-keys',
      'GET /api/v1/customers',
      'GET /api/v1/customers/{id}',
      'GET /api/v1/customers/{id}/usage',
      'GET /api/v1/customers/{id}/invoices',
      'GET /api/v1/customers/{id}/alerts',
      'GET /api/v1/customers/{id}/invoices/upcoming',
      'POST /api/v1/invoice-runs',
      'GET /api/v1/invoice-runs/{period}',
      'GET /health',
      'POST /api/v1/api-keys',
      'POST /api/v1/events',
      'PUT /api/v1/customers/{id}',
    ].sort(),
  );
  const fns = ofType('AWS::Lambda::Function');
  for (const [, f] of fns) expect(f.Properties.Runtime).toBe('nodejs22.x');
});

it('scopes IAM to the stack resources (no wildcard resources)', () => {
  const role = resources.IamRoleLambdaExecution!.Properties;
  const statements = role.Policies[0].PolicyDocument.Statement as { Action: string[]; Resource: unknown[] }[];
  const ours = statements.filter((s) => s.Action.some((a) => /^(dynamodb|sqs|sns):/.test(a)));
  expect(ours.length).toBeGreaterThan(0);
  for (const s of ours) for (const r of s.Resource) expect(JSON.stringify(r)).not.toBe('"*"');
  const json = JSON.stringify(ours);
  for (const id of ['UsageTable', 'DedupeTable', 'CustomersTable', 'ApiKeysTable', 'InvoicesTable', 'AlertsTable', 'UsageQueue', 'InvoiceQueue', 'AlertsTopic'])
    expect(json).toContain(id);
});

it('declares the dashboard and the DLQ alarm over the emitted metrics', () => {
  expect(ofType('AWS::CloudWatch::Dashboard')).toHaveLength(1);
  const alarm = resources.UsageDLQNotEmptyAlarm!.Properties;
  expect(alarm).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
  expect(resources.InvoiceDLQNotEmptyAlarm!.Type).toBe('AWS::CloudWatch::Alarm');
  const body = JSON.stringify(resources.OpsDashboard!.Properties.DashboardBody);
  for (const metric of [
    'EventsAccepted',
    'EventsCounted',
    'DuplicatesDropped',
    'ProcessingLag',
    'MessagesFailed',
    'InvoicesCreated',
    'InvoicesFailed',
    'StripeCalls',
    'StripeRetries',
    'AlertsSent',
  ])
    expect(body).toContain(metric);
});

describe('data protection', () => {
  it('retains every table on stack deletion and replacement, refuses DeleteTable and keeps 35 days of point-in-time recovery', () => {
    const tables = ofType('AWS::DynamoDB::Table');
    expect(tables.length).toBe(6);
    for (const [id, t] of tables) {
      expect({ id, deletion: t.DeletionPolicy, replace: t.UpdateReplacePolicy }).toEqual({ id, deletion: 'Retain', replace: 'Retain' });
      expect({ id, protection: t.Properties.DeletionProtectionEnabled }).toEqual({ id, protection: true });
      expect({ id, pitr: t.Properties.PointInTimeRecoverySpecification }).toEqual({ id, pitr: { PointInTimeRecoveryEnabled: true } });
    }
  });

  it('retains every queue, so accepted but uncounted events and unfinished invoice jobs outlive the stack', () => {
    const queues = ofType('AWS::SQS::Queue');
    expect(queues.map(([id]) => id).sort()).toEqual(['InvoiceDLQ', 'InvoiceQueue', 'UsageDLQ', 'UsageQueue']);
    for (const [id, q] of queues)
      expect({ id, deletion: q.DeletionPolicy, replace: q.UpdateReplacePolicy }).toEqual({ id, deletion: 'Retain', replace: 'Retain' });
  });
});
