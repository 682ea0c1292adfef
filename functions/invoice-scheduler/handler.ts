import type { ScheduledEvent } from 'aws-lambda';
import { scheduledInvoiceRun } from '../../lib/app/invoicing/runs';
import { wire } from '../../lib/platform/wiring/base';
import { customersArea } from '../../lib/platform/wiring/customers';
import { usageArea } from '../../lib/platform/wiring/usage';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { scheduledHandler } from '../../lib/platform/lambda';
import { logger } from '../../lib/platform/observability';

/** The areas of the composition root this function uses. */
const deps = () => wire(customersArea, usageArea, invoicingArea);

/**
 * EventBridge, hourly in the first days of each month: starts the run of the month that ended
 * before it fired, once that month is closed (its end plus INVOICE_GRACE_MINUTES) and unless its run
 * exists already. It only starts the run's fan-out (the worker walks it, a page per step).
 */
export const handler = scheduledHandler(async (event: ScheduledEvent) => {
  const c = deps();
  const firedAt = new Date(Date.parse(event.time ?? '') || c.clock.now().getTime());
  const outcome = await scheduledInvoiceRun(c, firedAt);
  logger.info(outcome.started ? 'invoice run started' : 'no invoice run started', outcome);
  return outcome;
});
