import { authorize, type Principal } from '../../domain/apikey';
import type { CatalogIndex } from '../../domain/catalog';
import type { InvoiceLine } from '../../domain/invoice-lines';
import { computeInvoices, invoicedPeriod, type ComputedInvoice, type InvoicedPeriod } from '../../domain/billing';
import { checkCustomerId } from '../customer-id';
import type { Clock } from '../ports/clock';
import type { InvoiceRecord } from '../../domain/invoice-record';
import { resolvePeriod } from '../period-input';
import { gatherInvoices, type SnapshotDeps } from './snapshot';

/** What customers and finance read of invoices: the upcoming one and the records. */
export interface InvoiceViewDeps extends SnapshotDeps {
  catalog: CatalogIndex;
  clock: Clock;
}

/** A line as the API shows it; `period` is the period the money belongs to (the corrected one for a correction). */
function publicLine(l: InvoiceLine, invoicePeriod: string) {
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

function publicDraft(i: Pick<ComputedInvoice, 'key' | 'kind' | 'currency' | 'lines' | 'total' | 'period'>) {
  return { key: i.key, kind: i.kind, currency: i.currency, lines: i.lines.map((l) => publicLine(l, i.period)), total: i.total };
}

/** The correction of an invoiced period pending since its invoice, as the API shows it. */
export function publicPending(pending: InvoicedPeriod['pending'], period: string) {
  return pending && { currency: pending.currency, lines: pending.lines.map((l) => publicLine(l, period)), total: pending.total, carriedBy: pending.carriedBy };
}

/**
 * GET .../invoices/upcoming: the invoice the period would produce now, in the shape of a real one.
 * A period that has its own invoice answers that invoice as stored (its status, lines and total),
 * with the correction pending since shown once, as what the next invoice will carry (`carriedBy`);
 * that next period's preview shows the same correction as one of its lines.
 */
export async function previewInvoice(deps: InvoiceViewDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const snapshot = await gatherInvoices(deps, customerId, period);
  const asOf = deps.clock.now().toISOString();
  const invoiced = invoicedPeriod(deps.catalog, period, snapshot.records, snapshot.counters[period.key] ?? {}, snapshot.lookback);
  if (invoiced) {
    const r = invoiced.invoice as InvoiceRecord;
    return {
      customerId,
      period: period.key,
      planId: r.planId,
      planVersion: r.planVersion ?? 1,
      currency: r.currency as ComputedInvoice['currency'],
      status: r.status,
      invoiced: true,
      lines: r.lines.map((l) => publicLine(l, period.key)),
      total: r.total,
      additionalInvoices: snapshot.records
        .filter((x) => x.period === period.key && x.key !== r.key)
        .map((x) => publicDraft({ ...x, currency: x.currency as ComputedInvoice['currency'] })),
      pendingCorrection: publicPending(invoiced.pending, period.key),
      asOf,
    };
  }
  const [own, ...others] = computeInvoices(deps.catalog, snapshot).invoices;
  return {
    customerId,
    period: period.key,
    planId: own!.planId,
    planVersion: own!.planVersion,
    currency: own!.currency,
    status: 'upcoming' as const,
    invoiced: false,
    lines: own!.lines.map((l) => publicLine(l, period.key)),
    total: own!.total,
    /** Corrections of earlier periods billed in another currency, each its own invoice. */
    additionalInvoices: others.map(publicDraft),
    pendingCorrection: null,
    asOf,
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
