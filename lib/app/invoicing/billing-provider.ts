/**
 * The billing provider (Stripe) as the invoice job sees it: InvoiceSync, the port the job calls, and
 * BillingProvider, the provider's operations an InvoiceSync is built on (lib/adapters/stripe). Every
 * write carries an idempotency key built from domain ids, so a retried or re-run call can never
 * create a second object. Amounts are integer minor units.
 */
export interface DraftInvoiceInput {
  stripeCustomerId: string;
  currency: string;
  description: string;
  metadata: Record<string, string>;
  idempotencyKey: string;
}
/** One line to put on a draft; `metadata.line_key` identifies it when reconciling later. */
export interface ProviderLine {
  /** Integer minor units, within the provider's limit (checked before the draft); negative for a credit. */
  amountMinor: number;
  description: string;
  metadata: Record<string, string>;
}
export interface AddLinesInput {
  invoiceId: string;
  lines: ProviderLine[];
  idempotencyKey: string;
}
/** A line already on an invoice. */
export interface ProviderInvoiceLine {
  id: string;
  amountMinor: number;
  metadata: Record<string, string>;
}
export interface ProviderInvoice {
  id: string;
  status: string;
  totalMinor: number;
  number?: string | null;
  hostedInvoiceUrl?: string | null;
}

/** The provider's operations (the Stripe adapter implements them on the SDK: paced, and retried by the SDK). */
export interface BillingProvider {
  createDraftInvoice(input: DraftInvoiceInput): Promise<ProviderInvoice>;
  /** Puts lines on a draft in one request, all or nothing; answers with the updated invoice. */
  addInvoiceLines(input: AddLinesInput): Promise<ProviderInvoice>;
  finalizeInvoice(invoiceId: string, idempotencyKey: string): Promise<ProviderInvoice>;
  getInvoice(invoiceId: string): Promise<ProviderInvoice>;
  /**
   * The customer's invoice whose metadata.invoice_key is this key, if any. Stripe forgets
   * idempotency keys after 24 hours; this finds a draft made by an attempt that died before
   * recording it, however much later the retry comes (e.g. a DLQ redrive).
   */
  findInvoice(stripeCustomerId: string, invoiceKey: string): Promise<ProviderInvoice | undefined>;
  /** Lines already on an invoice, with their metadata (to reconcile after a crash). */
  listInvoiceLines(invoiceId: string): Promise<ProviderInvoiceLine[]>;
  /** Whether the account has this customer (and it is not deleted): operators are warned before linking one it lacks. */
  customerExists(stripeCustomerId: string): Promise<boolean>;
}

/** An invoice as the sync sends it: its frozen lines in exact integer minor units. */
export interface SyncInvoice {
  customerId: string;
  /** The record's key: `<period>` or `<period>#<currency>`; with the customer it names every provider object. */
  key: string;
  period: string;
  currency: string;
  stripeCustomerId: string;
  lines: { lineKey: string; kind: string; meter?: string; tier?: number; period?: string; description: string; amountMinor: string }[];
  totalMinor: string;
}

/**
 * What the invoice job needs from the payment provider, one method per state of the table-driven
 * sync (lib/app/invoicing/sync.ts). The adapter owns the mapping of lines to provider objects, the
 * provider's limits and its idempotency keys; each method is safe to call again after a crash.
 */
export interface InvoiceSync {
  /**
   * Creates the draft, or, when `resumed` (an earlier attempt may have made it and died), first
   * looks for it. Refuses an invoice the provider could never take (BillingProviderError, not
   * retryable) before any call.
   */
  openDraft(invoice: SyncInvoice, resumed: boolean): Promise<{ invoiceId: string }>;
  /**
   * Puts every line on the draft exactly once; when `resumed` (an earlier attempt may have added
   * them and died), adds only the lines that are not there yet.
   */
  addLines(invoice: SyncInvoice, invoiceId: string, resumed: boolean): Promise<void>;
  /** Finalizes the draft (again: returns it as it is). */
  finalize(
    invoice: SyncInvoice,
    invoiceId: string,
  ): Promise<{ id: string; status: string; totalMinor: string; number?: string | null; hostedInvoiceUrl?: string | null }>;
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
