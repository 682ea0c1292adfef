import * as z from 'zod/mini';
import '../domain/zod-english';
import { KEY_LIMIT_BOUNDS } from '../domain/apikey';
import { MAX_CORRECTION_LOOKBACK, correctionLookback } from '../domain/period';

/**
 * Configuration comes from the environment only (serverless.yml sets it on Lambda,
 * local/runtime/stack.ts sets it locally). Parsed once; a missing or malformed setting stops the
 * function at start-up with a message that names it.
 */
const text = (min = 1) => z.string().check(z.minLength(min));
const url = () => z.string().check(z.url());
/** An integer setting, given as text. */
const integer = (min: number, max?: number) => z.coerce.number().check(z.int(), z.minimum(min), ...(max === undefined ? [] : [z.maximum(max)]));

/** zod/mini, not zod: every function parses this at start-up, and the full zod is ~150 KB more of each bundle. */
const schema = z.object({
  STAGE: z._default(text(), 'local'),
  AWS_REGION: z._default(text(), 'us-east-1'),
  USAGE_TABLE: text(),
  DEDUPE_TABLE: text(),
  CUSTOMERS_TABLE: text(),
  API_KEYS_TABLE: text(),
  /** Counters of the keys' limits (resources/dynamodb.yml). */
  RATE_LIMITS_TABLE: text(),
  /** The limits of a key that sets none of its own (docs/scaling.md, "Limits"). */
  KEY_REQUESTS_PER_SECOND: z._default(integer(KEY_LIMIT_BOUNDS.requestsPerSecond.min, KEY_LIMIT_BOUNDS.requestsPerSecond.max), 500),
  KEY_EVENTS_PER_MINUTE: z._default(integer(KEY_LIMIT_BOUNDS.eventsPerMinute.min, KEY_LIMIT_BOUNDS.eventsPerMinute.max), 3_000_000),
  USAGE_QUEUE_URL: url(),
  INVOICES_TABLE: text(),
  ALERTS_TABLE: text(),
  ALERTS_TOPIC_ARN: text(),
  INVOICE_QUEUE_URL: url(),
  /** Minutes after a period's end before it may be invoiced (late events of its last minutes arrive first). */
  INVOICE_GRACE_MINUTES: z._default(integer(0, 7 * 24 * 60), 60),
  /** The invoice queue's maxReceiveCount: the attempt that records a job as failed. */
  INVOICE_MAX_RECEIVES: z._default(integer(1), 3),
  /**
   * Customers per step of an invoice run's fan-out (one page of the customers scan or of a period's
   * usage). At most 2,000: the page's ids are pinned on the run item (2,000 x 128 characters stays
   * well under DynamoDB's 400 KB).
   */
  INVOICE_FAN_OUT_PAGE_SIZE: z._default(integer(1, 2000), 1000),
  /** Late events are accepted this many days; corrections look back as far (settingsProblems). */
  DEDUPE_WINDOW_DAYS: z._default(integer(35), 35),
  /**
   * Until this instant the aggregator also reads claims in their form from before de-duplication
   * was per customer (a stage upgraded from it sets its upgrade time plus DEDUPE_WINDOW_DAYS;
   * docs/exactly-once.md, "Identities"). Unset: none are read.
   */
  LEGACY_CLAIMS_UNTIL: z.optional(z.iso.datetime({ offset: true })),
  /** Shards per additive counter, for customers above ~100,000 events/s (docs/scaling.md). */
  COUNTER_SHARDS: z._default(integer(1, 9), 1),
  LOCAL_ADMIN_KEY: z._default(text(8), 'local-admin-key'),
  CATALOG_FILE: z.optional(z.string()),
  DYNAMODB_ENDPOINT: z.optional(url()),
  SQS_ENDPOINT: z.optional(url()),
  SNS_ENDPOINT: z.optional(url()),
  S3_ENDPOINT: z.optional(url()),
  /** The event archive (resources/storage.yml). */
  ARCHIVE_BUCKET: text(3),
  /** Signs list cursors (HMAC-SHA256); at least 32 characters. Locally a fixed development secret. Portal links use a key derived from it. */
  CURSOR_SECRET: z.optional(text(32)),
  /**
   * Where customers open the usage page (`https://usage.example.com`): the base of portal links.
   * Unset: the API's own address from the request (API Gateway's domain name).
   */
  PUBLIC_URL: z.pipe(
    z.transform((v: unknown) => (v === '' ? undefined : v)),
    z.optional(
      z.pipe(
        z.string().check(z.url(), z.regex(/^https?:\/\/[^/?#]+(\/[^?#]*)?$/, 'must be an http(s) URL without query or fragment')),
        z.transform((u: string) => u.replace(/\/+$/, '')),
      ),
    ),
  ),
});
export type Config = z.infer<typeof schema> & {
  /** Events older than this are rejected at ingest (400 event_too_old). */
  maxEventAgeMs: number;
  /** Claim markers outlive the window by 5 days, so a duplicate inside the window always finds one. */
  markerTtlSeconds: number;
  isLocal: boolean;
  /** CURSOR_SECRET, or on the local emulators a fixed development secret; undefined when not configured. */
  cursorSecret: string | undefined;
};

/**
 * Settings that are each valid but cannot work together, each problem naming both settings: a
 * grace at least as long as the late-event window would invoice periods that can no longer change
 * while it looks as if late events were expected, and a window longer than the corrections can
 * reach (a year of periods, moved in one transaction with the invoice) would count late events
 * that no invoice ever bills.
 */
export function settingsProblems(c: { INVOICE_GRACE_MINUTES: number; DEDUPE_WINDOW_DAYS: number }): string[] {
  const problems: string[] = [];
  const graceMs = c.INVOICE_GRACE_MINUTES * 60_000;
  const windowMs = c.DEDUPE_WINDOW_DAYS * 86_400_000;
  if (graceMs >= windowMs) {
    problems.push(
      `INVOICE_GRACE_MINUTES (${c.INVOICE_GRACE_MINUTES}) must be shorter than DEDUPE_WINDOW_DAYS (${c.DEDUPE_WINDOW_DAYS} days): a period is invoiced after its grace, and late events for it are accepted for the window`,
    );
  }
  try {
    correctionLookback(windowMs, graceMs);
  } catch {
    problems.push(
      `DEDUPE_WINDOW_DAYS (${c.DEDUPE_WINDOW_DAYS}) with INVOICE_GRACE_MINUTES (${c.INVOICE_GRACE_MINUTES}) reaches further back than invoices can correct (${MAX_CORRECTION_LOOKBACK} periods): late events would be counted and never billed`,
    );
  }
  return problems;
}

/** Only ever used against the local emulators (see isLocal). */
const LOCAL_CURSOR_SECRET = 'local-development-cursor-secret-not-for-aws';

let cached: Config | undefined;

export function config(): Config {
  if (cached) return cached;
  const parsed = schema.safeParse(process.env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const c = parsed.data;
  const contradictions = settingsProblems(c);
  if (contradictions.length > 0) throw new Error(`invalid configuration: ${contradictions.join('; ')}`);
  // The local admin key and cursor secret must never work on AWS, even on a stage someone named "local".
  const isLocal = c.STAGE === 'local' && c.DYNAMODB_ENDPOINT !== undefined;
  if (!isLocal && c.CURSOR_SECRET === undefined) {
    throw new Error('invalid configuration: CURSOR_SECRET is required outside the local emulators (the stack sets it from its generated SigningSecret)');
  }
  cached = {
    ...c,
    maxEventAgeMs: c.DEDUPE_WINDOW_DAYS * 86_400_000,
    markerTtlSeconds: (c.DEDUPE_WINDOW_DAYS + 5) * 86_400,
    isLocal,
    cursorSecret: c.CURSOR_SECRET ?? (isLocal ? LOCAL_CURSOR_SECRET : undefined),
  };
  return cached;
}
