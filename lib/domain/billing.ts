import type { CatalogIndex, Plan } from './catalog';
import type { Customer } from './customer';
import { ConflictError } from './errors';
import type { InvoiceKind, InvoiceRecord } from './invoice-record';
import { correctionLines, invoiceDraft, priceMeter, priceUsage, toLine, type InvoiceLine, type MeterPrice } from './invoice-lines';
import { dec, percentOf, roundToMinor, sum, toMinorUnits, type Currency } from './money';
import { Period } from './period';
import { planIdFor } from './plan-schedule';
import { projectToPeriodEnd } from './projection';
import { billable } from './quantity';

/**
 * Compute: from a customer's billing snapshot to numbers. Pure: no I/O and no clock (the time is an
 * input), so the usage page, the upcoming preview, budget and forecast alerts and the invoice job
 * all get the same answer to the same question. The snapshot is gathered in one place
 * (lib/app/invoicing/snapshot.ts); the job stores what `computeInvoices` returns and syncs it.
 *
 * Rules (docs/invoicing.md):
 * - A period is priced on the plan in force for it. Periods before the customer's first plan entry,
 *   and every period of a customer that was never created, are priced on `default`.
 * - Fixed fees (base fee, flat charges) are owed only for periods from the customer's creation on.
 * - A plan id missing from the catalog is an error (`plan_not_found`), never a silent fallback.
 * - A period has one invoice of its own. A later invoice corrects an earlier period only when that
 *   period's own invoice exists, relative to what it billed (its baseline), so the order in which
 *   periods are invoiced never changes what a period costs in total.
 * - A correction is billed in the currency of the period it corrects: on the main invoice when the
 *   currencies match, else on an invoice of its own in the old currency.
 * - A negative total is never sent to a provider: it is carried as a credit line to the customer's
 *   next invoice in that currency (and carried again while it is still larger).
 */

/** What billing reads of a customer. */
export type BillingCustomer = Pick<Customer, 'createdAt' | 'planId' | 'plans' | 'budget' | 'stripeCustomerId'> & Partial<Pick<Customer, 'updatedAt'>>;

/**
 * The customer's budget with its currency. A budget stored before budgets carried a currency is in
 * the currency of the plan that was in force when it was last set (its customer's updatedAt), the
 * only currency it could have been checked against then.
 */
export function budgetOf(catalog: CatalogIndex, customer: BillingCustomer | undefined): { amount: string; currency: Currency } | undefined {
  const budget = customer?.budget;
  if (!budget) return undefined;
  if (budget.currency !== undefined) return { amount: budget.amount, currency: budget.currency };
  const set = Period.containing(new Date(customer!.updatedAt ?? customer!.createdAt)).key;
  return { amount: budget.amount, currency: termsFor(catalog, customer, set).plan.currency };
}

export class PlanNotFoundError extends ConflictError {
  constructor(readonly planId: string) {
    super('plan_not_found', `plan "${planId}" is not in the catalog; restore it or move the customer to another plan before this period can be priced`);
  }
}

/** The plan that prices a period, and whether the period owes the plan's fixed fees. */
export interface PeriodTerms {
  plan: Plan;
  fees: boolean;
}

export function termsFor(catalog: CatalogIndex, customer: BillingCustomer | undefined, period: string): PeriodTerms {
  if (!customer) return { plan: catalog.defaultPlan(period), fees: false };
  const created = Period.containing(new Date(customer.createdAt)).key;
  const schedule = customer.plans?.length ? customer.plans : [{ from: created, planId: customer.planId }];
  if (period < schedule[0]!.from) return { plan: catalog.defaultPlan(period), fees: false };
  return { plan: planVersionFor(catalog, planIdFor(schedule, period)!, period), fees: period >= created };
}

/** The version of a plan in force for a period, from the catalog or what was published before it. */
function planVersionFor(catalog: CatalogIndex, id: string, period: string): Plan {
  const plan = catalog.planVersion(id, period);
  if (!plan) throw new PlanNotFoundError(id);
  return plan;
}

// ---------------------------------------------------------------------------------------------
// The period as it accrues: usage page, budget and forecast alerts

