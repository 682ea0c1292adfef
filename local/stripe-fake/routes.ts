/**
 * The Stripe REST endpoints the fake implements, the ones the product calls (README.md):
 * parameter decoding and validation here, business rules in the store.
 */
import { amountTooLarge, invalidRequest, MAX_AMOUNT_MINOR, parameterMissing } from './errors';
import { ParamReader } from './params';
import type { StripeStore } from './store';
import type { CollectionMethod, FormObject } from './types';

interface ApiRequest {
  method: string;
  /** Path without query string, e.g. '/v1/invoices/in_123/finalize'. */
  path: string;
  params: FormObject;
  /** Unix seconds, Stripe's `created` clock. */
  now: number;
}

type Handler = (store: StripeStore, req: ApiRequest, ids: string[]) => unknown;

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  handler: Handler;
}

/** Stripe's name for an endpoint: method and route pattern, e.g. 'POST /v1/invoices/:id/finalize'. */
function endpointName(route: Route): string {
  const path = route.pattern.source
    .replace(/\\\//g, '/')
    .replace(/^\^|\$$/g, '')
    .replace(/\(\[\^\/\]\+\)/g, ':id');
  return `${route.method} ${path}`;
}

const COLLECTION_METHODS: readonly CollectionMethod[] = ['charge_automatically', 'send_invoice'];

const id = (ids: string[]): string => ids[0] as string;

/** A line's amount: an integer of at most eight digits, negative for a credit. */
function amount(p: ParamReader, name = 'amount'): number | undefined {
  const value = p.integer(name);
  if (value !== undefined && Math.abs(value) > MAX_AMOUNT_MINOR) throw amountTooLarge(p.full(name), value);
  return value;
}

const ROUTES: Route[] = [
  // ---- customers
  {
    method: 'POST',
    pattern: /^\/v1\/customers$/,
    handler: (store, req) => {
      const p = new ParamReader(req.params, ['name', 'email', 'description', 'phone', 'metadata']);
      return store.createCustomer(
        {
          name: p.string('name', 256),
          email: p.string('email', 512),
          description: p.string('description'),
          phone: p.string('phone', 20),
          metadata: p.metadata(),
        },
        req.now,
      );
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/customers$/,
    handler: (store, req) => {
      const p = ParamReader.forList(req.params, ['email']);
      return store.listCustomers({ email: p.string('email') }, p.list());
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/customers\/([^/]+)$/,
    handler: (store, req, ids) => {
      ParamReader.expectNone(req.params);
      return store.getCustomer(id(ids));
    },
  },

  // ---- invoices
  {
    method: 'POST',
    pattern: /^\/v1\/invoices$/,
    handler: (store, req) => {
      const p = new ParamReader(req.params, [
        'customer',
        'auto_advance',
        'collection_method',
        'currency',
        'description',
        'metadata',
        'pending_invoice_items_behavior',
        'days_until_due',
        'discounts',
      ]);
      // No item is ever pending here (items come only from add_lines), so either behaviour adds none.
      p.oneOf('pending_invoice_items_behavior', ['include', 'exclude'] as const);
      // Only the empty string (do not inherit the customer's discount) is modelled.
      const discounts = req.params.discounts;
      if (discounts !== undefined && discounts !== '')
        throw invalidRequest('The fake models only discounts= (an empty string: no discounts).', 'parameter_unknown', 'discounts');
      return store.createInvoice(
        {
          customer: p.requiredString('customer'),
          autoAdvance: p.boolean('auto_advance'),
          collectionMethod: p.oneOf('collection_method', COLLECTION_METHODS),
          currency: p.currency(),
          description: p.string('description', 1500),
          metadata: p.metadata(),
          daysUntilDue: p.integer('days_until_due', { min: 0 }),
          noDiscounts: discounts === '',
        },
        req.now,
      );
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/invoices$/,
    handler: (store, req) => {
      const p = ParamReader.forList(req.params, ['customer']);
      return store.listInvoices({ customer: p.string('customer') }, p.list());
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/invoices\/([^/]+)$/,
    handler: (store, req, ids) => {
      ParamReader.expectNone(req.params);
      return store.getInvoice(id(ids));
    },
  },
  {
    method: 'GET',
    pattern: /^\/v1\/invoices\/([^/]+)\/lines$/,
    handler: (store, req, ids) => {
      const p = ParamReader.forList(req.params, []);
      return store.listInvoiceLines(id(ids), p.list());
    },
  },
  {
    method: 'POST',
    pattern: /^\/v1\/invoices\/([^/]+)\/add_lines$/,
    handler: (store, req, ids) => {
      const p = new ParamReader(req.params, ['lines', 'invoice_metadata']);
      // The fake models lines with an amount only (no prices, discounts, taxes or existing items).
      const lines = p.hashes('lines', ['amount', 'description', 'metadata', 'period']);
      if (lines === undefined) throw parameterMissing('lines');
      return store.addInvoiceLines(
        id(ids),
        {
          lines: lines.map((line) => {
            const value = amount(line);
            if (value === undefined) throw parameterMissing(line.full('amount'));
            return {
              param: line.name,
              amount: value,
              description: line.string('description'),
              metadata: line.metadata(),
              period: line.integerHash('period', ['start', 'end']),
            };
          }),
          invoiceMetadata: p.metadataUpdate('invoice_metadata'),
        },
        req.now,
      );
    },
  },
  {
    method: 'POST',
    pattern: /^\/v1\/invoices\/([^/]+)\/finalize$/,
    handler: (store, req, ids) => {
      const p = new ParamReader(req.params, ['auto_advance']);
      return store.finalizeInvoice(id(ids), { autoAdvance: p.boolean('auto_advance') }, req.now);
    },
  },
];

export interface MatchedRoute {
  /** e.g. 'POST /v1/invoices/:id/add_lines': what rate limits and stats count by. */
  endpoint: string;
  run(store: StripeStore, req: ApiRequest): unknown;
}

const NAMES = new Map(ROUTES.map((r) => [r, endpointName(r)]));

/** Finds the endpoint for a request, or undefined (the caller answers Stripe's 404). */
export function matchRoute(method: string, path: string): MatchedRoute | undefined {
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    const ids = m.slice(1).map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
    return { endpoint: NAMES.get(route) as string, run: (store, req) => route.handler(store, req, ids) };
  }
  return undefined;
}

/** For the README / state endpoint: which endpoints exist. */
export function describeRoutes(): string[] {
  return ROUTES.map((r) => NAMES.get(r) as string);
}
