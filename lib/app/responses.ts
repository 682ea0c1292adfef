import * as z from 'zod';
import type { AlertKind } from '../domain/alerts';
import { KEY_ID_PATTERN, SCOPES } from '../domain/apikey';
import { AGGREGATIONS } from '../domain/catalog';
import { CURRENCIES } from '../domain/money';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../domain/events';
import type { InvoiceLineKind } from '../domain/invoice-lines';
import type { InvoiceKind } from '../domain/invoice-record';
import { PERIOD_PATTERN } from '../domain/period';
import type { InvoiceStatus } from '../domain/invoice-record';

/**
 * What the HTTP API answers, as zod schemas: the response bodies of the OpenAPI document
 * (docs/openapi.json, built by lib/platform/openapi). The use cases build their answers as plain
 * objects; these schemas say what those objects are, and the contract test (every response the
 * integration tests receive is validated against the document) proves that they do. Objects are
 * closed (no property beyond those listed), so a field added to an answer fails the contract test
 * until it is written here.
 *
 * A schema with an `id` becomes a named component (`#/components/schemas/<id>`).
 */

/** The members of a TypeScript union as a list: leaving one out is a type error, so the document cannot miss one. */
function every<T extends string>() {
  return <const L extends readonly [T, ...T[]]>(list: L & ([T] extends [L[number]] ? unknown : { missing: Exclude<T, L[number]> })) => list;
}

// ---------------------------------------------------------------------------------------------
// Values

const quantity = z
  .string()
  .regex(/^-?\d+(\.\d+)?$/)
  .meta({
    id: 'Quantity',
    description:
      'An exact decimal as a string, never a JSON number and never in exponent notation ("1234.5"). Meter values have at most 12 decimals and are below 10^15 in magnitude; only a LATEST meter can be negative.',
  });

const decimal = z
  .string()
  .regex(/^-?\d+(\.\d+)?$/)
  .meta({
    id: 'Decimal',
    description: 'An exact, unrounded decimal as a string ("0.001", "8.00"): unit prices and exact amounts. Negative for corrections and credits.',
  });

const money = z
  .string()
  .regex(/^-?\d+(\.\d{2})?$/)
  .meta({
    id: 'Money',
    description:
      'An amount rounded half-up to the currency\'s minor unit, as a string: 2 decimals for usd, eur and gbp ("76.73"), none for jpy ("120"). Negative only for corrections and carried credits.',
  });

const percent = z
  .string()
  .regex(/^\d+\.\d{2}$/)
  .meta({ id: 'Percent', description: 'value / limit × 100, truncated (never rounded up) to 2 decimals, as a string ("80.00").' });

export const periodKey = z
  .string()
  .regex(PERIOD_PATTERN)
  .meta({ id: 'Period', description: 'A billing period: a UTC calendar month, YYYY-MM, half-open [start, end).' });

const timestamp = z.string().meta({ id: 'Timestamp', format: 'date-time', description: 'An instant in UTC, RFC 3339 ("2026-11-23T18:00:00.000Z").' });

export const customerId = z
  .string()
  .regex(SUBJECT_PATTERN)
  .meta({ id: 'CustomerId', description: `A customer id: ${SUBJECT_RULE} (the CloudEvent subject).` });

const currency = z.enum(CURRENCIES).meta({ id: 'Currency', description: 'The plan currency, ISO 4217 in lower case.' });

const meterSlug = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/);

// ---------------------------------------------------------------------------------------------
// Errors

const errorDetail = z
  .object({
    index: z.number().int().min(0).optional().meta({ description: 'Which event of the request (ingest), 0-based.' }),
    field: z.string().optional().meta({ description: 'The field, query parameter, path parameter or header at fault.' }),
    code: z.string(),
    message: z.string(),
  })
  .meta({ id: 'ErrorDetail' });

