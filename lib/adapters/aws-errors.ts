/**
 * How AWS SDK errors are recognised, in one place: conditional-check failures (a domain outcome,
 * never a crash) and throttling (a 503 with Retry-After at the edge, a retry inside).
 */
const nameOf = (err: unknown): string | undefined => (err as { name?: string } | null)?.name;

/** A write's condition failed: the thing was already there, or moved. */
export function isConditionalCheckFailure(err: unknown): boolean {
  return nameOf(err) === 'ConditionalCheckFailedException';
}

/** The reasons of a cancelled transaction, one per item ('None' for the items that were fine). */
export function cancellationReasons(err: unknown): string[] | undefined {
  if (nameOf(err) !== 'TransactionCanceledException') return undefined;
  return ((err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
]);

/** DynamoDB, SQS, SNS or S3 asked us to slow down (after the SDK's own retries). */
export function isThrottling(err: unknown): boolean {
  const name = nameOf(err);
  if (name !== undefined && THROTTLING.has(name)) return true;
  if ((err as { $retryable?: { throttling?: boolean } } | null)?.$retryable?.throttling === true) return true;
  return (cancellationReasons(err) ?? []).some((c) => c === 'ThrottlingError' || c === 'ProvisionedThroughputExceeded');
}
