import { invoiceCustomer, recordInvoiceFailure } from '../../lib/app/invoicing/job';
import { fanOutInvoiceRun } from '../../lib/app/invoicing/runs';
import { parseInvoiceJob, type InvoiceJob } from '../../lib/app/messages';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { customersArea } from '../../lib/platform/wiring/customers';
import { usageArea } from '../../lib/platform/wiring/usage';
import { countersArea } from '../../lib/platform/wiring/counters';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { invoiceSync } from '../../lib/platform/wiring/stripe';
import { sqsHandler } from '../../lib/platform/lambda';
import { logger, MetricUnit, metrics } from '../../lib/platform/observability';

/** The areas of the composition root this function uses (and Stripe, lib/platform/wiring/stripe.ts: this function's alone). */
const deps = () => wire(catalogArea, customersArea, usageArea, invoicingArea, countersArea);

/**
 * SQS invoice queue -> one customer's invoice, or one page of a run's fan-out. Records are taken
 * one after the other (the Stripe calls are paced); a failed one goes back to SQS, and its last
 * attempt records the error and counts the customer as failed in its run.
 */
export const handler = sqsHandler(
  {
    parallel: false,
    async onFailure(record, error) {
      metrics.addMetric('InvoicesFailed', MetricUnit.Count, 1);
      let job: InvoiceJob;
      try {
        job = parseInvoiceJob(record.body);
      } catch {
        return; // a malformed message: nothing to record, it ends in the DLQ
      }
      if (!('customerId' in job)) return;
      const final = Number(record.attributes?.ApproximateReceiveCount ?? '1') >= deps().config.INVOICE_MAX_RECEIVES;
      await recordInvoiceFailure(deps(), job, error, final);
    },
  },
  async (record) => {
    const c = deps();
    const job = parseInvoiceJob(record.body);
    if ('action' in job) {
      // One page of a run's fan-out; a duplicate or a redelivery after it moved on stops.
      const step = await fanOutInvoiceRun(c, job);
      metrics.addMetric('InvoiceJobsEnqueued', MetricUnit.Count, step.stale ? 0 : step.enqueued);
      return;
    }
    const out = await invoiceCustomer({ ...c, sync: invoiceSync() }, job);
    if (out.status === 'failed') {
      // A reason no retry cures (plan_not_found, an amount Stripe cannot take): recorded, alarmed, not retried.
      logger.error('invoice job stopped', { job, error: out.error });
      metrics.addMetric('InvoicesFailed', MetricUnit.Count, 1);
    } else metrics.addMetric(out.status === 'finalized' ? 'InvoicesCreated' : 'InvoicesWithoutStripe', MetricUnit.Count, 1);
  },
);