export const errorEnvelope = z
  .object({
    error: z.object({
      code: z
        .string()
        .regex(/^[a-z][a-z0-9_]*$/)
        .meta({ description: 'What went wrong, for programs: each response lists the codes it can carry.' }),
      message: z.string().meta({ description: 'What went wrong, for people. A 5xx never carries internal details.' }),
      details: z.array(errorDetail).meta({ description: 'One entry per problem (every invalid field of every event, for instance); often empty.' }),
      requestId: z.string().meta({ description: 'The same id as the x-request-id header; quote it when reporting a problem.' }),
    }),
  })
  .meta({ id: 'Error', description: 'The one error envelope of every route, the HTTP API’s own 404/405/413 included.' });

// ---------------------------------------------------------------------------------------------
// Events

export const accepted = z
  .object({ accepted: z.number().int().min(1).max(1000).meta({ description: 'How many events were accepted; each is counted exactly once.' }) })
  .meta({ id: 'Accepted' });

const archivedEvent = z
  .object({
    source: z.string(),
    id: z.string(),
    type: z.string(),
    time: z.string().meta({ format: 'date-time', description: 'The event time in UTC with 9 fractional digits.' }),
    readings: z.record(z.string(), z.string()).meta({
      description: 'meter slug -> the reading it counted: a decimal string (COUNT: "1"), or the distinct value for UNIQUE_COUNT meters.',
    }),
    voided: z.boolean(),
    voidReason: z.string().optional(),
    voidedAt: timestamp.optional(),
  })
  .meta({ id: 'ArchivedEvent' });

export const eventList = z
  .object({
    customerId,
    period: periodKey,
    events: z.array(archivedEvent).meta({ description: 'In a stable order (archive object, then source and id); not newest first.' }),
    nextCursor: z.string().nullable().meta({ description: 'Opaque and signed for this customer and period; null on the last page.' }),
  })
  .meta({ id: 'EventList' });

export const voided = z
  .object({
    customerId,
    period: periodKey,
    source: z.string(),
    id: z.string(),
    voided: z.literal(true),
    alreadyVoided: z.boolean().meta({ description: 'True when the event had been voided before: nothing changed, the first reason is kept.' }),
    reason: z.string(),
    voidedAt: timestamp,
  })
  .meta({ id: 'VoidedEvent' });

// ---------------------------------------------------------------------------------------------
// Usage

const tierDetail = z
  .object({
    index: z.number().int().min(0).meta({ description: 'Position of the tier in the plan (0 for package and flat charges).' }),
    from: quantity,
    upTo: quantity.nullable().meta({ description: 'Null when open-ended.' }),
    quantity: quantity.meta({ description: 'Units priced in this tier (package: packages; flat: "1").' }),
    unitPrice: decimal,
    flatFee: decimal.optional().meta({ description: 'Present only when charged.' }),
    amount: decimal.meta({ description: 'quantity × unitPrice + flatFee, exact (rounding happens once per invoice line).' }),
  })
  .meta({ id: 'TierDetail' });

const meterUsage = z
  .object({
    meter: meterSlug,
    displayName: z.string(),
    unit: z.string(),
    aggregation: z.enum(AGGREGATIONS),
    value: quantity,
    included: quantity,
    percentUsed: percent.nullable().meta({ description: 'Of the included units; null when nothing is included.' }),
    amount: money.meta({ description: 'What the meter adds to the invoice: the sum of its rounded lines.' }),
    tiers: z.array(tierDetail),
    projectedValue: quantity.meta({ description: 'The value projected to the period end (SUM and COUNT scale with time; the others stay as they are).' }),
  })
  .meta({ id: 'MeterUsage' });

// ---------------------------------------------------------------------------------------------
// Invoices

const lineKinds = every<InvoiceLineKind>()(['usage', 'base_fee', 'flat', 'correction', 'credit']);
const invoiceKinds = every<InvoiceKind>()(['period', 'correction']);
const invoiceStatuses = every<InvoiceStatus>()([
  'pending',
  'draft_created',
  'items_added',
  'finalized',
  'no_charge',
  'not_synced',
  'credit_carried',
  'blocked',
]);

