import { DynamoAlerts } from '../adapters/dynamo/alerts';
import { DynamoApiKeys, DynamoCustomers, DynamoIdempotency } from '../adapters/dynamo/entities';
import { SnsAlertPublisher } from '../adapters/sns/alerts-topic';
import { SnsAlertSubscriptions } from '../adapters/sns/subscriptions';
import { DynamoInvoiceRuns, DynamoInvoices } from '../adapters/dynamo/invoices';
import { DynamoUsageLedger } from '../adapters/dynamo/ledger';
import { DynamoUsageIndex } from '../adapters/dynamo/usage-index';
import { stripeBillingFromEnv } from '../adapters/stripe';
import { StripeInvoiceSync } from '../adapters/stripe/invoice-sync';
import { DynamoAuditLedger } from '../adapters/dynamo/audit';
import { DynamoUsageEpoch } from '../adapters/dynamo/epoch';
import { DynamoEntitlementReads } from '../adapters/dynamo/entitlements';
import { S3EventArchive } from '../adapters/s3/archive';
import type { InvoiceSync } from '../app/invoicing/stripe-port';
import { SqsJsonQueue } from '../adapters/sqs/json-queue';
import { CursorCodec } from '../domain/cursor';
import { PORTAL_LINK_TTL, PortalTokens } from '../domain/portal-token';
import { portalLink } from '../app/portal';
import { systemClock, type Clock, type InvoiceJob, type UsageBatch } from '../app/ports';
import { loadCatalog } from './catalog';
import { dynamoClient, s3Client, snsClient, sqsClient } from './clients';
import { config } from './config';
import { MetricUnit, metrics } from './observability';

/** The composition root: adapters wired to config, built lazily once per function instance. */
function build(clock: Clock = systemClock) {
  const c = config();
  const portalTokens = new PortalTokens(c.cursorSecret);
  const db = dynamoClient();
  return {
    config: c,
    clock,
    catalog: loadCatalog(),
    ledger: new DynamoUsageLedger(
      db,
      { usage: c.USAGE_TABLE, dedupe: c.DEDUPE_TABLE },
      { clock, markerTtlSeconds: c.markerTtlSeconds, shards: c.COUNTER_SHARDS },
    ),
    customers: new DynamoCustomers(db, c.CUSTOMERS_TABLE),
    customerCursors: new CursorCodec(c.cursorSecret, 'customers'),
    apiKeys: new DynamoApiKeys(db, c.API_KEYS_TABLE),
    idempotency: new DynamoIdempotency(db, c.DEDUPE_TABLE, () => clock.now()),
    usageQueue: new SqsJsonQueue<UsageBatch>(sqsClient(), c.USAGE_QUEUE_URL),
    invoices: new DynamoInvoices(db, c.INVOICES_TABLE),
    runs: new DynamoInvoiceRuns(db, c.INVOICES_TABLE),
    invoiceJobs: new SqsJsonQueue<InvoiceJob>(sqsClient(), c.INVOICE_QUEUE_URL),
    usageIndex: new DynamoUsageIndex(db, c.USAGE_TABLE),
    fanOutPageSize: c.INVOICE_FAN_OUT_PAGE_SIZE,
    graceMs: c.INVOICE_GRACE_MINUTES * 60_000,
    correctionWindowMs: c.maxEventAgeMs,
    epoch: new DynamoUsageEpoch(db, c.USAGE_TABLE),
    archive: new S3EventArchive(s3Client(), c.ARCHIVE_BUCKET),
    audit: new DynamoAuditLedger(db, { usage: c.USAGE_TABLE, dedupe: c.DEDUPE_TABLE }),
    cursorSecret: c.cursorSecret,
    entitlementReads: new DynamoEntitlementReads(db, { customers: c.CUSTOMERS_TABLE, usage: c.USAGE_TABLE }, c.COUNTER_SHARDS),
    portalTokens,
    /**
     * Alert messages link the customer's usage page (valid 24 hours, the longest a link lives);
     * without PUBLIC_URL (the API's address is only known to an HTTP request) they name the API path.
     */
    usagePageUrl:
      c.PUBLIC_URL === undefined
        ? undefined
        : (customerId: string) => portalLink({ clock, portalTokens }, c.PUBLIC_URL!, customerId, PORTAL_LINK_TTL.maxSeconds).url,
    alerts: new DynamoAlerts(db, c.ALERTS_TABLE),
    publisher: new SnsAlertPublisher(snsClient(), c.ALERTS_TOPIC_ARN),
    subscriptions: new SnsAlertSubscriptions(snsClient(), c.ALERTS_TOPIC_ARN),
  };
}
export type Container = ReturnType<typeof build>;

let instance: Container | undefined;
export function container(): Container {
  return (instance ??= build());
}

let sync: InvoiceSync | undefined;
/** Stripe, only where it is used (the invoice worker): other functions need no Stripe key. */
export function invoiceSync(): InvoiceSync {
  // Stripe calls and retries as metrics (published with the worker's other metrics).
  return (sync ??= new StripeInvoiceSync(
    stripeBillingFromEnv(process.env, {
      onCall: (_op, _attempt, outcome) => {
        metrics.addMetric('StripeCalls', MetricUnit.Count, 1);
        if (outcome === 'retry') metrics.addMetric('StripeRetries', MetricUnit.Count, 1);
      },
    }),
  ));
}
