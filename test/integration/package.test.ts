import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HOT_PATH_LIMIT, STRIPE_FUNCTION, bundleProblems, packageService, readBundles, type Bundle } from '../../tools/bundles';
import { resourceName } from '../../local/runtime/iam';

/**
 * `osls package --stage prod` must work offline, without AWS credentials, and produce every
 * resource the running system needs.
 */
let dir: string;
let resources: Record<string, { Type: string; Properties?: any; DeletionPolicy?: string; UpdateReplacePolicy?: string; DependsOn?: unknown }>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sls-package-'));
  packageService(dir);
  resources = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')).Resources;
}, 200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

it('declares the tables with their keys, TTL and the period index', () => {
  const tables = Object.fromEntries(ofType('AWS::DynamoDB::Table'));
  expect(Object.keys(tables).sort()).toEqual([
    'AlertsTable',
    'ApiKeysTable',
    'CustomersTable',
    'DedupeTable',
    'InvoicesTable',
    'RateLimitsTable',
    'UsageTable',
  ]);
  expect(tables.RateLimitsTable!.Properties).toMatchObject({
    BillingMode: 'PAY_PER_REQUEST',
    TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
  });
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

it('schedules the invoice run (hourly in the first eight days, whatever the grace) and the alert outbox sweeper with EventBridge', () => {
  const rules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties);
  const monthly = rules.find((r) => r.ScheduleExpression === 'cron(5 * 1-8 * ? *)');
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
      'PATCH /api/v1/api-keys/{keyId}',
      'GET /api/v1/api-keys',
      'GET /api/v1/customers',
      'GET /api/v1/customers/{id}',
      'GET /api/v1/customers/{id}/usage',
      'GET /api/v1/customers/{id}/invoices',
      'GET /api/v1/customers/{id}/alerts',
      'GET /api/v1/customers/{id}/invoices/upcoming',
      'GET /api/v1/customers/{id}/events',
      'GET /api/v1/customers/{id}/entitlements',
      'GET /api/v1/customers/{id}/entitlements/{meter}',
      'POST /api/v1/events/void',
      'POST /api/v1/invoice-runs',
      'GET /api/v1/invoice-runs/{period}',
      'GET /health',
      'GET /api/v1/openapi.json',
      'POST /api/v1/api-keys',
      'POST /api/v1/events',
      'PUT /api/v1/customers/{id}',
      'PATCH /api/v1/customers/{id}',
      'GET /api/v1/customers/{id}/credits',
      'POST /api/v1/customers/{id}/credits/{key}/settle',
      'POST /api/v1/customers/{id}/portal-links',
      'GET /portal',
      'GET /portal/usage.csv',
    ].sort(),
  );
  const fns = ofType('AWS::Lambda::Function');
  for (const [, f] of fns) expect(f.Properties.Runtime).toBe('nodejs22.x');
});

it('throttles the HTTP API stage, at the deployment parameters apiRateLimit and apiBurstLimit (5,000/s and 2,500 unless given)', () => {
  const stages = ofType('AWS::ApiGatewayV2::Stage');
  expect(stages).toHaveLength(1);
  expect(stages[0]![1].Properties.DefaultRouteSettings).toEqual({ DetailedMetricsEnabled: false, ThrottlingRateLimit: 5000, ThrottlingBurstLimit: 2500 });
  const env = ofType('AWS::Lambda::Function')[0]![1].Properties.Environment.Variables;
  expect(env).toMatchObject({ RATE_LIMITS_TABLE: { Ref: 'RateLimitsTable' }, KEY_REQUESTS_PER_SECOND: '500', KEY_EVENTS_PER_MINUTE: '3000000' });
});

/**
 * Cold starts: each function bundles only what it uses (lib/platform/wiring). Sizes of the packaged
 * handler.js, not timings (`npm run bench:bundles` times the imports).
 */