const invoiceLine = z
  .object({
    kind: z.enum(lineKinds),
    meter: meterSlug.nullable(),
    period: periodKey.meta({ description: 'The period the money belongs to: the corrected one for a correction, the origin of a credit.' }),
    description: z.string(),
    quantity,
    unitAmount: decimal,
    amount: money.meta({ description: 'quantity × unitAmount rounded once, half-up, to the minor unit.' }),
    lineKey: z.string().meta({ description: 'Stable id of the line within its invoice ("api_calls:tier:1", "base_fee").' }),
  })
  .meta({ id: 'InvoiceLine' });

/** The correction of an invoiced period pending since its invoice: what the next invoice will carry. */
const pendingCorrection = z
  .object({
    currency,
    lines: z.array(invoiceLine),
    total: money,
    carriedBy: periodKey.nullable().meta({ description: 'The period whose invoice will carry it; null when none will (the correction window has passed).' }),
  })
  .nullable()
  .meta({ id: 'PendingCorrection', description: 'Null when nothing changed since the period was invoiced, or it has no invoice.' });

export const usage = z
  .object({
    customerId,
    period: periodKey,
    periodStart: timestamp,
    periodEnd: timestamp.meta({ description: 'Exclusive.' }),
    planId: z.string(),
    planVersion: z.number().int().min(1).meta({ description: 'The version of the plan that prices the period (a published version never changes).' }),
    currency,
    asOf: timestamp,
    meters: z.array(meterUsage),
    baseFee: money,
    subtotal: money.meta({ description: 'The period as it would be invoiced now: the sum of its rounded lines, base fee included.' }),
    budget: z.object({ amount: money, currency, percentUsed: percent.nullable(), projectedPercent: percent.nullable() }).nullable().meta({
      description:
        'Null when the customer has no budget. A budget in another currency than the period’s does not apply to it (never converted): its percentages are null.',
    }),
    projection: z.object({ subtotal: money, method: z.string() }),
    duplicatesDropped: z.number().int().min(0),
    closed: z.boolean().meta({ description: 'The period has ended: its numbers are final but for late events and voids.' }),
    invoice: z
      .object({
        key: z.string(),
        status: z.enum(invoiceStatuses),
        total: money.meta({ description: 'The invoice’s total (its own lines, and corrections of earlier periods and credits it carried).' }),
        billed: money.meta({ description: 'Everything billed for this period so far: its own lines and the corrections later invoices carried.' }),
        stripeInvoiceId: z.string().nullable(),
      })
      .nullable()
      .meta({ description: 'The period’s own invoice, once it exists; `subtotal` is then `billed` plus `pendingCorrection.total`.' }),
    pendingCorrection,
  })
  .meta({ id: 'Usage' });

export const upcomingInvoice = z
  .object({
    customerId,
    period: periodKey,
    planId: z.string(),
    planVersion: z.number().int().min(1).meta({ description: 'The version of the plan that prices the period (a published version never changes).' }),
    currency,
    status: z
      .enum(['upcoming', ...invoiceStatuses])
      .meta({ description: '`upcoming` until the period is invoiced; then the status of its stored invoice, which this answers as it is.' }),
    invoiced: z.boolean().meta({ description: 'The period has its own invoice: the lines and total are that invoice’s.' }),
    lines: z.array(invoiceLine),
    total: money,
    additionalInvoices: z
      .array(z.object({ key: z.string(), kind: z.enum(invoiceKinds), currency, lines: z.array(invoiceLine), total: money }))
      .meta({ description: 'Corrections of earlier periods billed in another currency, each its own invoice.' }),
    pendingCorrection,
    asOf: timestamp,
  })
  .meta({ id: 'UpcomingInvoice' });

const quantities = z.record(z.string(), quantity);

