import { authorize, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { budgetOf, estimatePeriod, invoicedPeriod, pricedWith, type BillingCustomer, type BudgetUse, type PeriodTerms } from '../domain/billing';
import { roundToMinor } from '../domain/money';
import { correctionLookback, type Period } from '../domain/period';
import { checkCustomerId } from './customer-id';
import { resolvePeriod } from './period-input';
import { gatherPeriod } from './invoicing/snapshot';
import { publicPending } from './invoicing/views';
import type { Clock } from './ports/clock';
import type { CounterReads } from './ports/usage';
import type { InvoiceRepository } from './ports/invoicing';
import type { InvoiceRecord } from '../domain/invoice-record';

export interface UsageDeps {
  counterReads: CounterReads;
  catalog: CatalogIndex;
  clock: Clock;
}

/** The usage page also reads the invoice of a closed period, and how far back corrections reach. */
export interface ReadUsageDeps extends UsageDeps {
  invoices: Pick<InvoiceRepository, 'list'>;
  correctionWindowMs: number;
  graceMs: number;
}

/** The period's estimate as the usage page, alerts and budgets see it: gathered, then computed (with the terms its invoice was priced with, once invoiced). */
export async function estimate(deps: UsageDeps, customerId: string, period: Period, terms?: PeriodTerms) {
  const g = await gatherPeriod(deps, customerId, period);
  return { ...g, estimate: estimatePeriod({ catalog: deps.catalog, customer: g.customer, period, counters: g.counters, now: deps.clock.now(), terms }) };
}

/**
 * The usage page: per meter the value, allowance used and estimated amount with its tiers; the subtotal
 * as it would be invoiced now (base fee included, rounded per line); the budget used; and a
 * projection to the period end.
 */
export async function readUsage(deps: ReadUsageDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  // A closed period also reads the customer's invoice records (one Query); the current one reads none.
  const closed = deps.clock.now().getTime() >= period.end.getTime();
  const [{ customer, counters, duplicatesDropped }, records] = await Promise.all([
    gatherPeriod(deps, customerId, period),
    closed ? deps.invoices.list(customerId) : Promise.resolve([]),
  ]);
  const invoiced = invoicedPeriod(deps.catalog, period, records, counters, correctionLookback(deps.correctionWindowMs, deps.graceMs));
  // Once invoiced, a period is priced with the version its invoice keeps: the page and the invoice never disagree.
  const terms = invoiced && { plan: pricedWith(deps.catalog, invoiced.invoice), fees: invoiced.invoice.fees ?? true };
  const e = estimatePeriod({ catalog: deps.catalog, customer, period, counters, now: deps.clock.now(), terms });
  const { plan } = e.terms;
  return {
    customerId,
    period: period.key,
    periodStart: period.start.toISOString(),
    periodEnd: period.end.toISOString(),
    planId: plan.id,
    planVersion: plan.version,
    currency: plan.currency,
    asOf: deps.clock.now().toISOString(),
    meters: e.meters.map((m) => {
      const meter = deps.catalog.meter(m.meter)!;
      return {
        meter: m.meter,
        displayName: meter.displayName,
        unit: meter.unit,
        aggregation: meter.aggregation,
        value: m.raw,
        included: m.included,
        percentUsed: m.percentUsed,
        amount: m.amount,
        tiers: m.tiers,
        projectedValue: m.projectedValue,
      };
    }),
    baseFee: e.baseFee,
    subtotal: e.subtotal,
    budget: budgetView(deps.catalog, customer, e.budget),
    projection: {
      subtotal: e.projectedSubtotal,
      method: 'SUM and COUNT meters scaled by the elapsed share of the period; peaks, latest and unique values as they are',
    },
    duplicatesDropped,
    closed,
    invoice: invoiced
      ? {
          key: invoiced.invoice.key,
          status: invoiced.invoice.status,
          total: invoiced.invoice.total,
          billed: invoiced.billed,
          stripeInvoiceId: (invoiced.invoice as InvoiceRecord).stripeInvoiceId ?? null,
        }
      : null,
    pendingCorrection: invoiced ? publicPending(invoiced.pending, period.key) : null,
  };
}

/** The budget as the usage API shows it: with its currency, and no percentages for a period billed in another one. */
function budgetView(catalog: CatalogIndex, customer: BillingCustomer | undefined, use: BudgetUse | null) {
  const budget = budgetOf(catalog, customer);
  if (!budget) return null;
  if (!use) return { amount: roundToMinor(budget.amount, budget.currency), currency: budget.currency, percentUsed: null, projectedPercent: null };
  return { amount: use.amount, currency: budget.currency, percentUsed: use.percentUsed, projectedPercent: use.projectedPercent };
}
