import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { dynamoClient } from '../../lib/platform/clients/dynamo';
import { sqsClient } from '../../lib/platform/clients/sqs';
import { config } from '../../lib/platform/config';
import { UnavailableError } from '../../lib/domain/errors';
import { httpHandler } from '../../lib/platform/http';
import { wire } from '../../lib/platform/wiring/base';

/** How long one check's answer is given to every caller of this instance: the route is public. */
export const HEALTH_CACHE_MS = 5_000;

/** Whether every table and queue answers: 9 AWS calls. */
async function check(): Promise<boolean> {
  const c = config();
  const checks = await Promise.allSettled([
    ...[c.USAGE_TABLE, c.DEDUPE_TABLE, c.CUSTOMERS_TABLE, c.API_KEYS_TABLE, c.INVOICES_TABLE, c.ALERTS_TABLE, c.RATE_LIMITS_TABLE].map((t) =>
      dynamoClient().send(new DescribeTableCommand({ TableName: t })),
    ),
    ...[c.USAGE_QUEUE_URL, c.INVOICE_QUEUE_URL].map((q) => sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: q, AttributeNames: ['QueueArn'] }))),
  ]);
  return checks.every((r) => r.status === 'fulfilled');
}

/** The check in flight or done within HEALTH_CACHE_MS, shared by the requests that arrive meanwhile. */
let cached: { at: number; ok: Promise<boolean> } | undefined;

/**
 * GET /health: 200 when every table and queue answers, 503 otherwise. Public, so it answers from
 * one check per instance every 5 seconds at most, however often it is called.
 */
export const handler = httpHandler('GET /health')(async () => {
  const now = wire().clock.now().getTime();
  if (cached === undefined || now - cached.at >= HEALTH_CACHE_MS) cached = { at: now, ok: check() };
  if (!(await cached.ok)) throw new UnavailableError('unavailable', 'a dependency is not ready');
  return { status: 200, body: { status: 'ok' } };
});