/**
 * The budget as the page shows it and as the alerts decide on it: one computation. The budget is
 * rounded to the currency's minor unit first; a budget that rounds to zero is no budget.
 */
export interface BudgetUse {
  amount: string;
  /** The cost so far (rounded lines) and its percent of the budget. */
  spent: string;
  percentUsed: string;
  /** The projected period-end cost and its percent of the budget. */
  projected: string;
  projectedPercent: string;
}

export function budgetUse(budget: { amount: string; currency: string } | undefined, currency: string, spent: string, projected: string): BudgetUse | null {
  // A budget in another currency does not apply to the period: money is never converted silently.
  if (!budget || budget.currency !== currency) return null;
  const amount = roundToMinor(budget.amount, currency);
  if (dec(amount).isZero()) return null;
  return { amount, spent, percentUsed: percentOf(spent, amount), projected, projectedPercent: percentOf(projected, amount) };
}

interface MeterEstimate extends MeterPrice {
  meter: string;
  /** The counter as stored (a LATEST meter may be negative; it prices as zero). */
  raw: string;
  projectedValue: string;
}

export interface PeriodEstimate {
  period: Period;
  terms: PeriodTerms;
  meters: MeterEstimate[];
  /** The period's own lines (no corrections of earlier periods). */
  lines: InvoiceLine[];
  subtotal: string;
  /** The base fee the period owes, rounded ("0.00" when none). */
  baseFee: string;
  projectedSubtotal: string;
  budget: BudgetUse | null;
}

export interface EstimateInput {
  catalog: CatalogIndex;
  customer: BillingCustomer | undefined;
  period: Period;
  /** The period's counters, meter slug -> value. */
  counters: Record<string, string>;
  now: Date;
  /** The terms an invoiced period was priced with (its invoice's copy of the plan): they price it from then on. */
  terms?: PeriodTerms;
}

/** What the period costs so far and projected to its end, and how much of the budget that is. */
export function estimatePeriod(input: EstimateInput): PeriodEstimate {
  const { catalog, customer, period, now } = input;
  const terms = input.terms ?? termsFor(catalog, customer, period.key);
  const { plan, fees } = terms;
  const meters = catalog.meters();
  const raw = Object.fromEntries(meters.map((m) => [m.slug, input.counters[m.slug] ?? '0']));
  const values = billable(raw);
  const projected = billable(
    Object.fromEntries(
      meters.map((m) => [
        m.slug,
        projectToPeriodEnd({ value: raw[m.slug]!, aggregation: m.aggregation, periodStart: period.start, periodEnd: period.end, now }),
      ]),
    ),
  );
  const current = priceUsage({ plan, meters, usage: values, fees });
  const projectedSubtotal = priceUsage({ plan, meters, usage: projected, fees }).total;
  return {
    period,
    terms,
    meters: meters.map((m) => ({ ...priceMeter(plan, m.slug, values[m.slug]!), raw: raw[m.slug]!, projectedValue: projected[m.slug]! })),
    lines: current.lines,
    subtotal: current.total,
    baseFee: roundToMinor(fees ? (plan.baseFee ?? '0') : '0', plan.currency),
    projectedSubtotal,
    budget: budgetUse(budgetOf(catalog, customer), plan.currency, current.total, projectedSubtotal),
  };
}

// ---------------------------------------------------------------------------------------------
// Invoices

/** What the compute reads of an invoice record already stored. */
export type StoredInvoice = Pick<
  InvoiceRecord,
  | 'key'
  | 'period'
  | 'kind'
  | 'status'
  | 'planId'
  | 'planVersion'
  | 'plan'
  | 'currency'
  | 'total'
  | 'invoicedQuantities'
  | 'invoicedVersion'
  | 'creditAppliedTo'
  | 'creditSettlement'
> &
  Partial<Pick<InvoiceRecord, 'fees'>>;

export const CREDIT_CARRIED = 'credit_carried';

export interface InvoiceSnapshot {
  customerId: string;
  customer: BillingCustomer | undefined;
  period: Period;
  /** Counters by period key: the invoiced period and every earlier one that has an own invoice in the lookback. */
  counters: Record<string, Record<string, string>>;
  /** Every invoice record of the customer. */
  records: StoredInvoice[];
  /** How many periods before `period` its invoices correct (correctionLookback). */
  lookback: number;
}