const invoice = z
  .object({
    customerId,
    key: z.string().meta({ description: '<period> for the period’s own invoice, <period>#<currency> for corrections billed in another currency.' }),
    period: periodKey,
    kind: z.enum(invoiceKinds),
    status: z.enum(invoiceStatuses),
    planId: z.string(),
    planVersion: z.number().int().min(1).meta({
      description: 'The version of the plan that priced the period (own invoices) or the latest period corrected (a published version never changes).',
    }),
    currency,
    lines: z.array(invoiceLine),
    total: money,
    creditAppliedTo: z.string().nullable().meta({ description: 'A carried credit: the key of the invoice that used it.' }),
    stripeInvoiceId: z.string().nullable(),
    stripeStatus: z.string().nullable(),
    hostedInvoiceUrl: z.string().nullable(),
    quantities: quantities.meta({ description: 'The period’s usage this invoice billed, per meter.' }),
    corrections: z
      .array(z.object({ period: periodKey, quantities }))
      .meta({ description: 'Earlier periods this invoice corrected, and the totals it billed them up to.' }),
    lastError: z.string().nullable(),
    createdAt: timestamp,
    finalizedAt: timestamp.nullable(),
  })
  .meta({ id: 'Invoice' });

export const invoiceList = z.object({ customerId, invoices: z.array(invoice).meta({ description: 'Newest first.' }) }).meta({ id: 'InvoiceList' });

const credit = z
  .object({
    key: z.string().meta({ description: 'The key of the negative invoice the credit was carried from.' }),
    period: periodKey,
    currency,
    amount: money.meta({ description: 'What the customer is owed (positive).' }),
    status: z.enum(['open', 'applied', 'refunded', 'written_off']),
    appliedTo: z.string().nullable().meta({ description: 'The invoice that used it (applied).' }),
    usableOnNextInvoice: z.boolean().meta({ description: 'Open and in the currency of the customer’s next invoice (it goes on it).' }),
    settledAt: timestamp.nullable(),
    settledBy: z.string().nullable().meta({ description: 'The key id of whoever settled it.' }),
    reason: z.string().nullable(),
    reference: z.string().nullable().meta({ description: 'A refund’s Stripe refund or credit note id.' }),
  })
  .meta({ id: 'Credit' });

export const creditList = z
  .object({
    customerId,
    credits: z.array(credit),
    owed: z.array(z.object({ currency, amount: money })).meta({ description: 'Open credits per currency: owed until applied or settled.' }),
  })
  .meta({ id: 'CreditList' });
export const settledCredit = credit;

export const invoiceRun = z
  .object({
    period: periodKey,
    status: z.enum(['starting', 'running', 'completed']).meta({ description: '`starting` until every customer is enqueued.' }),
    total: z.number().int().min(0),
    done: z.number().int().min(0).meta({ description: 'Finalized in Stripe or credit_carried.' }),
    skipped: z.number().int().min(0).meta({ description: 'Nothing to charge.' }),
    failed: z.number().int().min(0),
    waiting: z
      .number()
      .int()
      .min(0)
      .meta({ description: 'Invoiced but recorded without a Stripe customer (not_synced): sent by the next job or run once one is linked.' }),
    pending: z.number().int().min(0),
    corrections: z.number().int().min(0).meta({ description: 'Correction lines of earlier periods the run’s invoices carried.' }),
    startedAt: timestamp,
  })
  .meta({ id: 'InvoiceRun' });

export const invoiceRunStarted = invoiceRun.extend({ starting: z.literal(true) }).meta({ id: 'InvoiceRunStarted' });

// ---------------------------------------------------------------------------------------------
// Alerts

const alertKinds = every<AlertKind>()(['included', 'budget', 'forecast']);

export const alertList = z
  .object({
    customerId,
    period: periodKey,
    alerts: z.array(
      z
        .object({
          kind: z.enum(alertKinds),
          meter: meterSlug.nullable().meta({ description: 'The meter of an `included` alert; null for budget and forecast.' }),
          threshold: z.number().int().min(1),
          value: decimal.meta({ description: 'A quantity (included) or an amount (budget, forecast).' }),
          limit: decimal.meta({ description: 'The included units or the budget amount.' }),
          percent,
          subject: z.string(),
          status: z.enum(['pending', 'sent', 'superseded']).meta({
            description: '`superseded`: crossed in the same update as a higher threshold, which was sent instead; never sent.',
          }),
          supersededBy: z.string().nullable().meta({ description: 'The key of the alert sent instead (superseded alerts).' }),
          claimedAt: timestamp,
          sentAt: timestamp.nullable(),
        })
        .meta({ id: 'Alert' }),
    ),
  })
  .meta({ id: 'AlertList' });

