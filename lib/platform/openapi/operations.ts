import * as z from 'zod';
import { apiKeyInput, apiKeyPatch } from '../../app/apikeys';
import { listEventsQuery, voidInput } from '../../app/audit';
import { creditSettleInput } from '../../app/credits';
import { customerInput, customerPatch } from '../../app/customers';
import { invoiceRunInput } from '../../app/invoicing/runs';
import { portalLinkInput } from '../../app/portal';
import * as res from '../../app/responses';
import { KEY_ID_PATTERN } from '../../domain/apikey';
import { SUBJECT_PATTERN, SUBJECT_RULE } from '../../domain/events';
import { MAX_EVENTS_PER_REQUEST } from '../cloudevents-http';
import type { RouteKey } from '../routes';

/**
 * What each route of the route table (lib/platform/routes.ts) takes and answers, keyed by the same
 * `METHOD path`: a route without its entry here, or an entry without its route, does not compile.
 * The OpenAPI document (docs/openapi.json, `npm run openapi`) is generated from both, and
 * `httpHandler` types each handler's answers by its route's `responses` here.
 *
 * Request schemas are the ones the handlers parse with; response schemas are in
 * lib/app/responses.ts. `errors` lists what the route itself can answer beyond what the document
 * adds from the entry: 401 and 403 for routes with a scope, 400 `invalid_path_parameter` for path
 * parameters, the 400s of `req.json` for a `body`, and 503 `service_busy` for every route that
 * calls AWS (see document.ts).
 */
export type ErrorStatus = 400 | 404 | 409 | 413 | 415 | 429 | 503;

export interface RouteDoc {
  operationId: string;
  tag: string;
  summary: string;
  /** What the route does, from the README's API table. */
  description: string;
  path?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  /** Descriptions of path, query and header parameters whose schemas have none. */
  parameters?: Record<string, string>;
  /** A JSON body parsed by `req.json(schema)`, or (ingest) the body per media type. */
  body?: z.ZodType | { description: string; content: Record<string, z.ZodType> };
  responses: Record<number, { description: string; schema: z.ZodType; headers?: ('idempotent-replayed' | 'retry-after')[] }>;
  /** The error codes of the route itself, by status. */
  errors: Partial<Record<ErrorStatus, string[]>>;
  /**
   * A route that answers a document instead of JSON (the usage page, its CSV): the media type of
   * its successes, and its error pages (HTML, not the JSON envelope) by status.
   */
  page?: { mediaType: string; errorPages: Partial<Record<400 | 401 | 404 | 409 | 503, string>> };
}

const customerPath = z.object({ id: res.customerId });
const periodQuery = z.object({ period: res.periodKey.optional() });
const PERIOD_DEFAULT = { period: 'YYYY-MM; default: the current period.' };

/**
 * A CloudEvent as far as JSON Schema can say it: the request body of ingest in the OpenAPI document
 * (kept here, so ingest's bundle loads no schema of the full zod). `validateEvent`
 * (lib/domain/events.ts) is the rule and says more than a schema can: the catalog decides whether a
 * type is read and which data it needs, the clock bounds the time, lone surrogates are refused, and
 * lengths count UTF-16 code units. Everything `validateEvent` accepts, this schema accepts
 * (test/unit/openapi.test.ts).
 */
const cloudEventSchema = z
  .looseObject({
    specversion: z.literal('1.0'),
    id: z.string().min(1).max(256).meta({ description: 'With source, the de-duplication identity: 1..256 characters of well-formed Unicode.' }),
    source: z.string().min(1).max(256).meta({ description: '1..256 characters of well-formed Unicode.' }),
    type: z.string().min(1).meta({ description: 'Must be read by a catalog meter (else `unknown_type`).' }),
    subject: z
      .string()
      .regex(SUBJECT_PATTERN)
      .meta({ description: `The customer id: ${SUBJECT_RULE}.` }),
    time: z.string().meta({
      format: 'date-time',
      description: 'RFC 3339; at most 5 minutes ahead and 35 days old. A leap second (23:59:60 UTC) counts as the last instant of its minute.',
    }),
    datacontenttype: z.literal('application/json').optional(),
    data: z.record(z.string(), z.unknown()).optional().meta({
      description:
        'The readings, at the meter\'s valueProperty (e.g. `{"value": 12}`): a number or a numeric string, finite, |v| < 10^15, at most 12 decimals, not negative for SUM and MAX meters. A number a double cannot carry exactly is refused (`inexact_number`): send it as a string. UNIQUE_COUNT values are strings (1..256) or numbers.',
    }),
  })
  .meta({ id: 'CloudEvent', description: 'A CloudEvents 1.0 event in structured mode. Other attributes are accepted and ignored.' });

