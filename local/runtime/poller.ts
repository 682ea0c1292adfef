import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { randomUUID } from 'node:crypto';

/**
 * Invokes an SQS-triggered handler the way Lambda's event source mapping does:
 * - receives up to batchSize messages and passes them as one SQSEvent;
 * - deletes only the records that succeeded: with ReportBatchItemFailures the ones not listed in
 *   batchItemFailures; a thrown error (or a malformed response) fails the whole batch;
 * - failed messages stay on the queue, reappear after the visibility timeout, and SQS's redrive
 *   policy (maxReceiveCount) moves them to the DLQ. Nothing here ever deletes a failed message.
 */
export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: (event: SQSEvent, context: unknown) => Promise<SQSBatchResponse | void>;
  batchSize: number;
  reportBatchItemFailures: boolean;
  /** Parallel pollers, like the several concurrent invocations Lambda runs. */
  concurrency?: number;
  region?: string;
  /** The function's timeout, for getRemainingTimeInMillis. */
  timeoutMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Fault-injection hooks for soak and failure tests, settable on a running poller (the stack
 * creates the pollers): both default to off and change nothing when unset.
 */
export interface PollerHooks {
  /**
   * Wraps each invocation (e.g. to give it an async context that a client middleware can read).
   * A rejection fails the whole batch, as a Lambda that dies does: nothing is deleted.
   */
  around?: (records: SQSRecord[], invoke: () => Promise<SQSBatchResponse | void>) => Promise<SQSBatchResponse | void>;
  /**
   * At-least-once delivery: when this returns true for a received message, a copy of its body is
   * put back on the queue before the invocation, so the same message is delivered again (perhaps
   * concurrently with this invocation, perhaps after it).
   */
  deliverTwice?: (record: SQSRecord) => boolean;
}

/**
 * The receive: a long poll of RECEIVE_WAIT_SECONDS for up to 10 messages (SQS's most), handed to
 * the function as soon as any arrive. Lambda's maximumBatchingWindow (waiting to fill a batch) is
 * not emulated: locally a message is invoked on as soon as a receive returns it.
 */
export const RECEIVE_WAIT_SECONDS = 1;

export function toRecord(m: Message, queueArn: string, region: string): SQSRecord {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
      SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
      SenderId: m.Attributes?.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** Which receipt handles to delete after an invocation, per Lambda's partial batch response rules. */
export function succeeded(
  records: SQSRecord[],
  outcome: { error: unknown } | { response: SQSBatchResponse | void },
  reportBatchItemFailures: boolean,
): SQSRecord[] {
  if ('error' in outcome) return [];
  if (!reportBatchItemFailures) return records;
  const failures = outcome.response?.batchItemFailures;
  if (failures === undefined || failures === null) return records;
  if (!Array.isArray(failures)) return [];
  const ids = new Set(records.map((r) => r.messageId));
  // Lambda treats an empty or unknown identifier as a failure of the whole batch.
  if (failures.some((f) => !f?.itemIdentifier || !ids.has(f.itemIdentifier))) return [];
  const failed = new Set(failures.map((f) => f.itemIdentifier));
  return records.filter((r) => !failed.has(r.messageId));
}

export class SqsPoller {
  private running = false;
  private loops: Promise<void>[] = [];
  private inFlight = 0;
  invocations = 0;
  /** Messages delivered a second time through `hooks.deliverTwice`. */
  deliveredTwice = 0;
  hooks: PollerHooks = {};

  constructor(private readonly opts: PollerOptions) {}

  get queueUrl(): string {
    return this.opts.queueUrl;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.opts.concurrency ?? 2 }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** True when no invocation is running (used by tests to wait for quiet). */
  get idle(): boolean {
    return this.inFlight === 0;
  }

  private async loop(): Promise<void> {
    const region = this.opts.region ?? 'us-east-1';
    while (this.running) {
      let messages: Message[] = [];
      try {
        const out = await this.opts.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.opts.queueUrl,
            MaxNumberOfMessages: Math.min(10, this.opts.batchSize),
            WaitTimeSeconds: RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames: ['All'],
          }),
        );
        messages = out.Messages ?? [];
      } catch (err) {
        if (!this.running) break;
        this.opts.onError?.(err);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) continue;
      this.inFlight++;
      try {
        await this.invoke(messages.map((m) => toRecord(m, this.opts.queueArn, region)));
      } finally {
        this.inFlight--;
      }
    }
  }

  private async invoke(records: SQSRecord[]): Promise<void> {
    this.invocations++;
    let outcome: { error: unknown } | { response: SQSBatchResponse | void };
    try {
      await this.deliverAgain(records);
      const deadline = Date.now() + (this.opts.timeoutMs ?? 30_000);
      const context = { awsRequestId: randomUUID(), functionName: 'local', getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
      const invoke = () => this.opts.handler({ Records: records }, context);
      const around = this.hooks.around;
      outcome = { response: await (around ? around(records, invoke) : invoke()) };
    } catch (error) {
      this.opts.onError?.(error);
      outcome = { error };
    }
    const done = succeeded(records, outcome, this.opts.reportBatchItemFailures);
    for (let i = 0; i < done.length; i += 10) {
      const chunk = done.slice(i, i + 10);
      await this.opts.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.opts.queueUrl, Entries: chunk.map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle })) }),
      );
    }
  }

  private async deliverAgain(records: SQSRecord[]): Promise<void> {
    const decide = this.hooks.deliverTwice;
    if (!decide) return;
    for (const r of records.filter((record) => decide(record))) {
      await this.opts.sqs.send(new SendMessageCommand({ QueueUrl: this.opts.queueUrl, MessageBody: r.body }));
      this.deliveredTwice++;
    }
  }
}