// ---------------------------------------------------------------------------------------------
// Customers and keys

export const customer = z
  .object({
    id: customerId,
    name: z.string(),
    planId: z.string().meta({ description: 'The plan asked for last; a change applies from the next period (see plans).' }),
    plans: z
      .array(z.object({ from: periodKey, planId: z.string() }))
      .optional()
      .meta({ description: 'Which plan prices which periods, from `from` on.' }),
    stripeCustomerId: z.string().optional(),
    alertEmail: z.string().optional(),
    alertSubscriptionArn: z.string().optional().meta({ description: 'The SNS subscription that delivers the alerts to alertEmail.' }),
    budget: z
      .object({ amount: decimal, currency })
      .optional()
      .meta({ description: 'A monthly budget in its currency; it applies to periods billed in that currency.' }),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Customer' });

export const customerList = z
  .object({
    customers: z.array(customer),
    nextCursor: z.string().nullable().meta({ description: 'Opaque and signed; null on the last page.' }),
  })
  .meta({ id: 'CustomerList' });

const keyLimits = z
  .object({
    requestsPerSecond: z.int().meta({ description: 'Requests in one calendar second (UTC); past it, 429 `rate_limited`.' }),
    eventsPerMinute: z
      .int()
      .meta({ description: 'Events ingested in one calendar minute (UTC); a request that would pass it is 429 `rate_limited`, nothing accepted.' }),
  })
  .meta({ id: 'KeyLimits' });

export const apiKey = z
  .object({
    keyId: z.string().regex(KEY_ID_PATTERN),
    name: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    customerId: customerId.nullable().meta({ description: 'The one customer a bound key may touch; null for unbound keys.' }),
    createdAt: timestamp,
    revokedAt: timestamp.nullable(),
    limits: keyLimits.meta({ description: "The limits that apply: the key's own, else the deployment's defaults." }),
    customLimits: keyLimits.partial().meta({ description: "The key's own limits (the others are the deployment's defaults)." }),
  })
  .meta({ id: 'ApiKey' });

export const createdApiKey = apiKey
  .extend({
    key: z
      .string()
      .regex(/^mk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/)
      .meta({ description: 'The plain key, in this response only: only its hash is stored.' }),
  })
  .meta({ id: 'CreatedApiKey' });

export const apiKeyList = z.object({ apiKeys: z.array(apiKey) }).meta({ id: 'ApiKeyList' });

// ---------------------------------------------------------------------------------------------
// Operations

const entitlementFields = {
  meter: z.string(),
  usage: quantity,
  included: quantity,
  limit: quantity.nullable().meta({ description: 'The hard cap per period, or null when the meter has none.' }),
  remaining: quantity.nullable().meta({ description: 'limit - usage, never below 0; null without a limit.' }),
  hasAccess: z.boolean().meta({ description: 'False once usage reaches the limit.' }),
};
const entitlement = z.object(entitlementFields).strict().meta({ id: 'Entitlement' });
export const entitlementList = z
  .object({ customerId, period: periodKey, planId: z.string(), entitlements: z.array(entitlement) })
  .strict()
  .meta({ id: 'EntitlementList' });
export const meterEntitlement = z
  .object({ customerId, period: periodKey, planId: z.string(), ...entitlementFields })
  .strict()
  .meta({ id: 'MeterEntitlement' });

export const portalLink = z
  .object({ url: z.string().meta({ description: 'The usage page, `<base>/portal?token=...`.' }), expiresAt: timestamp })
  .strict()
  .meta({ id: 'PortalLink' });

export const health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const openApiDocument = z
  .looseObject({ openapi: z.string().regex(/^3\.1\.\d+$/), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.looseObject({}) })
  .meta({ id: 'OpenApiDocument', description: 'This document.' });
