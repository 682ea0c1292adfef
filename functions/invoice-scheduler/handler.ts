import type { ScheduledEvent } from 'aws-lambda';
import { beginInvoiceRun } from '../../lib/app/invoicing/runs';
import { Period } from '../../lib/domain/period';
import { wire } from '../../lib/platform/wiring/base';
import { customersArea } from '../../lib/platform/wiring/customers';
import { usageArea } from '../../lib/platform/wiring/usage';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(customersArea, usageArea, invoicingArea);

/**
 * EventBridge monthly cron: invoice the period that ended before the grace period. It only starts
 * the run's fan-out (the worker walks it, a page per step); re-running it (EventBridge retries, a
 * manual re-invoke) restarts the fan-out, which only enqueues customers not yet done.
 */
export const handler = scheduledHandler(async (event: ScheduledEvent) => {
  const c = deps();
  const asOf = new Date(Date.parse(event.time ?? '') || c.clock.now().getTime());
  const period = Period.containing(new Date(asOf.getTime() - c.graceMs)).previous();
  const run = await beginInvoiceRun(c, period);
  logger.info('invoice run started', run);
  return run;
});
