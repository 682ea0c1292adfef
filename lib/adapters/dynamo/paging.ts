import type { AttributeValue } from '@aws-sdk/client-dynamodb';

type Key = Record<string, AttributeValue>;

/** Every item of a paginated Query or Scan: `page(start)` sends one request from `start` on. */
export async function* allItems(page: (start: Key | undefined) => Promise<{ Items?: Key[]; LastEvaluatedKey?: Key }>): AsyncGenerator<Key> {
  let start: Key | undefined;
  do {
    const out = await page(start);
    yield* out.Items ?? [];
    start = out.LastEvaluatedKey;
  } while (start);
}
