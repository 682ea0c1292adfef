import * as z from 'zod/mini';
import '../domain/zod-english';
import type { MeteredEvent } from '../domain/events';
import { PERIOD_PATTERN } from '../domain/period';

/**
 * The queue messages, one schema each, used by the sender (its type) and the receiver (parsed with
 * it before anything is done). zod/mini: the aggregator's bundle stays small.
 *
 * Every message names its version (`v`). The contract across a deploy (docs/messages.md): a
 * receiver processes its own version and the one before it, since messages written by the
 * previous code may still be in the queue (or its DLQ, redriven later); a sender writes only
 * its own version; a version a receiver does not know fails the message, which SQS delivers again
 * (and, past maxReceiveCount, keeps in the DLQ) rather than guess. So a change to a message adds a
 * version and keeps reading the old one for at least one deploy and the queue's retention.
 */

const text = (max: number) => z.string().check(z.minLength(1), z.maxLength(max));
const period = z.string().check(z.regex(PERIOD_PATTERN));

const meteredEvent = z.object({
  source: z.string(),
  id: z.string(),
  type: z.string(),
  customerId: z.string(),
  time: z.string(),
  period: z.string(),
  readings: z.record(z.string(), z.string()),
}) satisfies z.ZodMiniType<MeteredEvent>;

/**
 * The usage queue: one message of accepted events. `batchId` is stable (survives redelivery and a
 * DLQ redrive): the aggregator's "applied" marker. Version 1 is the first and only version.
 */
const usageBatchV1 = z.object({ v: z.literal(1), batchId: text(200), receivedAt: z.string(), events: z.array(meteredEvent) });
export type UsageBatch = z.infer<typeof usageBatchV1>;

export function parseUsageBatch(body: string): UsageBatch {
  return usageBatchV1.parse(JSON.parse(body));
}

/**
 * The invoice queue: one customer's invoice of a period, or one page of a run's fan-out.
 * Version 1 adds `v`; version 0 (no `v`, written before versions) carries the same fields.
 */
const token = z.optional(text(64));
const customerJob = { period, customerId: text(128) };
const runStep = { period, action: z.literal('start_run'), token, after: token };
const invoiceJobV1 = z.union([z.object({ v: z.literal(1), ...customerJob }), z.object({ v: z.literal(1), ...runStep })]);
const invoiceJobV0 = z.union([z.object(customerJob), z.object(runStep)]);

export type InvoiceJob = z.infer<typeof invoiceJobV1>;
export type RunStepJob = Extract<InvoiceJob, { action: 'start_run' }>;

export function parseInvoiceJob(body: string): InvoiceJob {
  const json: unknown = JSON.parse(body);
  if (typeof json === 'object' && json !== null && !('v' in json)) return { v: 1, ...invoiceJobV0.parse(json) };
  return invoiceJobV1.parse(json);
}
