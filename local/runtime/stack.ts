import '../../tools/node-support';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { loadDeployment, loadHandler, rateMs } from './deployment';
import { asFunction, enforceRoles } from './iam';
import { LOCAL_CREDENTIALS, LOCAL_REGION, freePort, startDynamoLocal, startSqsSns, type DynamoLocal, type SqsSns } from './emulators';
import { startHttpServer, type LocalHttpServer, type LocalRoute } from './http-server';
import { SqsPoller, type PollerOptions } from './poller';
import { provision, type Provisioned } from './provision';
import { startStripeFake, type RateLimitSetting, type StripeFake } from '../stripe-fake/server';

/**
 * The whole system on one machine: DynamoDB Local, fauxqs, the HTTP API and the SQS pollers, all
 * derived from serverless.yml and resources/. Used by `npm start`, the integration tests and the
 * benchmark alike, so what the tests prove is what a user runs.
 */
export interface StackOptions {
  /** HTTP port; 0 picks a free one. */
  port?: number;
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  pollerConcurrency?: number;
  /** Extra environment for the functions (set before any handler module is loaded). */
  env?: Record<string, string>;
  /** Do not start the SQS pollers (tests that drive the aggregator by hand). */
  pollers?: boolean;
  onPollerError?: (err: unknown) => void;
  /**
   * The Stripe fake's rate limits (unlimited by default): `'live'` (100 requests/s overall and 25/s
   * per endpoint, as Stripe in live mode), `'sandbox'` (25 and 25), `{ global, perEndpoint }`, or a
   * number (overall).
   */
  stripeRateLimit?: RateLimitSetting;
  /**
   * Run `rate(...)` schedules (the alert sweeper) on a timer; `scheduleScale` shortens their period
   * (a local minute can be a few seconds). Off unless asked: tests invoke such functions themselves.
   */
  schedules?: boolean;
  scheduleScale?: number;
  /** Keep DynamoDB Local's data in this directory (absolute) across restarts; in memory when absent. */
  dataDir?: string;
}

export interface Stack {
  url: string;
  env: Record<string, string>;
  resources: Provisioned;
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  sns: SNSClient;
  s3: S3Client;
  fauxqs: SqsSns;
  stripe: StripeFake;
  pollers: SqsPoller[];
  /** A local queue subscribed to the alerts topic without a filter: every alert lands here. */
  alertsInbox: { url: string; arn: string };
  stop(): Promise<void>;
}

/** Environment the functions get, resolved from serverless.yml's provider.environment. */
function functionEnvironment(declared: Record<string, unknown>, resources: Provisioned): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(declared)) {
    if (typeof value === 'string') env[name] = value.replace('${sls:stage}', 'local');
    else if (value && typeof value === 'object' && 'Ref' in value) {
      const ref = String((value as { Ref: string }).Ref);
      env[name] = resources.tables[ref] ?? resources.queues[ref]?.url ?? resources.topics[ref] ?? resources.buckets[ref] ?? '';
      if (!env[name]) throw new Error(`serverless.yml environment ${name}: !Ref ${ref} is not a provisioned resource`);
    }
  }
  return env;
}

/**
 * Sets `env` in process.env; the function returned puts back what each key held before, unless
 * something (another stack) has set the key since.
 */
