/**
 * In-memory Stripe account: customers, invoices and their invoice items (added by add_lines), with
 * the state machine and totals rules the product depends on.
 *
 * Records hold only the mutable facts; every read renders a fresh JSON object
 * so callers (routes, tests) can never mutate the stored state by accident,
 * and derived fields (totals, lines) can never drift from the items.
 */
import { invalidRequest, parameterInvalid, resourceMissing } from './errors';
import { newId, newInvoicePrefix } from './ids';
import { METADATA_MAX_KEYS, type ListOptions, type MetadataUpdate } from './params';
import type {
  CollectionMethod,
  CustomerJson,
  InvoiceItemJson,
  InvoiceJson,
  InvoiceLinesJson,
  InvoiceStatus,
  LineItemJson,
  ListJson,
  Metadata,
  PeriodJson,
  DiscountJson,
} from './types';

/** Stripe refuses more than 250 invoice items on one invoice. */
const MAX_ITEMS_PER_INVOICE = 250;
/** Invoices embed at most this many lines; the rest is paged via /v1/invoices/:id/lines. */
const EMBEDDED_LINES = 10;
/** Used when neither the request, the invoice nor the customer names a currency. */
const ACCOUNT_DEFAULT_CURRENCY = 'usd';

// ---- inputs (already validated for shape by the routes) ---------------------------------

export interface CustomerInput {
  name?: string;
  email?: string;
  description?: string;
  phone?: string;
  metadata: Metadata;
}

export interface InvoiceInput {
  customer: string;
  autoAdvance?: boolean;
  collectionMethod?: CollectionMethod;
  currency?: string;
  description?: string;
  metadata: Metadata;
  daysUntilDue?: number;
  /** `discounts=''`: do not inherit the customer's discount. */
  noDiscounts?: boolean;
}

/** One line of POST /v1/invoices/:id/add_lines; each becomes an invoice item on that invoice. */
interface InvoiceLineInput {
  /** How the client named this line, e.g. `lines[3]`, for error messages. */
  param: string;
  amount: number;
  description?: string;
  metadata: Metadata;
  period?: { start?: number; end?: number };
}

export interface AddLinesInput {
  lines: InvoiceLineInput[];
  /** Merged into the invoice's metadata (null values unset keys; null clears it). */
  invoiceMetadata?: MetadataUpdate;
}

// ---- records -----------------------------------------------------------------------------

interface CustomerRecord {
  seq: number;
  json: CustomerJson;
}

interface InvoiceItemRecord {
  /** Across all invoices: `invoiceItems()` lists items in the order they were added. */
  seq: number;
  json: InvoiceItemJson;
  /** The `il_...` id of the line this item renders as on its invoice. */
  lineId: string;
}

interface InvoiceRecord {
  seq: number;
  id: string;
  created: number;
  customer: string;
  currency: string;
  status: InvoiceStatus;
  autoAdvance: boolean;
  collectionMethod: CollectionMethod;
  description: string | null;
  metadata: Metadata;
  daysUntilDue: number | null;
  dueDate: number | null;
  number: string | null;
  finalizedAt: number | null;
  paidAt: number | null;
  /** Its invoice items, in the order they were added (the order lines are shown in). */
  items: InvoiceItemRecord[];
  /** The customer's discount, inherited at creation unless the invoice was created with `discounts=''`. */
  discount: DiscountJson | null;
}

interface Sequenced {
  seq: number;
  id: string;
  created: number;
}

/**
 * Cursor pagination over `rows`, which must already be in list order. Mirrors Stripe:
 * `starting_after` pages forward; an unknown cursor is a resource_missing error.
 */
function paginate<T>(rows: Sequenced[], render: (id: string) => T, opts: ListOptions, url: string, kind: string): ListJson<T> {
  let from = 0;
  if (opts.startingAfter !== undefined) {
    const at = rows.findIndex((r) => r.id === opts.startingAfter);
    if (at === -1) throw resourceMissing(kind, opts.startingAfter, 'starting_after');
    from = at + 1;
  }
  const page = rows.slice(from, from + opts.limit);
  return { object: 'list', data: page.map((r) => render(r.id)), has_more: from + opts.limit < rows.length, url };
}

const newestFirst = (a: Sequenced, b: Sequenced): number => b.seq - a.seq;

export class StripeStore {
  private seq = 0;
  private readonly customerRecords = new Map<string, CustomerRecord>();
  private readonly invoiceRecords = new Map<string, InvoiceRecord>();

  clear(): void {
    this.customerRecords.clear();
    this.invoiceRecords.clear();
  }

  // ---- customers ---------------------------------------------------------------------------