export interface ComputedInvoice {
  key: string;
  period: string;
  kind: InvoiceKind;
  planId: string;
  /** Own invoices: the plan version that priced the period; corrections in another currency: that of the latest period they correct. */
  planVersion: number;
  /** Own invoices: the version itself, kept with the record. */
  plan?: Plan;
  currency: Plan['currency'];
  /** Whether the period owed its fixed fees (own invoices). */
  fees: boolean;
  lines: InvoiceLine[];
  total: string;
  totalMinor: string;
  /** The period's quantities as billed (own invoices; the baseline of later corrections). */
  quantities: Record<string, string>;
  /** Earlier periods this invoice corrects, and the totals it bills them up to. */
  corrections: { period: string; quantities: Record<string, string> }[];
}

export interface ComputedInvoices {
  /** The period's own invoice first, then one per other currency that has corrections. */
  invoices: ComputedInvoice[];
  /** Baselines that move with these invoices, each expected at its stored version. */
  baselines: { period: string; quantities: Record<string, string>; version: number }[];
  /** Carried credits these invoices use up. */
  credits: { key: string; appliedTo: string }[];
}

const ownKey = (period: string) => period;
const correctionKey = (period: string, currency: string) => `${period}#${currency}`;

/**
 * Everything invoicing `snapshot.period` would produce now: the period's own invoice (its usage and
 * fees, corrections of earlier invoiced periods in the same currency, carried credits) and, for
 * corrections in another currency, an invoice of their own.
 */
export function computeInvoices(catalog: CatalogIndex, snapshot: InvoiceSnapshot): ComputedInvoices {
  const { period, records } = snapshot;
  const meters = catalog.knownMeters();
  const terms = termsFor(catalog, snapshot.customer, period.key);
  const quantities = billable(snapshot.counters[period.key] ?? {});
  const own = priceUsage({ plan: terms.plan, meters, usage: quantities, fees: terms.fees });

  const byCurrency = new Map<string, { plan: Pick<Plan, 'id' | 'version'>; lines: InvoiceLine[]; corrections: ComputedInvoice['corrections'] }>();
  const bucket = (currency: string, plan: Pick<Plan, 'id' | 'version'>) =>
    byCurrency.get(currency) ?? byCurrency.set(currency, { plan, lines: [], corrections: [] }).get(currency)!;
  bucket(terms.plan.currency, terms.plan).lines.push(...own.lines);

  const baselines: ComputedInvoices['baselines'] = [];
  let earlier = period;
  for (let i = 0; i < snapshot.lookback; i++) {
    earlier = earlier.previous();
    const invoiced = records.find((r) => r.kind === 'period' && r.key === ownKey(earlier.key));
    // Not invoiced yet: its own invoice will bill all of it, whenever it runs.
    if (!invoiced?.invoicedQuantities) continue;
    const now = billable(snapshot.counters[earlier.key] ?? {});
    // Nothing changed since it was billed: nothing to price (not even a plan to look up).
    if (sameQuantities(now, invoiced.invoicedQuantities)) continue;
    const plan = pricedWith(catalog, invoiced);
    const lines = correctionLines(plan, meters, now, invoiced.invoicedQuantities, earlier.key);
    if (lines.length === 0) continue;
    const b = bucket(plan.currency, plan);
    b.lines.push(...lines);
    b.corrections.push({ period: earlier.key, quantities: now });
    baselines.push({ period: earlier.key, quantities: now, version: invoiced.invoicedVersion ?? 1 });
  }

  const invoices: ComputedInvoice[] = [];
  const credits: ComputedInvoices['credits'] = [];
  for (const [currency, b] of byCurrency) {
    const main = currency === terms.plan.currency;
    // An invoice in another currency exists only for its corrections; a credit alone would only be carried again.
    if (!main && b.corrections.length === 0) continue;
    const key = main ? ownKey(period.key) : correctionKey(period.key, currency);
    const lines = [...b.lines];
    for (const credit of carriedCredits(records, currency)) {
      lines.push(creditLine(credit));
      credits.push({ key: credit.key, appliedTo: key });
    }
    const draft = invoiceDraft(currency as Plan['currency'], lines);
    invoices.push({
      key,
      period: period.key,
      kind: main ? 'period' : 'correction',
      planId: b.plan.id,
      planVersion: b.plan.version,
      ...(main ? { plan: terms.plan } : {}),
      currency: draft.currency,
      fees: main && terms.fees,
      lines: draft.lines,
      total: draft.total,
      totalMinor: toMinorUnits(draft.total, currency),
      quantities: main ? quantities : {},
      corrections: b.corrections,
    });
  }
  // The own invoice first, the others in currency order (a stable shape for previews and records).
  invoices.sort((a, b) => (a.kind === b.kind ? (a.key < b.key ? -1 : 1) : a.kind === 'period' ? -1 : 1));
  return { invoices, baselines, credits };
}