const eventBatch = z.array(cloudEventSchema).min(1).max(MAX_EVENTS_PER_REQUEST);
const ingestHeaders = z.object({
  'Idempotency-Key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/)
    .optional()
    .meta({
      description:
        'Optional, 1..255 visible ASCII characters, scoped to the API key for 24 hours: the same key with the same request replays the first answer (header `idempotent-replayed: true`); with another request it is a 409.',
    }),
  ...Object.fromEntries(
    ['specversion', 'id', 'source', 'type', 'subject', 'time'].map((a) => [
      `ce-${a}`,
      z
        .string()
        .optional()
        .meta({ description: `Binary content mode: the event's \`${a}\`, percent-encoded UTF-8 (a literal \`%\` is \`%25\`).` }),
    ]),
  ),
});

const CUSTOMER_ROUTE = 'A key bound to a customer reads only that customer.';

export const API = {
  'POST /api/v1/events': {
    operationId: 'ingestEvents',
    tag: 'Events',
    summary: 'Send usage events (CloudEvents)',
    description:
      'CloudEvents: `application/cloudevents+json` (one), `application/cloudevents-batch+json` (array), `application/json` (either), or binary mode: `Content-Type: application/json` with the attributes in `ce-*` headers and the event’s data as the body. At most 1,000 events and 1 MiB. All or nothing: one invalid event refuses the request, and every problem of every event is listed. Whatever is accepted is counted exactly once. A key bound to a customer sends only that customer’s events.',
    headers: ingestHeaders,
    body: {
      description: 'One event, an array of events, or (binary mode) the data of one event.',
      content: {
        'application/cloudevents+json': cloudEventSchema,
        'application/cloudevents-batch+json': eventBatch,
        'application/json': z.union([cloudEventSchema, eventBatch, z.record(z.string(), z.unknown()).meta({ description: 'Binary mode: the event’s data.' })]),
      },
    },
    responses: { 202: { description: 'Every event accepted; each counts exactly once.', schema: res.accepted, headers: ['idempotent-replayed'] } },
    errors: {
      400: ['malformed_json', 'duplicate_key', 'invalid_encoding', 'invalid_body', 'empty_batch', 'invalid_events', 'invalid_idempotency_key'],
      409: ['idempotency_key_reused'],
      413: ['payload_too_large', 'too_many_events'],
      415: ['unsupported_media_type'],
      503: ['enqueue_incomplete'],
    },
  },
  'GET /api/v1/customers/{id}/usage': {
    operationId: 'getUsage',
    tag: 'Usage',
    summary: 'Usage and its price so far',
    description: `Per meter: value, included, percentUsed, amount and tier detail, projected value; \`subtotal\`, \`baseFee\`, \`budget\` (amount, percentUsed), \`projection.subtotal\`, \`duplicatesDropped\`. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    query: periodQuery,
    parameters: PERIOD_DEFAULT,
    responses: { 200: { description: 'The period as it accrues.', schema: res.usage } },
    errors: { 400: ['invalid_customer_id', 'invalid_period'], 409: ['plan_not_found'] },
  },
  'GET /api/v1/customers/{id}/invoices/upcoming': {
    operationId: 'previewInvoice',
    tag: 'Invoices',
    summary: 'The invoice the period would produce now',
    description: `In the shape of a real invoice, status \`upcoming\`; corrections in another currency are their own invoices (\`additionalInvoices\`). ${CUSTOMER_ROUTE}`,
    path: customerPath,
    query: periodQuery,
    parameters: PERIOD_DEFAULT,
    responses: { 200: { description: 'The upcoming invoice.', schema: res.upcomingInvoice } },
    errors: { 400: ['invalid_customer_id', 'invalid_period'], 409: ['plan_not_found'] },
  },
  'GET /api/v1/customers/{id}/invoices': {
    operationId: 'listInvoices',
    tag: 'Invoices',
    summary: 'Invoice records',
    description: `Newest first: \`key\`, \`period\`, \`kind\` (\`period\` or \`correction\`), \`status\`, \`currency\`, lines (each with \`meter\` and the \`period\` it bills), total, Stripe ids, \`creditAppliedTo\`, \`lastError\`. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    responses: { 200: { description: 'The customer’s invoices.', schema: res.invoiceList } },
    errors: { 400: ['invalid_customer_id'] },
  },
  'POST /api/v1/invoice-runs': {
    operationId: 'startInvoiceRun',
    tag: 'Invoice runs',
    summary: 'Start or resume the invoice run of a closed period',
    description:
      'Answers at once with the run’s progress; the run fans out in the background. 409 `period_not_closed` before the period’s end plus the grace period; for a run never started, 409 `period_too_old` (ended more than 35 days ago) or `period_before_first_usage`, unless `force`. Resuming a run that exists is always allowed.',
    body: invoiceRunInput,
    responses: { 202: { description: 'The run, starting.', schema: res.invoiceRunStarted } },
    errors: { 409: ['period_not_closed', 'period_too_old', 'period_before_first_usage'] },
  },
  'GET /api/v1/invoice-runs/{period}': {
    operationId: 'getInvoiceRun',
    tag: 'Invoice runs',
    summary: 'Progress of an invoice run',
    description: '`{total, done, skipped, failed, pending, status}`, counted from the run’s customers.',
    path: z.object({ period: res.periodKey }),
    responses: { 200: { description: 'The run.', schema: res.invoiceRun } },
    errors: { 400: ['invalid_period'], 404: ['invoice_run_not_found'] },
  },
  'GET /api/v1/customers/{id}/alerts': {
    operationId: 'listAlerts',
    tag: 'Alerts',
    summary: 'Alerts claimed for a period',
    description: `Kind, meter, threshold, value, limit, percent, subject, status (\`pending\`/\`sent\`), times. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    query: periodQuery,
    parameters: PERIOD_DEFAULT,
    responses: { 200: { description: 'The alerts.', schema: res.alertList } },
    errors: { 400: ['invalid_customer_id', 'invalid_period'] },
  },
  'GET /api/v1/customers/{id}/credits': {
    operationId: 'listCredits',
    tag: 'Invoices',
    summary: 'Carried credits, and what is owed',
    description: `Every credit carried from a negative invoice: open (owed; it goes on the next invoice in its currency, or on a correction invoice in a currency the customer left), applied, refunded or written off. \`owed\` sums the open ones per currency. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    responses: { 200: { description: 'The credits.', schema: res.creditList } },
    errors: { 400: ['invalid_customer_id'] },
  },
  'POST /api/v1/customers/{id}/credits/{key}/settle': {
    operationId: 'settleCredit',
    tag: 'Invoices',
    summary: 'Settle an open credit outside invoices',
    description:
      'Records that an open credit was refunded through Stripe (`reference`: the refund or credit note id) or written off, with who, when and why; it is never applied to an invoice after. 409 `credit_not_open` when it was applied or settled already.',
    path: z.object({ id: res.customerId, key: z.string().min(1).max(64) }),
    parameters: { key: 'The credit’s key as listed (`2026-10`, or `2026-10%23usd`: `#` percent-encoded).' },
    body: creditSettleInput,
    responses: { 200: { description: 'Settled.', schema: res.settledCredit } },
    errors: { 400: ['invalid_customer_id', 'invalid_input'], 404: ['credit_not_found'], 409: ['credit_not_open'] },
  },
  'PUT /api/v1/customers/{id}': {
    operationId: 'putCustomer',
    tag: 'Customers',
    summary: 'Create or replace a customer',
    description:
      'Idempotent. A field left out keeps its value and `null` removes it: without `planId` the plan stays (a new customer gets `default`); a plan change applies from the next period (in the month the customer was created, from creation). Setting, changing or removing `alertEmail` subscribes, moves or unsubscribes its alert e-mails. A budget is a positive amount on the minor unit of its currency (default: the currency of the plan in force now), which is that of the plan in force or of a plan scheduled.',
    path: customerPath,
    body: customerInput,
    responses: {
      201: { description: 'Created.', schema: res.customer },
      200: { description: 'Replaced.', schema: res.customer },
    },
    errors: { 400: ['invalid_customer_id', 'unknown_plan', 'invalid_budget'], 409: ['invoices_in_flight', 'budget_currency_mismatch'] },
  },
  'PATCH /api/v1/customers/{id}': {
    operationId: 'patchCustomer',
    tag: 'Customers',
    summary: 'Change some fields of a customer',
    description:
      'Only the fields given change; `null` removes `stripeCustomerId`, `alertEmail` or `budget`. A customer that does not exist is a 404 (PUT creates). The Stripe customer cannot change while an invoice is on its way to the current one (409 `invoices_in_flight`), and a budget kept across a plan change to another currency is refused (409 `budget_currency_mismatch`): send a budget with the change.',
    path: customerPath,
    body: customerPatch,
    responses: { 200: { description: 'Changed.', schema: res.customer } },
    errors: {
      400: ['invalid_customer_id', 'unknown_plan', 'invalid_budget'],
      404: ['customer_not_found'],
      409: ['invoices_in_flight', 'budget_currency_mismatch'],
    },
  },
  'GET /api/v1/customers/{id}': {
    operationId: 'getCustomer',
    tag: 'Customers',
    summary: 'One customer',
    description: `One customer. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    responses: { 200: { description: 'The customer.', schema: res.customer } },
    errors: { 400: ['invalid_customer_id'], 404: ['customer_not_found'] },
  },
  'GET /api/v1/customers': {
    operationId: 'listCustomers',
    tag: 'Customers',
    summary: 'List customers',
    description: 'Paginated; `nextCursor` is opaque and signed: a cursor this API did not issue is a 400 `invalid_cursor`.',
    query: z.object({ limit: z.int().min(1).max(200).optional(), cursor: z.string().optional() }),
    parameters: { limit: 'Customers per page, 1..200; default 50.', cursor: 'The `nextCursor` of the previous page.' },
    responses: { 200: { description: 'A page of customers.', schema: res.customerList } },
    errors: { 400: ['invalid_limit', 'invalid_cursor'] },
  },
  'POST /api/v1/api-keys': {
    operationId: 'createApiKey',
    tag: 'API keys',
    summary: 'Create an API key',
    description:
      'The plain key is in this response only; only its hash is stored. `admin` implies `read` and `ingest`; a key with `customerId` may only touch that customer.',
    body: apiKeyInput,
    responses: { 201: { description: 'The key, with its secret.', schema: res.createdApiKey } },
    errors: { 400: ['admin_key_bound'] },
  },
  'GET /api/v1/api-keys': {
    operationId: 'listApiKeys',
    tag: 'API keys',
    summary: 'List API keys',
    description: 'Every key, revoked ones included; never a secret.',
    responses: { 200: { description: 'The keys.', schema: res.apiKeyList } },
    errors: {},
  },
  'DELETE /api/v1/api-keys/{keyId}': {
    operationId: 'revokeApiKey',
    tag: 'API keys',
    summary: 'Revoke an API key',
    description: 'The key stops working at once; revoking again changes nothing.',
    path: z.object({ keyId: z.string().regex(KEY_ID_PATTERN) }),
    parameters: { keyId: '12 characters of [a-z0-9], as key lists show it (else 400 `invalid_key_id`).' },
    responses: { 200: { description: 'The revoked key.', schema: res.apiKey } },
    errors: { 400: ['invalid_key_id'], 404: ['api_key_not_found'] },
  },
  'PATCH /api/v1/api-keys/{keyId}': {
    operationId: 'updateApiKey',
    tag: 'API keys',
    summary: "Change an API key's limits",
    description:
      "`limits` given replace the key's own; `null` returns one to the deployment's default; one left out stays. They apply from the key's next request.",
    path: z.object({ keyId: z.string().regex(KEY_ID_PATTERN) }),
    parameters: { keyId: '12 characters of [a-z0-9], as key lists show it (else 400 `invalid_key_id`).' },
    body: apiKeyPatch,
    responses: { 200: { description: 'The key with its limits.', schema: res.apiKey } },
    errors: { 400: ['invalid_key_id'], 404: ['api_key_not_found'] },
  },
  'GET /api/v1/customers/{id}/events': {
    operationId: 'listEvents',
    tag: 'Events',
    summary: 'The archived events behind the counters',
    description: `Stable order, signed cursor, voided events marked (docs/audit.md). ${CUSTOMER_ROUTE}`,
    path: customerPath,
    query: listEventsQuery,
    parameters: {
      ...PERIOD_DEFAULT,
      meter: 'Only events with a reading for this meter (400 `unknown_meter` for a slug not in the catalog).',
      limit: 'Events per page, 1..1000; default 100.',
      cursor: 'The `nextCursor` of the previous page, for this customer and period.',
    },
    responses: { 200: { description: 'A page of events.', schema: res.eventList } },
    errors: { 400: ['invalid_customer_id', 'invalid_period', 'invalid_query', 'unknown_meter', 'invalid_cursor'] },
  },
  'POST /api/v1/events/void': {
    operationId: 'voidEvent',
    tag: 'Events',
    summary: 'Take a counted event back',
    description:
      'The event stops counting, exactly once; a repeat is a 200 no-op that keeps the first reason. 404 `event_not_found` when no counted event has this identity in the de-duplication window; 409 `event_outside_window` when it happened more than 35 days ago; 503 `event_not_settled` while it is still being counted (docs/audit.md).',
    body: voidInput,
    responses: { 200: { description: 'Voided (or voided already).', schema: res.voided } },
    errors: { 404: ['event_not_found'], 409: ['event_outside_window'], 503: ['event_not_settled', 'counters_busy'] },
  },
  'GET /api/v1/customers/{id}/entitlements': {
    operationId: 'listEntitlements',
    tag: 'Entitlements',
    summary: 'May this customer use each meter now',
    description: `For the current period, per meter: usage, included, the plan's hard limit, what remains and whether the customer still has access (false once usage reaches the limit), from one DynamoDB read. ${CUSTOMER_ROUTE}`,
    path: customerPath,
    responses: { 200: { description: 'Every meter of the catalog.', schema: res.entitlementList } },
    errors: { 400: ['invalid_customer_id'], 409: ['plan_not_found'] },
  },
  'GET /api/v1/customers/{id}/entitlements/{meter}': {
    operationId: 'getEntitlement',
    tag: 'Entitlements',
    summary: 'May this customer use one meter now',
    description: `The same for one meter; 404 \`meter_not_found\` for a slug not in the catalog. ${CUSTOMER_ROUTE}`,
    path: z.object({ id: res.customerId, meter: z.string().min(1).max(64) }),
    responses: { 200: { description: 'The meter.', schema: res.meterEntitlement } },
    errors: { 400: ['invalid_customer_id'], 404: ['meter_not_found'], 409: ['plan_not_found'] },
  },
  'POST /api/v1/customers/{id}/portal-links': {
    operationId: 'createPortalLink',
    tag: 'Usage page',
    summary: "A link to the customer's usage page",
    description: `A signed, customer-scoped link to the usage page (\`GET /portal?token=...\`), valid \`ttlSeconds\` (60..86400, default 3600); never an API key in a URL (docs/portal.md). ${CUSTOMER_ROUTE}`,
    path: customerPath,
    body: portalLinkInput,
    responses: { 201: { description: 'The link and when it expires.', schema: res.portalLink } },
    errors: { 400: ['invalid_customer_id'] },
  },
  'GET /portal': {
    operationId: 'portalPage',
    tag: 'Usage page',
    summary: 'The usage page (HTML)',
    description:
      'Server-rendered: per meter the usage with a daily chart, included and percent used, tiers, amount; subtotal, projection, budget; alerts; past invoices; a CSV link. The signed token from a portal link is the credential; errors are HTML pages too (docs/portal.md).',
    query: z.object({ token: z.string().optional(), period: z.string().optional() }),
    parameters: { token: 'The token of a portal link.', ...PERIOD_DEFAULT },
    responses: { 200: { description: 'The page.', schema: z.string() } },
    errors: {},
    page: { mediaType: 'text/html', errorPages: { 400: 'A bad period.', 401: 'A missing, forged or expired token.', 409: 'The plan left the catalog.' } },
  },
  'GET /portal/usage.csv': {
    operationId: 'portalCsv',
    tag: 'Usage page',
    summary: "The usage page's daily series (CSV)",
    description: 'date, meter, unit, aggregation, value per day of the period so far; the same token as the page; errors are HTML pages.',
    query: z.object({ token: z.string().optional(), period: z.string().optional() }),
    parameters: { token: 'The token of a portal link.', ...PERIOD_DEFAULT },
    responses: { 200: { description: 'The CSV file.', schema: z.string() } },
    errors: {},
    page: { mediaType: 'text/csv', errorPages: { 400: 'A bad period.', 401: 'A missing, forged or expired token.' } },
  },
  'GET /health': {
    operationId: 'health',
    tag: 'Operations',
    summary: 'Health',
    description: '200 when every table and queue answers, else 503.',
    responses: { 200: { description: 'Every table and queue answers.', schema: res.health } },
    errors: { 503: ['unavailable'] },
  },
  'GET /api/v1/openapi.json': {
    operationId: 'getOpenApiDocument',
    tag: 'Operations',
    summary: 'This document',
    description: 'The OpenAPI 3.1 document of this API, as committed in docs/openapi.json.',
    responses: { 200: { description: 'The document.', schema: res.openApiDocument } },
    errors: {},
  },
} satisfies Record<RouteKey, RouteDoc>;
