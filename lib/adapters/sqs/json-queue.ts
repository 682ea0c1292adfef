import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { UnavailableError } from '../../domain/errors';
import { asciiJson } from '../../domain/json';
import { retry } from '../../domain/concurrency';

/** SendMessageBatch takes 10 entries and 256 KiB in total. */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 250 * 1024;

/**
 * Sends JSON messages (usage batches, invoice jobs) in as few SendMessageBatch calls as fit. When
 * some cannot be sent after retries it throws UnavailableError (`queue_unavailable`): some messages
 * may be queued and some not, so callers must make a retry of the whole call safe.
 */
export class SqsJsonQueue<T> {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(batches: T[]): Promise<void> {
    const groups: { id: string; body: string }[][] = [];
    let group: { id: string; body: string }[] = [];
    let bytes = 0;
    batches.forEach((b, i) => {
      const body = asciiJson(b);
      const size = Buffer.byteLength(body);
      if (group.length === MAX_ENTRIES || (group.length > 0 && bytes + size > MAX_REQUEST_BYTES)) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
      group.push({ id: String(i), body });
      bytes += size;
    });
    if (group.length) groups.push(group);
    // Every group is tried to the end before answering, so what is queued is settled when we do.
    const failed = (await Promise.allSettled(groups.map((g) => this.sendAll(g)))).filter((r) => r.status === 'rejected');
    if (failed.length > 0) {
      throw Object.assign(new UnavailableError('queue_unavailable', `the queue refused ${failed.length} of ${groups.length} sends`), {
        cause: failed[0]!.reason,
      });
    }
  }

  /** Re-sends only the entries SQS reported as failed; throws if any still fail. */
  private async sendAll(entries: { id: string; body: string }[]): Promise<void> {
    let pending = entries;
    await retry(
      async () => {
        const out = await this.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending.map((e) => ({ Id: e.id, MessageBody: e.body })) }),
        );
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        pending = pending.filter((e) => failed.has(e.id));
        if (pending.length > 0) throw new Error(`SQS rejected ${pending.length} messages: ${(out.Failed ?? []).map((f) => f.Code).join(',')}`);
      },
      { attempts: 4, baseMs: 50, retryable: () => true },
    );
  }
}
