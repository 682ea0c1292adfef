import type { Stack } from '../local/runtime/stack';
import { queueDepth as depthOf, waitQuiet as quietOf } from '../local/runtime/queues';

/** Messages on one of the stack's queues (by its resource name), waiting or being processed. */
export const queueDepth = (stack: Stack, queue: string) => depthOf(stack.sqs, stack.resources.queues[queue]!.url);

/** Waits until the queue is empty and no poller runs an invocation, three checks in a row; whether it did. */
export const waitQuiet = (stack: Stack, queue: string, opts: { everyMs?: number; timeoutMs?: number } = {}) =>
  quietOf(stack.sqs, stack.resources.queues[queue]!.url, () => stack.pollers.every((p) => p.idle), { times: 3, ...opts });
