/**
 * What the invoice worker needs from the payment provider (Stripe). Every write carries an
 * idempotency key built from domain ids, so a retried or re-run call can never create a second
 * object. Amounts are integer minor units.
 */
export interface DraftInvoiceInput {
  stripeCustomerId: string;
  currency: string;
  description: string;
  metadata: Record<string, string>;
  idempotencyKey: string;
}
export interface InvoiceItemInput {
  stripeCustomerId: string;
  invoiceId: string;
  currency: string;
  amountMinor: number;
  description: string;
  metadata: Record<string, string>;
  idempotencyKey: string;
}
export interface ProviderInvoice {
  id: string;
  status: string;
  totalMinor: number;
  number?: string | null;
  hostedInvoiceUrl?: string | null;
}

export interface BillingProvider {
  createDraftInvoice(input: DraftInvoiceInput): Promise<ProviderInvoice>;
  addInvoiceItem(input: InvoiceItemInput): Promise<{ id: string }>;
  finalizeInvoice(invoiceId: string, idempotencyKey: string): Promise<ProviderInvoice>;
  getInvoice(invoiceId: string): Promise<ProviderInvoice>;
  /**
   * The customer's invoice whose metadata.invoice_key is this key, if any. Stripe forgets
   * idempotency keys after 24 hours; this finds a draft made by an attempt that died before
   * recording it, however much later the retry comes (e.g. a DLQ redrive).
   */
  findInvoice(stripeCustomerId: string, invoiceKey: string): Promise<ProviderInvoice | undefined>;
  /** Items already on an invoice, with their metadata (to reconcile after a crash). */
  listInvoiceItems(invoiceId: string): Promise<{ id: string; amountMinor: number; metadata: Record<string, string> }[]>;
}

/** A provider call failed for good (after retries) or was refused; `retryable` says whether a later attempt may succeed. */
export class BillingProviderError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'BillingProviderError';
  }
}