  createCustomer(input: CustomerInput, now: number): CustomerJson {
    const json: CustomerJson = {
      id: newId('cus'),
      object: 'customer',
      address: null,
      balance: 0,
      created: now,
      currency: null,
      default_source: null,
      delinquent: false,
      description: input.description ?? null,
      discount: null,
      email: input.email ?? null,
      invoice_prefix: newInvoicePrefix(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: { ...input.metadata },
      name: input.name ?? null,
      next_invoice_sequence: 1,
      phone: input.phone ?? null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    this.customerRecords.set(json.id, { seq: ++this.seq, json });
    return structuredClone(json);
  }

  private customerRecord(id: string, param?: string): CustomerRecord {
    const rec = this.customerRecords.get(id);
    if (!rec) throw resourceMissing('customer', id, param);
    return rec;
  }

  /** What `operator customers put --stripe-customer` checks: 404 resource_missing for an id the account does not have. */
  getCustomer(id: string): CustomerJson {
    return structuredClone(this.customerRecord(id).json);
  }

  listCustomers(filter: { email?: string }, opts: ListOptions): ListJson<CustomerJson> {
    const rows = [...this.customerRecords.values()]
      .filter((r) => filter.email === undefined || r.json.email === filter.email)
      .map((r) => ({ seq: r.seq, id: r.json.id, created: r.json.created }))
      .sort(newestFirst);
    return paginate(rows, (id) => structuredClone(this.customerRecord(id).json), opts, '/v1/customers', 'customer');
  }

  // ---- invoices ----------------------------------------------------------------------------

  createInvoice(input: InvoiceInput, now: number): InvoiceJson {
    const customer = this.customerRecord(input.customer, 'customer');
    const collectionMethod = input.collectionMethod ?? 'charge_automatically';
    if (collectionMethod === 'charge_automatically' && input.daysUntilDue !== undefined) {
      throw invalidRequest(
        'Invoices with collection_method=charge_automatically cannot have a due date (days_until_due).',
        'parameter_invalid_string',
        'days_until_due',
      );
    }
    const currency = input.currency ?? customer.json.currency ?? ACCOUNT_DEFAULT_CURRENCY;
    // Stripe: "If not specified, inherits the discount from the invoice's customer. Pass an empty string to avoid inheriting any discounts."
    const discount = input.noDiscounts ? null : customer.json.discount;
    const rec: InvoiceRecord = {
      seq: ++this.seq,
      id: newId('in'),
      created: now,
      customer: customer.json.id,
      currency,
      status: 'draft',
      // The API documents `auto_advance` as defaulting to false for invoices created via the API.
      autoAdvance: input.autoAdvance ?? false,
      collectionMethod,
      description: input.description ?? null,
      metadata: { ...input.metadata },
      daysUntilDue: input.daysUntilDue ?? null,
      dueDate: null,
      number: null,
      finalizedAt: null,
      paidAt: null,
      items: [],
      discount: discount && structuredClone(discount),
    };
    this.invoiceRecords.set(rec.id, rec);
    return this.renderInvoice(rec);
  }

  private invoiceRecord(id: string, param?: string): InvoiceRecord {
    const rec = this.invoiceRecords.get(id);
    if (!rec) throw resourceMissing('invoice', id, param);
    return rec;
  }

  getInvoice(id: string): InvoiceJson {
    return this.renderInvoice(this.invoiceRecord(id));
  }

  listInvoices(filter: { customer?: string }, opts: ListOptions): ListJson<InvoiceJson> {
    if (filter.customer !== undefined) this.customerRecord(filter.customer, 'customer');
    const rows = [...this.invoiceRecords.values()].filter((r) => filter.customer === undefined || r.customer === filter.customer).sort(newestFirst);
    return paginate(rows, (id) => this.getInvoice(id), opts, '/v1/invoices', 'invoice');
  }

  listInvoiceLines(invoiceId: string, opts: ListOptions): ListJson<LineItemJson> {
    const inv = this.invoiceRecord(invoiceId);
    const items = inv.items;
    const rows = items.map((i) => ({ seq: i.seq, id: i.lineId, created: i.json.date }));
    const byLine = new Map(items.map((i) => [i.lineId, i]));
    return paginate(rows, (lineId) => this.renderLine(byLine.get(lineId) as InvoiceItemRecord), opts, `/v1/invoices/${inv.id}/lines`, 'line item');
  }

  finalizeInvoice(id: string, opts: { autoAdvance?: boolean }, now: number): InvoiceJson {
    const inv = this.invoiceRecord(id);
    if (inv.status !== 'draft') {
      throw invalidRequest("This invoice is already finalized, you can't re-finalize a non-draft invoice.", 'invoice_already_finalized');
    }
    const customer = this.customerRecord(inv.customer);
    const total = this.totalOf(inv);
    inv.number = `${customer.json.invoice_prefix}-${String(customer.json.next_invoice_sequence).padStart(4, '0')}`;
    customer.json.next_invoice_sequence += 1;
    inv.finalizedAt = now;
    if (opts.autoAdvance !== undefined) inv.autoAdvance = opts.autoAdvance;
    if (inv.collectionMethod === 'send_invoice' && inv.dueDate === null && inv.daysUntilDue !== null) {
      inv.dueDate = now + inv.daysUntilDue * 86_400;
    }
    // Stripe marks an invoice with nothing to collect as paid the moment it is finalized
    // (a negative total becomes customer credit). Only positive totals stay open.
    if (total <= 0) {
      inv.status = 'paid';
      inv.paidAt = now;
    } else {
      inv.status = 'open';
    }
    return this.renderInvoice(inv);
  }

  /**
   * POST /v1/invoices/:id/add_lines: every line becomes an invoice item attached to the draft, all
   * or nothing (a line that cannot be added, or the 250-item cap, leaves the invoice untouched).
   */
  addInvoiceLines(invoiceId: string, input: AddLinesInput, now: number): InvoiceJson {
    const invoice = this.invoiceRecord(invoiceId);
    if (invoice.status !== 'draft') {
      throw invalidRequest(
        `You can only add lines to draft invoices; invoice ${invoice.id} is already finalized (status: ${invoice.status}).`,
        'invoice_already_finalized',
      );
    }
    if (invoice.items.length + input.lines.length > MAX_ITEMS_PER_INVOICE) {
      throw invalidRequest(
        `Invoices can contain at most ${MAX_ITEMS_PER_INVOICE} invoice items; invoice ${invoice.id} has ${invoice.items.length} and this request would add ${input.lines.length}.`,
        undefined,
        'lines',
      );
    }
    // A line's period: missing ends default to now.
    const periods = input.lines.map((line): PeriodJson => {
      const period = { start: line.period?.start ?? now, end: line.period?.end ?? now };
      if (period.end < period.start) throw parameterInvalid(`${line.param}[period][end]`, 'The period end must be greater than or equal to the period start.');
      return period;
    });
    let metadata = invoice.metadata;
    if (input.invoiceMetadata !== undefined) {
      metadata = input.invoiceMetadata === null ? {} : { ...invoice.metadata };
      for (const [key, value] of Object.entries(input.invoiceMetadata ?? {})) {
        if (value === null) delete metadata[key];
        else metadata[key] = value;
      }
      if (Object.keys(metadata).length > METADATA_MAX_KEYS) {
        throw parameterInvalid('invoice_metadata', `Metadata can have up to ${METADATA_MAX_KEYS} keys.`);
      }
    }
    // Everything is checked; from here on nothing throws.
    input.lines.forEach((line, i) => {
      const json: InvoiceItemJson = {
        id: newId('ii'),
        object: 'invoiceitem',
        amount: line.amount,
        currency: invoice.currency,
        customer: invoice.customer,
        customer_account: null,
        date: now,
        description: line.description ?? null,
        discountable: line.amount >= 0,
        discounts: [],
        invoice: invoice.id,
        livemode: false,
        metadata: { ...line.metadata },
        net_amount: line.amount,
        parent: null,
        period: periods[i] as PeriodJson,
        pricing: { type: 'price_details', unit_amount_decimal: String(line.amount) },
        proration: false,
        quantity: 1,
        quantity_decimal: '1',
        tax_rates: [],
        test_clock: null,
      };
      invoice.items.push({ seq: ++this.seq, json, lineId: newId('il') });
    });
    invoice.metadata = metadata;
    return this.renderInvoice(invoice);
  }

  // ---- snapshots (oldest first: the order things happened in) --------------------------------

  allCustomers(): CustomerJson[] {
    return [...this.customerRecords.values()].sort((a, b) => a.seq - b.seq).map((r) => structuredClone(r.json));
  }

  allInvoices(): InvoiceJson[] {
    return [...this.invoiceRecords.values()].sort((a, b) => a.seq - b.seq).map((r) => this.renderInvoice(r));
  }

  allInvoiceItems(): InvoiceItemJson[] {
    const items = [...this.invoiceRecords.values()].flatMap((r) => r.items);
    return items.sort((a, b) => a.seq - b.seq).map((r) => structuredClone(r.json));
  }

  // ---- helpers -------------------------------------------------------------------------------

  private totalOf(inv: InvoiceRecord): number {
    const subtotal = inv.items.reduce((sum, i) => sum + i.json.amount, 0);
    return subtotal - discountOf(inv, subtotal);
  }

  /** Puts a coupon on a customer (a fake control: the product never does): its invoices inherit it unless created with `discounts=''`. */
  setCustomerCoupon(id: string, coupon: { percentOff?: number; amountOff?: number }, now: number): CustomerJson {
    const rec = this.customerRecord(id);
    rec.json.discount = {
      id: newId('di'),
      object: 'discount',
      coupon: {
        id: newId('coupon'),
        object: 'coupon',
        percent_off: coupon.percentOff ?? null,
        amount_off: coupon.amountOff ?? null,
        currency: coupon.amountOff === undefined ? null : (rec.json.currency ?? ACCOUNT_DEFAULT_CURRENCY),
        duration: 'forever',
        valid: true,
      },
      customer: id,
      end: null,
      invoice: null,
      invoice_item: null,
      promotion_code: null,
      start: now,
      subscription: null,
    };
    return structuredClone(rec.json);
  }

  private renderLine(item: InvoiceItemRecord): LineItemJson {
    const j = item.json;
    return {
      id: item.lineId,
      object: 'line_item',
      amount: j.amount,
      currency: j.currency,
      description: j.description,
      discount_amounts: [],
      discountable: j.discountable,
      discounts: [],
      invoice: j.invoice as string,
      livemode: false,
      // Stripe copies the invoice item's metadata onto the line it produces.
      metadata: { ...j.metadata },
      parent: {
        type: 'invoice_item_details',
        invoice_item_details: { invoice_item: j.id, proration: false, proration_details: null, subscription: null },
        subscription_item_details: null,
      },
      period: { ...j.period },
      pretax_credit_amounts: [],
      pricing: j.pricing ? { ...j.pricing } : null,
      quantity: j.quantity,
      quantity_decimal: j.quantity_decimal,
      subscription: null,
      subtotal: j.amount,
      taxes: [],
    };
  }

  private renderInvoice(inv: InvoiceRecord): InvoiceJson {
    const customer = this.customerRecords.get(inv.customer)?.json;
    const items = inv.items;
    const subtotal = items.reduce((sum, i) => sum + i.json.amount, 0);
    const discounted = discountOf(inv, subtotal);
    const total = subtotal - discounted;
    const amountDue = Math.max(0, total);
    const finalized = inv.status !== 'draft';
    const lines: InvoiceLinesJson = {
      object: 'list',
      data: items.slice(0, EMBEDDED_LINES).map((i) => this.renderLine(i)),
      has_more: items.length > EMBEDDED_LINES,
      total_count: items.length,
      url: `/v1/invoices/${inv.id}/lines`,
    };
    return {
      id: inv.id,
      object: 'invoice',
      account_country: 'US',
      account_name: 'Stripe Fake',
      amount_due: amountDue,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: inv.status === 'paid' ? 0 : amountDue,
      amount_shipping: 0,
      application: null,
      attempt_count: 0,
      attempted: false,
      auto_advance: inv.autoAdvance,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      automatically_finalizes_at: null,
      billing_reason: 'manual',
      collection_method: inv.collectionMethod,
      created: inv.created,
      currency: inv.currency,
      custom_fields: null,
      customer: inv.customer,
      customer_account: null,
      customer_address: null,
      customer_email: customer?.email ?? null,
      customer_name: customer?.name ?? null,
      customer_phone: customer?.phone ?? null,
      customer_shipping: null,
      customer_tax_exempt: 'none',
      customer_tax_ids: [],
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: inv.description,
      discounts: inv.discount ? [inv.discount.id] : [],
      due_date: inv.dueDate,
      effective_at: inv.finalizedAt,
      ending_balance: finalized ? Math.min(0, total) : null,
      footer: null,
      from_invoice: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      issuer: { type: 'self' },
      last_finalization_error: null,
      latest_revision: null,
      lines,
      livemode: false,
      metadata: { ...inv.metadata },
      next_payment_attempt: null,
      number: inv.number,
      on_behalf_of: null,
      parent: null,
      payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: inv.created,
      period_start: inv.created,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      rendering: null,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      statement_descriptor: null,
      status: inv.status,
      status_transitions: { finalized_at: inv.finalizedAt, marked_uncollectible_at: null, paid_at: inv.paidAt, voided_at: null },
      subtotal,
      subtotal_excluding_tax: subtotal,
      test_clock: null,
      total,
      total_discount_amounts: inv.discount && discounted > 0 ? [{ amount: discounted, discount: inv.discount.id }] : [],
      total_excluding_tax: total,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      webhooks_delivered_at: null,
    };
  }
}

/** What an invoice's discount takes off its subtotal (a percentage rounded half up, or an amount), never more than the subtotal. */
function discountOf(inv: InvoiceRecord, subtotal: number): number {
  const coupon = inv.discount?.coupon;
  if (!coupon || subtotal <= 0) return 0;
  const off = coupon.percent_off !== null ? Math.round((subtotal * coupon.percent_off) / 100) : (coupon.amount_off ?? 0);
  return Math.min(off, subtotal);
}
