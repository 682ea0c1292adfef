import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { dynamoClient } from '../../lib/platform/clients/dynamo';
import { sqsClient } from '../../lib/platform/clients/sqs';
import { config } from '../../lib/platform/config';
import { RETRY_AFTER_SECONDS, errorBody, httpHandler } from '../../lib/platform/http';

/** GET /health: 200 when every table and queue answers, 503 otherwise. */
export const handler = httpHandler({ public: true }, async (req) => {
  const c = config();
  const checks = await Promise.allSettled([
    ...[c.USAGE_TABLE, c.DEDUPE_TABLE, c.CUSTOMERS_TABLE, c.API_KEYS_TABLE, c.INVOICES_TABLE, c.ALERTS_TABLE].map((t) =>
      dynamoClient().send(new DescribeTableCommand({ TableName: t })),
    ),
    ...[c.USAGE_QUEUE_URL, c.INVOICE_QUEUE_URL].map((q) => sqsClient().send(new GetQueueAttributesCommand({ QueueUrl: q, AttributeNames: ['QueueArn'] }))),
  ]);
  const ok = checks.every((r) => r.status === 'fulfilled');
  return {
    status: ok ? 200 : 503,
    body: ok ? { status: 'ok' } : errorBody('unavailable', 'a dependency is not ready', req.requestId),
    headers: ok ? undefined : { 'retry-after': String(RETRY_AFTER_SECONDS) },
  };
});
