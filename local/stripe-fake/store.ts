/**
 * In-memory Stripe account: customers, invoices and invoice items, with the
 * state machine and totals rules the product depends on.
 *
 * Records hold only the mutable facts; every read renders a fresh JSON object
 * so callers (routes, tests) can never mutate the stored state by accident,
 * and derived fields (totals, lines) can never drift from the items.
 */
import { multiplyToInteger, truncate } from './decimal';
import { amountTooLarge, invalidRequest, MAX_AMOUNT_MINOR, parameterInvalid, parameterMissing, resourceMissing } from './errors';
import { newId, newInvoicePrefix } from './ids';
import { METADATA_MAX_KEYS, type ListOptions, type MetadataUpdate } from './params';
import type {
  CollectionMethod,
  CustomerJson,
  DeletedJson,
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
export const MAX_ITEMS_PER_INVOICE = 250;
/** Invoices embed at most this many lines; the rest is paged via /v1/invoices/:id/lines. */
export const EMBEDDED_LINES = 10;
/** Used when neither the request, the invoice nor the customer names a currency. */
export const ACCOUNT_DEFAULT_CURRENCY = 'usd';

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
  pendingInvoiceItemsBehavior?: 'include' | 'exclude';
  daysUntilDue?: number;
  dueDate?: number;
  /** `discounts=''`: do not inherit the customer's discount. */
  noDiscounts?: boolean;
}

export interface InvoiceItemInput {
  customer?: string;
  invoice?: string;
  amount?: number;
  unitAmountDecimal?: string;
  /** Decimal string, from `quantity` or `quantity_decimal`. */
  quantity?: string;
  currency?: string;
  description?: string;
  discountable?: boolean;
  metadata: Metadata;
  period?: { start?: number; end?: number };
}

/** One line of POST /v1/invoices/:id/add_lines; each becomes an invoice item on that invoice. */
export interface InvoiceLineInput {
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

export interface InvoiceFilter {
  customer?: string;
  status?: InvoiceStatus;
  collectionMethod?: CollectionMethod;
}

export interface InvoiceItemFilter {
  customer?: string;
  invoice?: string;
  pending?: boolean;
}

// ---- records -----------------------------------------------------------------------------

interface CustomerRecord {
  seq: number;
  json: CustomerJson;
}

interface InvoiceItemRecord {
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
  /** Attached invoice items, in the order they were added (the order lines are shown in). */
  itemIds: string[];
  /** The customer's discount, inherited at creation unless the invoice was created with `discounts=''`. */
  discount: DiscountJson | null;
}

interface Sequenced {
  seq: number;
  id: string;
  created: number;
}

/**
 * Cursor pagination over `rows`, which must already be in list order.
 * Mirrors Stripe: `starting_after` pages forward, `ending_before` pages back and
 * still returns rows in list order; an unknown cursor is a resource_missing error.
 */
function paginate<T>(rows: Sequenced[], render: (id: string) => T, opts: ListOptions, url: string, kind: string): ListJson<T> {
  let filtered = rows;
  const c = opts.created;
  if (c) {
    filtered = filtered.filter(
      (r) =>
        (c.gt === undefined || r.created > c.gt) &&
        (c.gte === undefined || r.created >= c.gte) &&
        (c.lt === undefined || r.created < c.lt) &&
        (c.lte === undefined || r.created <= c.lte),
    );
  }
  let page: Sequenced[];
  let hasMore: boolean;
  if (opts.endingBefore !== undefined) {
    const at = filtered.findIndex((r) => r.id === opts.endingBefore);
    if (at === -1) throw resourceMissing(kind, opts.endingBefore, 'ending_before');
    const start = Math.max(0, at - opts.limit);
    page = filtered.slice(start, at);
    hasMore = start > 0;
  } else {
    let from = 0;
    if (opts.startingAfter !== undefined) {
      const at = filtered.findIndex((r) => r.id === opts.startingAfter);
      if (at === -1) throw resourceMissing(kind, opts.startingAfter, 'starting_after');
      from = at + 1;
    }
    page = filtered.slice(from, from + opts.limit);
    hasMore = from + opts.limit < filtered.length;
  }
  return { object: 'list', data: page.map((r) => render(r.id)), has_more: hasMore, url };
}

const newestFirst = (a: Sequenced, b: Sequenced): number => b.seq - a.seq;

export class StripeStore {
  private seq = 0;
  private readonly customerRecords = new Map<string, CustomerRecord>();
  private readonly invoiceRecords = new Map<string, InvoiceRecord>();
  private readonly itemRecords = new Map<string, InvoiceItemRecord>();

