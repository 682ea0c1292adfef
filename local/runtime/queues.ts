import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** Messages on a queue: waiting, being processed (received, not yet deleted) or delayed. */
export async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
}

/**
 * Waits until the queue is empty and `idle()` (no invocation of its pollers running), `times` checks
 * in a row; whether it got there within `timeoutMs`, or throws then if `orThrow`.
 */
export async function waitQuiet(
  sqs: SQSClient,
  url: string,
  idle: () => boolean,
  opts: { times?: number; everyMs?: number; timeoutMs?: number; orThrow?: boolean } = {},
): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const deadline = performance.now() + timeoutMs;
  for (let quiet = 0; quiet < (opts.times ?? 2);) {
    if (performance.now() > deadline) {
      if (!opts.orThrow) return false;
      throw new Error(`queue ${url} did not drain within ${timeoutMs / 1000} s (depth ${await queueDepth(sqs, url)})`);
    }
    quiet = idle() && (await queueDepth(sqs, url)) === 0 ? quiet + 1 : 0;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 200));
  }
  return true;
}
