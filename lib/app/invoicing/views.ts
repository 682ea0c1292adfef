import { authorize, type Principal } from '../../domain/apikey';
import type { CatalogIndex } from '../../domain/catalog';
import type { InvoiceLine } from '../../domain/invoice';
import { computeInvoices, type ComputedInvoice } from '../../domain/invoicing';
import { checkCustomerId } from '../customer-id';
import type { Clock, InvoiceRecord } from '../ports';
import { resolvePeriod } from '../usage';
import { gatherInvoices, type SnapshotDeps } from './snapshot';

/** What customers and finance read of invoices: the upcoming one and the records. */
export interface InvoiceViewDeps extends SnapshotDeps {
  catalog: CatalogIndex;
  clock: Clock;
}

/** A line as the API shows it; `period` is the period the money belongs to (the corrected one for a correction). */
export function publicLine(l: InvoiceLine, invoicePeriod: string) {
  return {
    kind: l.kind,
    meter: l.meter ?? null,
    period: l.period ?? invoicePeriod,
    description: l.description,
    quantity: l.quantity,
    unitAmount: l.unitAmount,
    amount: l.amount,
    lineKey: l.lineKey,
  };
}

function publicDraft(i: ComputedInvoice) {
  return { key: i.key, kind: i.kind, currency: i.currency, lines: i.lines.map((l) => publicLine(l, i.period)), total: i.total };
}

/** GET .../invoices/upcoming: the invoice the period would produce now, in the shape of a real one. */
export async function previewInvoice(deps: InvoiceViewDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const [own, ...others] = computeInvoices(deps.catalog, await gatherInvoices(deps, customerId, period)).invoices;
  return {
    customerId,
    period: period.key,
    planId: own!.planId,
    planVersion: own!.planVersion,
    currency: own!.currency,
    status: 'upcoming',
    lines: own!.lines.map((l) => publicLine(l, period.key)),
    total: own!.total,
    /** Corrections of earlier periods billed in another currency, each its own invoice. */
    additionalInvoices: others.map(publicDraft),
    asOf: deps.clock.now().toISOString(),
  };
}

export function publicInvoice(r: InvoiceRecord) {
  return {
    customerId: r.customerId,
    key: r.key,
    period: r.period,
    kind: r.kind,
    status: r.status,
    planId: r.planId,
    planVersion: r.planVersion ?? 1,
    currency: r.currency,
    lines: r.lines.map((l) => publicLine(l, r.period)),
    total: r.total,
    creditAppliedTo: r.creditAppliedTo ?? null,
    stripeInvoiceId: r.stripeInvoiceId ?? null,
    stripeStatus: r.stripeStatus ?? null,
    hostedInvoiceUrl: r.hostedInvoiceUrl ?? null,
    quantities: r.quantities,
    corrections: r.corrections,
    lastError: r.lastError ?? null,
    createdAt: r.createdAt,
    finalizedAt: r.finalizedAt ?? null,
  };
}

export async function listInvoices(deps: Pick<SnapshotDeps, 'invoices'>, principal: Principal, customerId: string) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  return { customerId, invoices: (await deps.invoices.list(customerId)).map(publicInvoice) };
}
