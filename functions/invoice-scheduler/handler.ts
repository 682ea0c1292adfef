import type { ScheduledEvent } from 'aws-lambda';
import { startInvoiceRun } from '../../lib/app/invoicing/runs';
import { Period } from '../../lib/domain/period';
import { container } from '../../lib/platform/container';
import { logger } from '../../lib/platform/observability';

/**
 * EventBridge monthly cron: invoice the period that ended before the grace period.
 * Re-running it (EventBridge retries, a manual re-invoke) only enqueues customers not yet done.
 */
export const handler = async (event: ScheduledEvent) => {
  const c = container();
  const asOf = new Date(Date.parse(event.time ?? '') || c.clock.now().getTime());
  const period = Period.containing(new Date(asOf.getTime() - c.graceMs)).previous();
  const run = await startInvoiceRun(c, period);
  logger.info('invoice run started', { period: period.key, total: run.total, enqueued: run.enqueued });
  return run;
};
