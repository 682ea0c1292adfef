import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, NumberValue } from '@aws-sdk/lib-dynamodb';
import { backoffMs, sleep } from '../../domain/concurrency';

/**
 * The document client every adapter talks to DynamoDB through. Numbers never pass through a
 * JavaScript float on their way in or out: counters are written as exact decimal text
 * (`exact("0.1")`), and a number read back is a JS number only when it is a safe integer (counts,
 * versions, timestamps); any other value (a decimal counter, an integer past 2^53) comes back as
 * its exact text.
 */
export function documents(db: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(db, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
    unmarshallOptions: { wrapNumbers: exactNumber },
  });
}

function exactNumber(text: string): number | string {
  return /^-?\d{1,15}$/.test(text) ? Number(text) : text;
}

/** A decimal string written as a DynamoDB number, digit for digit. */
export const exact = (decimal: string) => NumberValue.from(decimal);

/** Every item of a paginated Query or Scan: `page(start)` sends one request from `start` on. */
export async function* allItems<T = Record<string, unknown>>(
  page: (start: Record<string, unknown> | undefined) => Promise<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: Record<string, unknown> }>,
): AsyncGenerator<T> {
  let start: Record<string, unknown> | undefined;
  do {
    const out = await page(start);
    yield* (out.Items ?? []) as T[];
    start = out.LastEvaluatedKey;
  } while (start);
}

/**
 * A BatchGetItem until every key is served: `send(keys)` sends one request for those keys (by
 * table), with whatever read options the caller gives them, and hands back its answer; the keys
 * DynamoDB leaves unprocessed (UnprocessedKeys) are sent again after the shared backoff, and after
 * `attempts` requests in all the read fails.
 */
export async function batchGetAll<K>(
  keys: Record<string, K[]>,
  send: (keys: Record<string, K[]>) => Promise<{ UnprocessedKeys?: Record<string, { Keys?: K[] }> }>,
  attempts = Number.POSITIVE_INFINITY,
): Promise<void> {
  let pending = keys;
  for (let attempt = 1; Object.values(pending).some((k) => k.length > 0); attempt++) {
    if (attempt > attempts) throw new Error(`BatchGetItem: keys still unprocessed after ${attempts} requests`);
    if (attempt > 1) await sleep(backoffMs(attempt - 1, 100, 1000));
    const out = await send(pending);
    pending = Object.fromEntries(Object.entries(out.UnprocessedKeys ?? {}).map(([table, k]) => [table, k.Keys ?? []]));
  }
}