export function setEnvironment(env: Record<string, string>): () => void {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [key, value] of Object.entries(env)) {
      if (process.env[key] !== value) continue;
      if (before[key] === undefined) delete process.env[key];
      else process.env[key] = before[key];
    }
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const deployment = loadDeployment();
  const started: { dynamoLocal?: DynamoLocal; fauxqs?: SqsSns; stripe?: StripeFake; http?: LocalHttpServer; restoreEnv?: () => void } = {};
  try {
    const [dynamoLocal, fauxqs, stripe] = await Promise.all([
      startDynamoLocal({ dataDir: opts.dataDir }),
      startSqsSns(),
      startStripeFake({ port: 0, rateLimit: opts.stripeRateLimit }),
    ]);
    Object.assign(started, { dynamoLocal, fauxqs, stripe });
    const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
    const dynamo = new DynamoDBClient({ ...common, endpoint: dynamoLocal.endpoint });
    const sqs = new SQSClient({ ...common, endpoint: fauxqs.address, useQueueUrlAsEndpoint: false });
    const sns = new SNSClient({ ...common, endpoint: fauxqs.address });
    const s3 = new S3Client({ ...common, endpoint: fauxqs.address, forcePathStyle: true });
    const resources = await provision(
      deployment.resources,
      { dynamo, sqs, sns, s3 },
      { visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? 10, maxReceiveCount: opts.maxReceiveCount, keepExistingTables: opts.dataDir !== undefined },
    );

    const port = opts.port === undefined ? 3000 : opts.port === 0 ? await freePort() : opts.port;
    const env: Record<string, string> = {
      ...functionEnvironment(deployment.environment, resources),
      // Portal links (and the CLI that makes them) point at this stack's HTTP API.
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      STAGE: 'local',
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      DYNAMODB_ENDPOINT: dynamoLocal.endpoint,
      SQS_ENDPOINT: fauxqs.address,
      SNS_ENDPOINT: fauxqs.address,
      S3_ENDPOINT: fauxqs.address,
      // The real Stripe SDK, pointed at the fake.
      STRIPE_SECRET_KEY: 'sk_test_local',
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String(stripe.port),
      STRIPE_API_PROTOCOL: 'http',
      STRIPE_MAX_RPS: process.env.STRIPE_MAX_RPS ?? '100',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      ...opts.env,
    };
    // Handlers read their configuration from the environment, as on Lambda. Put back on stop, so
    // that a stack's settings (COUNTER_SHARDS, a small fan-out page) never reach the next one.
    const restoreEnv = setEnvironment(env);
    started.restoreEnv = restoreEnv;
    // Each function may call only what its role in serverless.yml allows, as on AWS. Required only
    // now: the function modules read the environment just set when they load.
    const functionClients = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    enforceRoles(deployment, resources, {
      dynamodb: functionClients.dynamoClient(),
      s3: functionClients.s3Client(),
      sqs: functionClients.sqsClient(),
      sns: functionClients.snsClient(),
    });

    const routes: LocalRoute[] = deployment.routes.map((r) => ({
      method: r.method,
      path: r.path,
      handler: asFunction(r.fn.name, loadHandler(r.fn.handler)),
      timeoutMs: (r.fn.timeout ?? deployment.defaultTimeout) * 1000,
    }));
    started.http = await startHttpServer(routes, port);

    const pollers = deployment.queueTriggers.map((t) => {
      const queue = resources.queues[t.queue];
      if (!queue) throw new Error(`function ${t.fn.name}: queue ${t.queue} is not provisioned`);
      return new SqsPoller({
        sqs,
        queueUrl: queue.url,
        queueArn: queue.arn,
        handler: asFunction(t.fn.name, loadHandler<PollerOptions['handler']>(t.fn.handler)),
        batchSize: t.batchSize,
        reportBatchItemFailures: t.reportBatchItemFailures,
        concurrency: opts.pollerConcurrency ?? 2,
        timeoutMs: (t.fn.timeout ?? deployment.defaultTimeout) * 1000,
        onError: opts.onPollerError,
      });
    });
    if (opts.pollers !== false) pollers.forEach((p) => p.start());

    // Locally alerts cannot be e-mailed (fauxqs accepts email subscriptions but never delivers);
    // an inbox queue subscribed to the topic shows every alert instead.
    const inboxUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'AlertsInbox' }))).QueueUrl!;
    const inboxArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: inboxUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await sns.send(new SubscribeCommand({ TopicArn: resources.topics.AlertsTopic, Protocol: 'sqs', Endpoint: inboxArn }));

    // Scheduled runs in flight, so that stop() can wait for them as it waits for the pollers.
    const scheduledRuns = new Set<Promise<void>>();
    const timers = (opts.schedules ? deployment.schedules : []).flatMap((s) => {
      const every = rateMs(s.expression);
      if (every === undefined) return [];
      const handler = asFunction(s.fn.name, loadHandler<(event: unknown) => Promise<unknown>>(s.fn.handler));
      const timer = setInterval(
        () => {
          const run = handler({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date().toISOString(), detail: {} })
            .then(
              () => undefined,
              (err: unknown) => opts.onPollerError?.(err),
            )
            .finally(() => scheduledRuns.delete(run));
          scheduledRuns.add(run);
        },
        every * (opts.scheduleScale ?? 1),
      );
      return [timer];
    });

    const http = started.http;
    let stopping: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${port}`,
      env,
      resources,
      dynamo,
      sqs,
      sns,
      s3,
      fauxqs,
      stripe,
      pollers,
      alertsInbox: { url: inboxUrl, arn: inboxArn },
      // Work first, emulators last: nothing may still call DynamoDB Local, fauxqs or the Stripe
      // fake once they stop, or it fails with ECONNREFUSED. So: no new scheduled runs, requests or
      // receives; wait for what is in flight (a running invocation ends as it would on Lambda);
      // then stop the emulators.
      stop: () =>
        (stopping ??= (async () => {
          timers.forEach(clearInterval);
          await Promise.all([
            ...pollers.map((p) => p.stop()),
            http.stop(),
            (async () => {
              while (scheduledRuns.size > 0) await Promise.all(scheduledRuns);
            })(),
          ]);
          dynamo.destroy();
          sqs.destroy();
          sns.destroy();
          await Promise.all([fauxqs.stop(), dynamoLocal.stop(), stripe.stop()]);
          restoreEnv();
        })()),
    };
  } catch (err) {
    started.restoreEnv?.();
    await started.http?.stop();
    await started.stripe?.stop();
    await started.fauxqs?.stop();
    await started.dynamoLocal?.stop();
    throw err;
  }
}
