import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Stack } from '../local/stack';

/** Messages on one of the stack's queues, waiting or being processed (received, not yet deleted). */
export async function queueDepth(stack: Stack, queue: string): Promise<number> {
  const attrs = await stack.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.resources.queues[queue]!.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** Waits until the queue is empty and no poller runs an invocation, `times` checks in a row (or `timeoutMs` passed); whether it did. */
export async function waitQuiet(stack: Stack, queue: string, opts: { times?: number; everyMs?: number; timeoutMs?: number } = {}): Promise<boolean> {
  const deadline = performance.now() + (opts.timeoutMs ?? 300_000);
  for (let quiet = 0; quiet < (opts.times ?? 3);) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 200));
    quiet = (await queueDepth(stack, queue)) === 0 && stack.pollers.every((p) => p.idle) ? quiet + 1 : 0;
  }
  return true;
}
