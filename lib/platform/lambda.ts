import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { config } from './config';
import { logger, MetricUnit, metrics } from './observability';

/**
 * The middy stacks of the non-HTTP functions (lib/platform/http.ts has the HTTP one). Each factory
 * reads the configuration when the module loads, so a bad environment fails the function's init,
 * not each invocation; the logger gets the Lambda context; metrics are flushed by middleware after
 * every invocation, thrown or not.
 */
function base<E, R>() {
  config();
  return middy<E, R, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics));
}

export interface SqsHandlerOptions {
  /** Records of one invocation in parallel (usage counting) or one after the other (paced Stripe calls). */
  parallel: boolean;
  /** Called when a record failed, before SQS gets it back (e.g. to record the last attempt). */
  onFailure?(record: SQSRecord, error: unknown): Promise<void>;
}

/**
 * An SQS-triggered function: each record is processed on its own and a failed one is reported in
 * batchItemFailures (Powertools' partial batch response), so SQS redelivers only it and, after
 * maxReceiveCount, moves it to the DLQ.
 */
export function sqsHandler(options: SqsHandlerOptions, processRecord: (record: SQSRecord) => Promise<void>) {
  const handle = async (record: SQSRecord) => {
    try {
      await processRecord(record);
    } catch (err) {
      logger.error('message failed; SQS will redeliver it', {
        messageId: record.messageId,
        receiveCount: record.attributes?.ApproximateReceiveCount,
        error: err as Error,
      });
      metrics.addMetric('MessagesFailed', MetricUnit.Count, 1);
      await options.onFailure?.(record, err).catch((e: unknown) => logger.error('recording the failure failed', { error: e as Error }));
      throw err;
    }
  };
  return base<SQSEvent, SQSBatchResponse>().handler((event, context) =>
    // A processor per invocation: it keeps the batch's failures in its own state, and the local
    // stack runs several invocations of one function at once in one process.
    processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), { context, processInParallel: options.parallel }),
  );
}

/** An EventBridge-scheduled function. */
export function scheduledHandler<E, R>(fn: (event: E) => Promise<R>) {
  return base<E, R>().handler((event) => fn(event));
}