  clear(): void {
    this.customerRecords.clear();
    this.invoiceRecords.clear();
    this.itemRecords.clear();
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

  getCustomer(id: string): CustomerJson {
    return structuredClone(this.customerRecord(id).json);
  }

  listCustomers(filter: { email?: string }, opts: ListOptions): ListJson<CustomerJson> {
    const rows = [...this.customerRecords.values()]
      .filter((r) => filter.email === undefined || r.json.email === filter.email)
      .map((r) => ({ seq: r.seq, id: r.json.id, created: r.json.created }))
      .sort(newestFirst);
    return paginate(rows, (id) => this.getCustomer(id), opts, '/v1/customers', 'customer');
  }

  // ---- invoices ----------------------------------------------------------------------------

  createInvoice(input: InvoiceInput, now: number): InvoiceJson {
    const customer = this.customerRecord(input.customer, 'customer');
    const collectionMethod = input.collectionMethod ?? 'charge_automatically';
    if (collectionMethod === 'charge_automatically' && (input.daysUntilDue !== undefined || input.dueDate !== undefined)) {
      throw invalidRequest(
        'Invoices with collection_method=charge_automatically cannot have a due date (days_until_due / due_date).',
        'parameter_invalid_string',
        input.daysUntilDue !== undefined ? 'days_until_due' : 'due_date',
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
      dueDate: input.dueDate ?? null,
      number: null,
      finalizedAt: null,
      paidAt: null,
      itemIds: [],
      discount: discount && structuredClone(discount),
    };
    // The documented default is 'exclude': pending items stay pending unless asked for.
    if (input.pendingInvoiceItemsBehavior === 'include') {
      const pending = [...this.itemRecords.values()]
        .filter((i) => i.json.customer === rec.customer && i.json.invoice === null && i.json.currency === currency)
        .sort((a, b) => a.seq - b.seq);
      for (const item of pending.slice(0, MAX_ITEMS_PER_INVOICE)) {
        item.json.invoice = rec.id;
        rec.itemIds.push(item.json.id);
      }
    }
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

  listInvoices(filter: InvoiceFilter, opts: ListOptions): ListJson<InvoiceJson> {
    if (filter.customer !== undefined) this.customerRecord(filter.customer, 'customer');
    const rows = [...this.invoiceRecords.values()]
      .filter(
        (r) =>
          (filter.customer === undefined || r.customer === filter.customer) &&
          (filter.status === undefined || r.status === filter.status) &&
          (filter.collectionMethod === undefined || r.collectionMethod === filter.collectionMethod),
      )
      .sort(newestFirst);
    return paginate(rows, (id) => this.getInvoice(id), opts, '/v1/invoices', 'invoice');
  }

  listInvoiceLines(invoiceId: string, opts: ListOptions): ListJson<LineItemJson> {
    const inv = this.invoiceRecord(invoiceId);
    const items = this.itemsOf(inv);
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

  // ---- invoice items ----------------------------------------------------------------------

  createInvoiceItem(input: InvoiceItemInput, now: number): InvoiceItemJson {
    if (input.customer === undefined && input.invoice === undefined) throw parameterMissing('customer');
    if (input.amount !== undefined && input.unitAmountDecimal !== undefined) {
      throw parameterInvalid('amount', 'You may only specify one of these parameters: amount, unit_amount_decimal.');
    }
    if (input.amount === undefined && input.unitAmountDecimal === undefined) throw parameterMissing('amount');

    const invoice = input.invoice === undefined ? undefined : this.invoiceRecord(input.invoice, 'invoice');
    const customerId = input.customer ?? invoice?.customer;
    const customer = this.customerRecord(customerId as string, 'customer');
    if (invoice) {
      if (invoice.customer !== customer.json.id) {
        throw invalidRequest(
          `The invoice item's customer (${customer.json.id}) must match the customer of invoice ${invoice.id} (${invoice.customer}).`,
          undefined,
          'customer',
        );
      }
      this.assertDraft(invoice, 'add invoice items to');
      this.assertRoomFor(invoice, 1, 'invoice');
    }
    const currency = input.currency ?? invoice?.currency ?? customer.json.currency ?? ACCOUNT_DEFAULT_CURRENCY;
    if (invoice && currency !== invoice.currency) {
      throw invalidRequest(
        `The currency of the invoice item (${currency}) must match the currency of invoice ${invoice.id} (${invoice.currency}).`,
        undefined,
        'currency',
      );
    }

    const quantity = input.quantity ?? '1';
    let amount: number;
    let unitAmountDecimal: string | null;
    if (input.amount !== undefined) {
      // `amount` is the line total; a unit price is only meaningful for quantity 1.
      amount = input.amount;
      unitAmountDecimal = quantity === '1' ? String(input.amount) : null;
    } else {
      unitAmountDecimal = input.unitAmountDecimal as string;
      amount = multiplyToInteger(unitAmountDecimal, quantity);
      // The eight-digit bound holds for the item's amount however it was computed.
      if (Math.abs(amount) > MAX_AMOUNT_MINOR) throw amountTooLarge('unit_amount_decimal', amount);
    }
    const period = this.periodOf(input.period, now, '');
    const item = this.insertItem(
      {
        amount,
        currency,
        customer: customer.json.id,
        description: input.description ?? null,
        discountable: input.discountable ?? amount >= 0,
        metadata: input.metadata,
        period,
        unitAmountDecimal,
        quantity,
      },
      invoice,
      now,
    );
    return structuredClone(item.json);
  }

  /**
   * POST /v1/invoices/:id/add_lines: every line becomes an invoice item attached to the draft, all
   * or nothing (a line that cannot be added, or the 250-item cap, leaves the invoice untouched).
   */
  addInvoiceLines(invoiceId: string, input: AddLinesInput, now: number): InvoiceJson {
    const invoice = this.invoiceRecord(invoiceId);
    this.assertDraft(invoice, 'add lines to', undefined);
    this.assertRoomFor(invoice, input.lines.length, 'lines');
    const periods = input.lines.map((line) => this.periodOf(line.period, now, line.param));
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
      this.insertItem(
        {
          amount: line.amount,
          currency: invoice.currency,
          customer: invoice.customer,
          description: line.description ?? null,
          discountable: line.amount >= 0,
          metadata: line.metadata,
          period: periods[i] as PeriodJson,
          unitAmountDecimal: String(line.amount),
          quantity: '1',
        },
        invoice,
        now,
      );
    });
    invoice.metadata = metadata;
    return this.renderInvoice(invoice);
  }

  private itemRecord(id: string): InvoiceItemRecord {
    const rec = this.itemRecords.get(id);
    if (!rec) throw resourceMissing('invoiceitem', id);
    return rec;
  }

  getInvoiceItem(id: string): InvoiceItemJson {
    return structuredClone(this.itemRecord(id).json);
  }

  listInvoiceItems(filter: InvoiceItemFilter, opts: ListOptions): ListJson<InvoiceItemJson> {
    if (filter.invoice !== undefined) this.invoiceRecord(filter.invoice, 'invoice');
    const rows = [...this.itemRecords.values()]
      .filter(
        (r) =>
          (filter.customer === undefined || r.json.customer === filter.customer) &&
          (filter.invoice === undefined || r.json.invoice === filter.invoice) &&
          (filter.pending === undefined || (r.json.invoice === null) === filter.pending),
      )
      .map((r) => ({ seq: r.seq, id: r.json.id, created: r.json.date }))
      .sort(newestFirst);
    return paginate(rows, (id) => this.getInvoiceItem(id), opts, '/v1/invoiceitems', 'invoiceitem');
  }

  deleteInvoiceItem(id: string): DeletedJson {
    const rec = this.itemRecord(id);
    if (rec.json.invoice !== null) {
      const inv = this.invoiceRecord(rec.json.invoice);
      this.assertDraft(inv, 'delete invoice items of');
      inv.itemIds = inv.itemIds.filter((x) => x !== id);
    }
    this.itemRecords.delete(id);
    return { id, object: 'invoiceitem', deleted: true };
  }

  // ---- snapshots (oldest first: the order things happened in) --------------------------------

  allCustomers(): CustomerJson[] {
    return [...this.customerRecords.values()].sort((a, b) => a.seq - b.seq).map((r) => structuredClone(r.json));
  }

  allInvoices(): InvoiceJson[] {
    return [...this.invoiceRecords.values()].sort((a, b) => a.seq - b.seq).map((r) => this.renderInvoice(r));
  }

  allInvoiceItems(): InvoiceItemJson[] {
    return [...this.itemRecords.values()].sort((a, b) => a.seq - b.seq).map((r) => structuredClone(r.json));
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** `param` names the parameter that pointed at the invoice; undefined when it is in the path. */
  private assertDraft(inv: InvoiceRecord, action: string, param: string | undefined = 'invoice'): void {
    if (inv.status !== 'draft') {
      throw invalidRequest(
        `You can only ${action} draft invoices; invoice ${inv.id} is already finalized (status: ${inv.status}).`,
        'invoice_already_finalized',
        param,
      );
    }
  }

  private assertRoomFor(inv: InvoiceRecord, adding: number, param: string): void {
    if (inv.itemIds.length + adding > MAX_ITEMS_PER_INVOICE) {
      throw invalidRequest(
        `Invoices can contain at most ${MAX_ITEMS_PER_INVOICE} invoice items; invoice ${inv.id} has ${inv.itemIds.length} and this request would add ${adding}.`,
        undefined,
        param,
      );
    }
  }

  /** An item's period: missing ends default to now. `prefix` names the hash it came in (`lines[3]`). */
  private periodOf(input: { start?: number; end?: number } | undefined, now: number, prefix: string): PeriodJson {
    const period: PeriodJson = { start: input?.start ?? now, end: input?.end ?? now };
    if (period.end < period.start) {
      throw parameterInvalid(prefix === '' ? 'period[end]' : `${prefix}[period][end]`, 'The period end must be greater than or equal to the period start.');
    }
    return period;
  }

  private insertItem(
    fields: {
      amount: number;
      currency: string;
      customer: string;
      description: string | null;
      discountable: boolean;
      metadata: Metadata;
      period: PeriodJson;
      unitAmountDecimal: string | null;
      quantity: string;
    },
    invoice: InvoiceRecord | undefined,
    now: number,
  ): InvoiceItemRecord {
    const json: InvoiceItemJson = {
      id: newId('ii'),
      object: 'invoiceitem',
      amount: fields.amount,
      currency: fields.currency,
      customer: fields.customer,
      customer_account: null,
      date: now,
      description: fields.description,
      discountable: fields.discountable,
      discounts: [],
      invoice: invoice?.id ?? null,
      livemode: false,
      metadata: { ...fields.metadata },
      net_amount: fields.amount,
      parent: null,
      period: fields.period,
      pricing: { type: 'price_details', unit_amount_decimal: fields.unitAmountDecimal },
      proration: false,
      quantity: truncate(fields.quantity),
      quantity_decimal: fields.quantity,
      tax_rates: [],
      test_clock: null,
    };
    const rec: InvoiceItemRecord = { seq: ++this.seq, json, lineId: newId('il') };
    this.itemRecords.set(json.id, rec);
    invoice?.itemIds.push(json.id);
    return rec;
  }

  private itemsOf(inv: InvoiceRecord): InvoiceItemRecord[] {
    return inv.itemIds.map((id) => this.itemRecords.get(id)).filter((r): r is InvoiceItemRecord => r !== undefined);
  }

  private totalOf(inv: InvoiceRecord): number {
    const subtotal = this.itemsOf(inv).reduce((sum, i) => sum + i.json.amount, 0);
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
    const items = this.itemsOf(inv);
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