/**
 * The version an invoiced period was priced with: the copy its invoice keeps, or for an invoice made
 * before plans had versions, that plan's version in force for the period.
 */
export function pricedWith(catalog: CatalogIndex, invoiced: StoredInvoice): Plan {
  return invoiced.plan ?? planVersionFor(catalog, invoiced.planId, invoiced.period);
}

/** Whether two quantity maps say the same (a meter missing from one counts 0). */
function sameQuantities(a: Record<string, string>, b: Record<string, string>): boolean {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].every((m) => dec(a[m] ?? '0').eq(dec(b[m] ?? '0')));
}

/**
 * A period that has its own invoice, as every surface shows it: the invoice, everything billed for
 * the period so far in its currency (its own lines and the corrections later invoices carried), and
 * the correction pending since (late events, voids), priced with the period's own version, with the
 * period whose invoice will carry it (null when no invoice will: the correction window has passed).
 * What the period costs now is always billed + pending.
 */
export interface InvoicedPeriod {
  invoice: StoredInvoice & { lines: InvoiceLine[] };
  billed: string;
  pending: { currency: Currency; lines: InvoiceLine[]; total: string; carriedBy: string | null } | null;
}

export function invoicedPeriod(
  catalog: CatalogIndex,
  period: Period,
  records: (StoredInvoice & { lines: InvoiceLine[] })[],
  counters: Record<string, string>,
  lookback: number,
): InvoicedPeriod | undefined {
  const invoice = records.find((r) => r.kind === 'period' && r.key === ownKey(period.key));
  if (!invoice) return undefined;
  const billed = roundToMinor(
    sum(records.flatMap((r) => r.lines.filter((l) => l.kind !== 'credit' && (l.period ?? r.period) === period.key).map((l) => dec(l.amount)))),
    invoice.currency,
  );
  const now = billable(counters);
  const baseline = invoice.invoicedQuantities ?? {};
  if (sameQuantities(now, baseline)) return { invoice, billed, pending: null };
  const lines = correctionLines(pricedWith(catalog, invoice), catalog.knownMeters(), now, baseline, period.key);
  if (lines.length === 0) return { invoice, billed, pending: null };
  let carriedBy: string | null = null;
  for (let p = period.next(), i = 0; i < lookback && carriedBy === null; i++, p = p.next())
    if (!records.some((r) => r.kind === 'period' && r.key === p.key)) carriedBy = p.key;
  const draft = invoiceDraft(invoice.currency as Plan['currency'], lines);
  return { invoice, billed, pending: { currency: invoice.currency, lines: draft.lines, total: draft.total, carriedBy } };
}

/** Credits carried from earlier negative invoices in this currency and not yet used. */
function carriedCredits(records: StoredInvoice[], currency: string): StoredInvoice[] {
  return records
    .filter((r) => r.status === CREDIT_CARRIED && r.currency === currency && r.creditAppliedTo === undefined && r.creditSettlement === undefined)
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}

function creditLine(from: StoredInvoice): InvoiceLine {
  return toLine(from.currency as Plan['currency'], {
    kind: 'credit',
    period: from.period,
    lineKey: `credit:${from.key}`,
    quantity: dec('1'),
    unitAmount: dec(from.total),
    description: `Credit carried from the ${from.period} invoice`,
  });
}
