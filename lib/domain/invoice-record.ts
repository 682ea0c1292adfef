import type { Plan } from './catalog';
import type { InvoiceLine } from './invoice-lines';
import type { Currency } from './money';

/** A period's own invoice, or the corrections of earlier periods billed in another currency. */
export type InvoiceKind = 'period' | 'correction';

/**
 * pending -> draft_created -> items_added -> finalized walk an invoice through the provider.
 * Terminal without a provider call: no_charge (total 0), not_synced (no provider customer),
 * credit_carried (a negative total, carried to the next invoice). blocked: the provider can never
 * take it as it is (e.g. an amount over its limit); the record keeps why, an operator decides.
 */
export type InvoiceStatus = 'pending' | 'draft_created' | 'items_added' | 'finalized' | 'no_charge' | 'not_synced' | 'credit_carried' | 'blocked';
export const TERMINAL_INVOICE_STATUSES: InvoiceStatus[] = ['finalized', 'no_charge', 'not_synced', 'credit_carried', 'blocked'];

/** One invoice of a customer: its frozen lines and where it stands with the provider. */
export interface InvoiceRecord {
  customerId: string;
  /** `<period>` for the period's own invoice, `<period>#<currency>` for corrections billed in another currency. */
  key: string;
  period: string;
  kind: InvoiceKind;
  status: InvoiceStatus;
  planId: string;
  /** The plan version that priced the period (own invoices); records made before versions: absent (1). */
  planVersion?: number;
  /** Own invoices: a copy of that version; corrections of the period are priced with it (docs/invoicing.md, "Plan versions"). */
  plan?: Plan;
  currency: Currency;
  /** Whether the period owed its fixed fees (own invoices). */
  fees: boolean;
  lines: InvoiceLine[];
  total: string;
  /** The total as an exact integer of minor units. */
  totalMinor: string;
  /** The period's usage this invoice billed (frozen when the record was made). */
  quantities: Record<string, string>;
  /** Own invoices: what has been billed for this period so far, corrections included (the baseline of the next correction). */
  invoicedQuantities?: Record<string, string>;
  /** Bumped on every change of invoicedQuantities (optimistic concurrency). */
  invoicedVersion?: number;
  /** Earlier periods this invoice corrected, and the totals it billed them up to. */
  corrections: { period: string; quantities: Record<string, string> }[];
  /** A carried credit (credit_carried): the key of the invoice that used it. */
  creditAppliedTo?: string;
  /** A carried credit an operator settled outside invoices (refunded or written off): never applied after. */
  creditSettlement?: CreditSettlement;
  stripeCustomerId?: string;
  stripeInvoiceId?: string;
  stripeStatus?: string;
  stripeNumber?: string | null;
  hostedInvoiceUrl?: string | null;
  /** Set before the first provider write of a step, so a later attempt knows to look for what it may have made. */
  draftRequested?: boolean;
  itemsRequested?: boolean;
  /** blocked: the state it was blocked in (a later job resumes from there). */
  blockedFrom?: InvoiceStatus;
  attempts: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  finalizedAt?: string;
}

export interface CreditSettlement {
  as: 'refund' | 'write_off';
  reason: string;
  /** Where the money went (a Stripe refund or credit note id); required for a refund. */
  reference?: string;
  at: string;
  /** The key (id) of whoever settled it. */
  by: string;
}