describe('the function bundles', () => {
  let bundles: Bundle[];
  beforeAll(() => {
    bundles = readBundles(dir);
  });

  it('is one per function', () => {
    expect(bundles.map((b) => b.fn).sort()).toEqual(
      ofType('AWS::Lambda::Function')
        .map(([, f]) => String(f.Properties.FunctionName).replace('usage-metering-prod-', ''))
        .sort(),
    );
  });

  it('holds the Stripe SDK in the invoice worker alone', () => {
    const withStripe = bundles.filter((b) => b.stripeModules > 0).map((b) => b.fn);
    expect(withStripe).toEqual([STRIPE_FUNCTION]);
  });

  it.each(HOT_PATH_LIMIT.functions)('keeps %s under 400 KB of unminified JavaScript', (fn) => {
    const bundle = bundles.find((b) => b.fn === fn)!;
    expect({ fn, kb: Math.round(bundle.js.length / 1024), under: bundle.js.length < HOT_PATH_LIMIT.bytes }).toEqual({
      fn,
      kb: expect.any(Number),
      under: true,
    });
  });

  it('has nothing bench:bundles would fail on', () => {
    expect(bundleProblems(bundles)).toEqual([]);
  });
});

it('declares the DLQ alarms over the queues', () => {
  const alarm = resources.UsageDLQNotEmptyAlarm!.Properties;
  expect(alarm).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
  expect(resources.InvoiceDLQNotEmptyAlarm!.Type).toBe('AWS::CloudWatch::Alarm');
});

