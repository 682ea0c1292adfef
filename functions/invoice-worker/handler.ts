import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { invoiceCustomer, recordInvoiceFailure } from '../../lib/app/invoicing/job';
import { fanOutInvoiceRun } from '../../lib/app/invoicing/runs';
import { PERIOD_PATTERN } from '../../lib/domain/period';
import { container, invoiceSync } from '../../lib/platform/container';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

const period = z.string().regex(PERIOD_PATTERN);
const token = z.string().min(1).max(64).optional();
const jobSchema = z.union([
  z.object({ period, customerId: z.string().min(1).max(128) }),
  z.object({ period, action: z.literal('start_run'), token, after: token }),
]);

/**
 * SQS invoice queue -> one customer's invoice. Failures go back to SQS (batchItemFailures); the
 * last attempt records the error and counts the customer as failed in its run.
 */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const c = container();
  const failures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    let job: z.infer<typeof jobSchema> | undefined;
    try {
      job = jobSchema.parse(JSON.parse(record.body));
      if ('action' in job) {
        // One page of a run's fan-out; a duplicate or a redelivery after it moved on stops.
        const step = await fanOutInvoiceRun(c, job);
        metrics.addMetric('InvoiceJobsEnqueued', MetricUnit.Count, step.stale ? 0 : step.enqueued);
        continue;
      }
      const out = await invoiceCustomer({ ...c, sync: invoiceSync() }, job);
      if (out.status === 'failed') {
        // A reason no retry cures (plan_not_found, an amount Stripe cannot take): recorded, alarmed, not retried.
        logger.error('invoice job stopped', { job, error: out.error });
        metrics.addMetric('InvoicesFailed', MetricUnit.Count, 1);
      } else metrics.addMetric(out.status === 'finalized' ? 'InvoicesCreated' : 'InvoicesWithoutStripe', MetricUnit.Count, 1);
    } catch (err) {
      const final = Number(record.attributes?.ApproximateReceiveCount ?? '1') >= c.config.INVOICE_MAX_RECEIVES;
      logger.error('invoice job failed', { messageId: record.messageId, job, final, error: err as Error });
      metrics.addMetric('InvoicesFailed', MetricUnit.Count, 1);
      if (job && 'customerId' in job) await recordInvoiceFailure(c, job, err instanceof Error ? err.message : String(err), final).catch(() => undefined);
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  metrics.publishStoredMetrics();
  return { batchItemFailures: failures };
};
