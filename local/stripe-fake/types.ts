/**
 * Wire shapes used by the Stripe fake.
 *
 * These describe the JSON the fake puts on the wire, not the stripe-node
 * TypeScript types: the SDK turns some wire strings into `Decimal` instances
 * (e.g. `quantity_decimal`), so its types would lie about what we send.
 * Only the fields the fake fills in are listed; they follow the field names of
 * API version 2026-10-28 (the version pinned by stripe@23).
 */

/** A decoded form body / query string. Leaves are always strings on the wire. */
export interface FormObject {
  [key: string]: FormValue;
}
export type FormValue = string | FormObject;

export type Metadata = Record<string, string>;

export interface ListJson<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

export interface InvoiceLinesJson extends ListJson<LineItemJson> {
  total_count: number;
}

export interface CustomerJson {
  id: string;
  object: 'customer';
  address: null;
  balance: number;
  created: number;
  currency: string | null;
  default_source: null;
  delinquent: boolean;
  description: string | null;
  /** A coupon on the customer (set through POST /_fake/customers/:id/coupon): its invoices inherit it unless created with `discounts=''`. */
  discount: DiscountJson | null;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: {
    custom_fields: null;
    default_payment_method: null;
    footer: null;
    rendering_options: null;
  };
  livemode: false;
  metadata: Metadata;
  name: string | null;
  next_invoice_sequence: number;
  phone: string | null;
  preferred_locales: string[];
  shipping: null;
  tax_exempt: 'none';
  test_clock: null;
}

interface PricingJson {
  type: 'price_details';
  /** Decimal string; the SDK coerces it to `Stripe.Decimal`. */
  unit_amount_decimal: string | null;
}

export interface PeriodJson {
  start: number;
  end: number;
}

export interface InvoiceItemJson {
  id: string;
  object: 'invoiceitem';
  amount: number;
  currency: string;
  customer: string;
  customer_account: null;
  date: number;
  description: string | null;
  discountable: boolean;
  discounts: string[];
  invoice: string | null;
  livemode: false;
  metadata: Metadata;
  net_amount: number;
  parent: null;
  period: PeriodJson;
  pricing: PricingJson | null;
  proration: false;
  quantity: number;
  /** Decimal string; the SDK coerces it to `Stripe.Decimal`. */
  quantity_decimal: string;
  tax_rates: string[];
  test_clock: null;
}

export interface LineItemJson {
  id: string;
  object: 'line_item';
  amount: number;
  currency: string;
  description: string | null;
  discount_amounts: [];
  discountable: boolean;
  discounts: string[];
  invoice: string;
  livemode: false;
  metadata: Metadata;
  parent: {
    type: 'invoice_item_details';
    invoice_item_details: {
      invoice_item: string;
      proration: false;
      proration_details: null;
      subscription: null;
    };
    subscription_item_details: null;
  };
  period: PeriodJson;
  pretax_credit_amounts: [];
  pricing: PricingJson | null;
  quantity: number;
  quantity_decimal: string;
  subscription: null;
  subtotal: number;
  taxes: [];
}

export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';
export type CollectionMethod = 'charge_automatically' | 'send_invoice';

export interface InvoiceJson {
  id: string;
  object: 'invoice';
  account_country: string;
  account_name: string;
  amount_due: number;
  amount_overpaid: number;
  amount_paid: number;
  amount_remaining: number;
  amount_shipping: number;
  application: null;
  attempt_count: number;
  attempted: boolean;
  auto_advance: boolean;
  automatic_tax: { enabled: false; liability: null; provider: null; status: null };
  automatically_finalizes_at: null;
  billing_reason: 'manual';
  collection_method: CollectionMethod;
  created: number;
  currency: string;
  custom_fields: null;
  customer: string;
  customer_account: null;
  customer_address: null;
  customer_email: string | null;
  customer_name: string | null;
  customer_phone: string | null;
  customer_shipping: null;
  customer_tax_exempt: 'none';
  customer_tax_ids: [];
  default_payment_method: null;
  default_source: null;
  default_tax_rates: [];
  description: string | null;
  discounts: string[];
  due_date: number | null;
  effective_at: number | null;
  ending_balance: number | null;
  footer: null;
  from_invoice: null;
  hosted_invoice_url: null;
  invoice_pdf: null;
  issuer: { type: 'self' };
  last_finalization_error: null;
  latest_revision: null;
  lines: InvoiceLinesJson;
  livemode: false;
  metadata: Metadata;
  next_payment_attempt: null;
  number: string | null;
  on_behalf_of: null;
  parent: null;
  payment_settings: { default_mandate: null; payment_method_options: null; payment_method_types: null };
  period_end: number;
  period_start: number;
  post_payment_credit_notes_amount: number;
  pre_payment_credit_notes_amount: number;
  receipt_number: null;
  rendering: null;
  shipping_cost: null;
  shipping_details: null;
  starting_balance: number;
  statement_descriptor: null;
  status: InvoiceStatus;
  status_transitions: {
    finalized_at: number | null;
    marked_uncollectible_at: null;
    paid_at: number | null;
    voided_at: null;
  };
  subtotal: number;
  subtotal_excluding_tax: number;
  test_clock: null;
  total: number;
  total_discount_amounts: { amount: number; discount: string }[];
  total_excluding_tax: number;
  total_pretax_credit_amounts: [];
  total_taxes: [];
  webhooks_delivered_at: null;
}

/** A discount: a coupon applied to a customer (percent or amount off), in the fields the product may read. */
export interface DiscountJson {
  id: string;
  object: 'discount';
  coupon: { id: string; object: 'coupon'; percent_off: number | null; amount_off: number | null; currency: string | null; duration: 'forever'; valid: true };
  customer: string;
  end: null;
  invoice: null;
  invoice_item: null;
  promotion_code: null;
  start: number;
  subscription: null;
}