describe('the operations dashboard', () => {
  interface Widget {
    type: string;
    properties: { title?: string; markdown?: string; metrics?: (string | Record<string, string>)[][] };
  }
  let widgets: Widget[];
  /** One widget's metrics: "Namespace/MetricName [dimension names]" for plain metrics, the expression for searches. */
  const described = (w: Widget) => {
    const out: string[] = [];
    let previous: string[] = [];
    for (const row of w.properties.metrics ?? []) {
      const last = row[row.length - 1];
      if (typeof last === 'object' && last.expression) {
        out.push(last.expression);
        continue;
      }
      // CloudWatch's shorthand: "." repeats the value above in the same position.
      const cells = (row.filter((c) => typeof c === 'string') as string[]).map((c, i) => (c === '.' ? previous[i]! : c));
      previous = cells;
      const [namespace, name, ...dims] = cells;
      out.push(`${namespace}/${name} [${dims.filter((_, i) => i % 2 === 0).join(',')}]`);
    }
    return out;
  };
  const byTitle = (title: RegExp) => {
    const w = widgets.find((x) => title.test(x.properties.title ?? ''));
    if (!w) throw new Error(`no widget titled ${title}: ${widgets.map((x) => x.properties.title).join(' | ')}`);
    return described(w).join('\n');
  };

  beforeAll(() => {
    expect(ofType('AWS::CloudWatch::Dashboard')).toHaveLength(1);
    const sub = resources.OpsDashboard!.Properties.DashboardBody['Fn::Sub'] as string;
    // CloudFormation substitutes ${AWS::Region} and the queue names; what is left must be JSON.
    widgets = JSON.parse(sub.replace(/\$\{[^}]+\}/g, 'x')).widgets;
  });

  it('is valid JSON whose widgets all have a title and a place on the grid', () => {
    for (const w of widgets) {
      expect(w).toEqual(expect.objectContaining({ x: expect.any(Number), y: expect.any(Number), width: expect.any(Number), height: expect.any(Number) }));
      expect(w.type === 'text' ? w.properties.markdown : w.properties.title).toEqual(expect.any(String));
    }
  });

  it('shows events counted and duplicates dropped by meter (a search over the meter dimension), never by customer', () => {
    expect(byTitle(/events counted by meter/i)).toMatch(/SEARCH\('\{UsageMetering,meter,service\} MetricName="EventsCounted"'/);
    expect(byTitle(/duplicates dropped by meter/i)).toMatch(/SEARCH\('\{UsageMetering,meter,service\} MetricName="DuplicatesDropped"'/);
    for (const w of widgets) for (const m of described(w)) expect(m).not.toMatch(/customer/i);
  });

  it.each([
    [
      /^events \(all meters\)/i,
      ['UsageMetering/EventsAccepted [service]', 'UsageMetering/RequestsRejected [service]', 'UsageMetering/EventsCounted [service]'],
    ],
    [/processing lag/i, ['UsageMetering/ProcessingLag [service]']],
    [/invoices/i, ['UsageMetering/InvoicesCreated [service]', 'UsageMetering/InvoicesWithoutStripe [service]', 'UsageMetering/InvoicesFailed [service]']],
    [/^stripe calls/i, ['UsageMetering/StripeCalls [service]', 'UsageMetering/StripeRetries [service]']],
    [/alerts/i, ['UsageMetering/AlertsSent [service]', 'UsageMetering/AlertsUnpriced [service]']],
    [/dead-letter/i, ['AWS/SQS/ApproximateNumberOfMessagesVisible [QueueName]']],
    [/drift/i, ['UsageMetering/CounterDrift [service]']],
    [/voided/i, ['UsageMetering/EventsVoided [service]']],
    [/failures/i, ['UsageMetering/MessagesFailed [service]']],
  ])('has a widget %s with %j', (title, metrics) => {
    const shown = byTitle(title);
    for (const m of metrics) expect(shown).toContain(m);
  });

  it('shows the depth of both dead-letter queues', () => {
    const body = resources.OpsDashboard!.Properties.DashboardBody['Fn::Sub'] as string;
    expect(body).toContain('${UsageDLQ.QueueName}');
    expect(body).toContain('${InvoiceDLQ.QueueName}');
  });
});

describe('data protection', () => {
  it('retains every table of records on stack deletion and replacement, refuses DeleteTable and keeps 35 days of point-in-time recovery', () => {
    // The limits' counters only matter for the minute they count: nothing to keep.
    const tables = ofType('AWS::DynamoDB::Table').filter(([id]) => id !== 'RateLimitsTable');
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

/**
 * Every invoice-worker instance paces itself (lib/adapters/stripe/pacer.ts: starts spaced 1/rate
 * apart, so at most ceil(rate) in any one second). Its reserved concurrency times those rates is
 * what Stripe can see: 90 to 95% of the live limits on average, never more than the limits.
 */
it("paces the invoice worker's instances together to just over 90% of Stripe's live limits, and never over them", () => {
  const STRIPE_LIVE = { global: 100, perEndpoint: 25 };
  const [, worker] = ofType('AWS::Lambda::Function').find(([, r]) => String(r.Properties.FunctionName).endsWith('-invoiceWorker'))!;
  const instances = worker.Properties.ReservedConcurrentExecutions as number;
  const env = worker.Properties.Environment.Variables as Record<string, string>;
  const rps = Number(env.STRIPE_MAX_RPS);
  const endpointRps = Number(env.STRIPE_MAX_ENDPOINT_RPS);
  const share = { global: (instances * rps) / STRIPE_LIVE.global, perEndpoint: (instances * endpointRps) / STRIPE_LIVE.perEndpoint };
  for (const [what, s] of Object.entries(share)) expect({ what, s, inRange: s >= 0.9 && s <= 0.95 }).toEqual({ what, s, inRange: true });
  expect(instances * Math.ceil(rps)).toBeLessThanOrEqual(STRIPE_LIVE.global);
  expect(instances * Math.ceil(endpointRps)).toBeLessThanOrEqual(STRIPE_LIVE.perEndpoint);
  // The queue never invokes more instances than are reserved (a throttled invocation would count as a receive).
  const [, mapping] = ofType('AWS::Lambda::EventSourceMapping').find(([, r]) => r.Properties.EventSourceArn['Fn::GetAtt'][0] === 'InvoiceQueue')!;
  expect(mapping.Properties.ScalingConfig).toEqual({ MaximumConcurrency: instances });
});

/**
 * Least privilege. Each function's role, read from the packaged template, as resource -> actions
 * with the template's references turned into names: `UsageTable`, `UsageTable/index/byPeriod`,
 * `AlertsTopic`, `AlertsTopic:*` (its subscriptions). Log permissions are checked on their own.
 */
type Grants = Record<string, string[]>;
const SERVICE_PREFIX = 'usage-metering-prod-';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
const asList = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** function name -> its role's statements. */
function roles(): Record<string, { roleId: string; statements: Statement[] }> {
  const out: Record<string, { roleId: string; statements: Statement[] }> = {};
  for (const [, fn] of ofType('AWS::Lambda::Function')) {
    const name = String(fn.Properties.FunctionName).replace(SERVICE_PREFIX, '');
    const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
    const role = resources[roleId]!.Properties;
    out[name] = { roleId, statements: role.Policies.flatMap((p: any) => p.PolicyDocument.Statement) };
  }
  return out;
}

/** resource -> sorted actions, leaving out the log statement. */
function grants(statements: Statement[]): Grants {
  const out: Record<string, Set<string>> = {};
  for (const s of statements) {
    expect(s.Effect).toBe('Allow');
    const actions = asList(s.Action);
    if (actions.every((a) => a.startsWith('logs:'))) continue;
    for (const r of asList(s.Resource)) for (const a of actions) (out[resourceName(r)] ??= new Set()).add(a);
  }
  return Object.fromEntries(
    Object.entries(out)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([r, a]) => [r, [...a].sort()]),
  );
}

/** `{ UsageTable: 'GetItem Query' }` -> `{ UsageTable: ['dynamodb:GetItem', 'dynamodb:Query'] }`. */
function allow(row: Record<string, string>): Grants {
  const service = (r: string) =>
    /Table(\/|$)/.test(r) ? 'dynamodb' : /(Queue|DLQ)$/.test(r) ? 'sqs' : /Topic(:\*)?$/.test(r) ? 'sns' : /Bucket(\/|$)/.test(r) ? 's3' : '?';
  return Object.fromEntries(
    Object.entries(row)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([r, a]) => [
        r,
        a
          .split(' ')
          .map((x) => `${service(r)}:${x}`)
          .sort(),
      ]),
  );
}

/** Every authenticated request reads its key and counts itself against the key's limits. */
const AUTHENTICATE = { ApiKeysTable: 'GetItem', RateLimitsTable: 'UpdateItem' };
const SQS_TRIGGER = 'ReceiveMessage DeleteMessage GetQueueAttributes';

/**
 * Each function's role, exactly: nothing more than it calls. That it calls nothing more than this
 * is checked on every request of every test on the local stack (local/runtime/iam.ts).
 */
const EXPECTED: Record<string, Record<string, string>> = {
  ingest: { ...AUTHENTICATE, DedupeTable: 'PutItem GetItem UpdateItem', UsageQueue: 'SendMessage' },
  aggregate: {
    UsageQueue: SQS_TRIGGER,
    DedupeTable: 'PartiQLInsert BatchGetItem PutItem',
    UsageTable: 'BatchGetItem UpdateItem PutItem',
    CustomersTable: 'BatchGetItem',
    AlertsTable: 'Query PutItem UpdateItem',
    AlertsTopic: 'Publish',
    'ArchiveBucket/events/*': 'PutObject GetObject',
  },
  usage: { ...AUTHENTICATE, UsageTable: 'BatchGetItem', CustomersTable: 'BatchGetItem', InvoicesTable: 'Query' },
  customersPut: {
    ...AUTHENTICATE,
    CustomersTable: 'GetItem PutItem',
    InvoicesTable: 'Query',
    UsageTable: 'UpdateItem',
    AlertsTopic: 'Subscribe ListSubscriptionsByTopic GetSubscriptionAttributes SetSubscriptionAttributes Unsubscribe',
    'AlertsTopic:*': 'GetSubscriptionAttributes SetSubscriptionAttributes Unsubscribe',
  },
  customersPatch: {
    ...AUTHENTICATE,
    CustomersTable: 'GetItem PutItem',
    InvoicesTable: 'Query',
    AlertsTopic: 'Subscribe ListSubscriptionsByTopic GetSubscriptionAttributes SetSubscriptionAttributes Unsubscribe',
    'AlertsTopic:*': 'GetSubscriptionAttributes SetSubscriptionAttributes Unsubscribe',
  },
  customersGet: { ...AUTHENTICATE, CustomersTable: 'GetItem' },
  creditsList: { ...AUTHENTICATE, CustomersTable: 'GetItem', InvoicesTable: 'Query' },
  creditsSettle: { ...AUTHENTICATE, CustomersTable: 'GetItem', InvoicesTable: 'GetItem UpdateItem' },
  customersList: { ...AUTHENTICATE, CustomersTable: 'Scan' },
  apiKeysCreate: { ...AUTHENTICATE, ApiKeysTable: 'GetItem PutItem' },
  apiKeysRevoke: { ...AUTHENTICATE, ApiKeysTable: 'GetItem UpdateItem' },
  apiKeysUpdate: { ...AUTHENTICATE, ApiKeysTable: 'GetItem UpdateItem' },
  apiKeysList: { ...AUTHENTICATE, ApiKeysTable: 'GetItem Scan' },
  invoicesList: { ...AUTHENTICATE, InvoicesTable: 'Query' },
  invoicesUpcoming: { ...AUTHENTICATE, CustomersTable: 'BatchGetItem', UsageTable: 'BatchGetItem', InvoicesTable: 'Query' },
  invoiceRunsStart: { ...AUTHENTICATE, InvoicesTable: 'UpdateItem GetItem Query', UsageTable: 'GetItem', InvoiceQueue: 'SendMessage' },
  invoiceRunsProgress: { ...AUTHENTICATE, InvoicesTable: 'GetItem Query' },
  invoiceScheduler: { InvoicesTable: 'GetItem UpdateItem', InvoiceQueue: 'SendMessage' },
  invoiceWorker: {
    InvoiceQueue: `${SQS_TRIGGER} SendMessage`,
    CustomersTable: 'BatchGetItem Scan',
    UsageTable: 'BatchGetItem',
    'UsageTable/index/byPeriod': 'Query',
    InvoicesTable: 'PutItem GetItem BatchGetItem UpdateItem Query',
  },
  alertsList: { ...AUTHENTICATE, AlertsTable: 'Query' },
  entitlementsList: { ...AUTHENTICATE, CustomersTable: 'BatchGetItem', UsageTable: 'BatchGetItem' },
  entitlementsOne: { ...AUTHENTICATE, CustomersTable: 'BatchGetItem', UsageTable: 'BatchGetItem' },
  eventsList: { ...AUTHENTICATE, ArchiveBucket: 'ListBucket', 'ArchiveBucket/events/*': 'GetObject', UsageTable: 'Query' },
  eventsVoid: {
    ...AUTHENTICATE,
    ArchiveBucket: 'ListBucket',
    'ArchiveBucket/events/*': 'GetObject',
    DedupeTable: 'GetItem',
    UsageTable: 'GetItem Query PutItem UpdateItem DeleteItem',
  },
  reconciler: { ArchiveBucket: 'ListBucket', 'ArchiveBucket/events/*': 'GetObject', UsageTable: 'Query', 'UsageTable/index/byPeriod': 'Query' },
  alertSweeper: { 'AlertsTable/index/pending': 'Query', AlertsTable: 'UpdateItem', AlertsTopic: 'Publish' },
  // Serves the OpenAPI document bundled into it: nothing beyond its log group.
  openapi: {},
  // A link is signed with the deployment secret from the environment: nothing is read or stored.
  portalLinks: { ...AUTHENTICATE },
  // The page authenticates by its signed token (no API key read), then reads what the usage,
  // alerts and invoices APIs read; the CSV only the daily counters.
  portalPage: { UsageTable: 'BatchGetItem Query', CustomersTable: 'BatchGetItem GetItem', AlertsTable: 'Query', InvoicesTable: 'Query' },
  portalCsv: { UsageTable: 'Query' },
  health: {
    UsageTable: 'DescribeTable',
    DedupeTable: 'DescribeTable',
    CustomersTable: 'DescribeTable',
    ApiKeysTable: 'DescribeTable',
    InvoicesTable: 'DescribeTable',
    AlertsTable: 'DescribeTable',
    RateLimitsTable: 'DescribeTable',
    UsageQueue: 'GetQueueAttributes',
    InvoiceQueue: 'GetQueueAttributes',
  },
};

describe('the event archive', () => {
  it('is encrypted, unversioned, private, moves to infrequent access after 90 days, and outlives the stack', () => {
    const [, bucket] = ofType('AWS::S3::Bucket').find(([id]) => id === 'ArchiveBucket')!;
    expect(bucket).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    const p = bucket.Properties;
    expect(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(p.VersioningConfiguration).toEqual({ Status: 'Suspended' });
    expect(p.LifecycleConfiguration.Rules[0].Transitions).toEqual([{ StorageClass: 'STANDARD_IA', TransitionInDays: 90 }]);
    expect(p.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
  });

  it('is written only by the aggregator and read only by the listing, void and reconciler functions (and the aggregator, to compare an object it finds)', () => {
    const writers = Object.entries(roles()).filter(([, r]) => r.statements.some((s) => asList(s.Action).includes('s3:PutObject')));
    expect(writers.map(([fn]) => fn)).toEqual(['aggregate']);
    const readers = Object.entries(roles()).filter(([, r]) => r.statements.some((s) => asList(s.Action).includes('s3:GetObject')));
    expect(readers.map(([fn]) => fn).sort()).toEqual(['aggregate', 'eventsList', 'eventsVoid', 'reconciler']);
  });
});

describe('least privilege', () => {
  it('gives every function a role of its own, and none the shared default role', () => {
    const r = roles();
    expect(Object.keys(r).sort()).toEqual(Object.keys(EXPECTED).sort());
    const ids = Object.values(r).map((x) => x.roleId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).not.toContain('IamRoleLambdaExecution');
  });

  it.each(Object.keys(EXPECTED))('grants %s exactly the actions it calls, on the resources it calls them on', (fn) => {
    expect(grants(roles()[fn]!.statements)).toEqual(allow(EXPECTED[fn]!));
  });

  it('lets each function write only its own log group', () => {
    for (const [fn, { statements }] of Object.entries(roles())) {
      const logs = statements.filter((s) => asList(s.Action).some((a) => a.startsWith('logs:')));
      expect(logs.flatMap((s) => asList(s.Action)).sort()).toEqual(['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents']);
      const ownGroup = 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/' + SERVICE_PREFIX + fn + ':*:*';
      for (const s of logs) expect(asList(s.Resource)).toEqual([{ 'Fn::Sub': ownGroup }]);
    }
  });

  it('names every table, index, queue and topic by its ARN: no wildcard resource', () => {
    const declared = new Set(Object.keys(resources));
    for (const [fn, { statements }] of Object.entries(roles())) {
      for (const s of statements.filter((x) => !asList(x.Action).every((a) => a.startsWith('logs:')))) {
        for (const r of asList(s.Resource)) {
          const name = resourceName(r);
          // A stack resource, one of its named indexes, the subscriptions of the alerts topic, or the archive's objects.
          expect({ fn, name, ok: /^\w+(\/index\/\w+|:\*|\/events\/\*)?$/.test(name) && declared.has(name.split(/[/:]/)[0]!) }).toEqual({ fn, name, ok: true });
          if (name.endsWith(':*')) expect({ fn, name }).toEqual({ fn, name: 'AlertsTopic:*' });
          if (name.endsWith('/events/*')) expect({ fn, name }).toEqual({ fn, name: 'ArchiveBucket/events/*' });
        }
      }
    }
  });

  it('lets ingest read API keys to authenticate and touch no invoice, customer or alert data, nor any subscription', () => {
    const g = grants(roles().ingest!.statements);
    expect(g.ApiKeysTable).toEqual(['dynamodb:GetItem']);
    for (const table of ['InvoicesTable', 'CustomersTable', 'AlertsTable', 'UsageTable']) expect(g[table]).toBeUndefined();
    expect(
      Object.values(g)
        .flat()
        .filter((a) => a.startsWith('sns:')),
    ).toEqual([]);
  });

  it('keeps the aggregator away from API keys, customers writes and invoices', () => {
    const g = grants(roles().aggregate!.statements);
    expect(g.ApiKeysTable).toBeUndefined();
    expect(g.InvoicesTable).toBeUndefined();
    expect(g.CustomersTable).toEqual(['dynamodb:BatchGetItem']);
  });

  const withAction = (action: string) =>
    Object.entries(roles())
      .filter(([, { statements }]) => statements.some((s) => asList(s.Action).includes(action)))
      .map(([fn]) => fn)
      .sort();

  it('lets only the customers PUT and PATCH functions subscribe and unsubscribe e-mail addresses', () => {
    for (const action of ['sns:Subscribe', 'sns:Unsubscribe', 'sns:SetSubscriptionAttributes'])
      expect(withAction(action)).toEqual(['customersPatch', 'customersPut']);
    expect(withAction('sns:Publish')).toEqual(['aggregate', 'alertSweeper']);
  });

  it('lets only the listings and the invoice-run fan-out scan a table', () => {
    expect(withAction('dynamodb:Scan')).toEqual(['apiKeysList', 'customersList', 'invoiceWorker']);
  });

  it('gives no data rights to the default role that the per-function roles are copied from', () => {
    // It is left in the template by the plugin and used by no function; statements written under
    // provider.iam would land here and reach nothing, so there must be none.
    const statements = resources.IamRoleLambdaExecution!.Properties.Policies[0].PolicyDocument.Statement as Statement[];
    const actions = statements.flatMap((s) => asList(s.Action));
    expect(actions.filter((a) => !/^logs:|^sqs:(ReceiveMessage|DeleteMessage|GetQueueAttributes)$/.test(a))).toEqual([]);
  });
});
