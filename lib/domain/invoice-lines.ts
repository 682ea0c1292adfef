import type { Decimal } from 'decimal.js';
import type { Charge, Meter, Plan } from './catalog';
import {
  currencyMinorDigits,
  dec,
  formatMoney,
  formatQuantity,
  Money,
  parseQuantity,
  percentOf,
  roundToMinor,
  sum,
  toMinorUnits,
  toPlain,
  ZERO,
} from './money';
import { Period } from './period';
import { priceCharge, type PriceResult, type TierDetail } from './pricing';
import { quantityWithUnit, unitFor } from './units';

/**
 * From period quantities to invoice lines.
 *
 * Rounding policy: every line is computed exactly and rounded half-up to the currency's
 * minor unit ONCE; the invoice total, a meter's amount on the usage page and a late correction are
 * all sums of rounded lines, so what the customer sees always adds up and matches Stripe to the
 * cent. Lines that round to zero carry no money and are not emitted (free tiers stay visible in the
 * meter-level tier details instead).
 */

/**
 * usage: a priced tier (or package) of a meter; base_fee and flat: the fixed fees of the period;
 * correction: the change of an earlier, invoiced period; credit: a negative total of an earlier
 * invoice carried forward (never sent to a provider as a negative invoice).
 */
export type InvoiceLineKind = 'usage' | 'base_fee' | 'flat' | 'correction' | 'credit';

export interface InvoiceLine {
  kind: InvoiceLineKind;
  meter?: string;
  /** Catalog index of the tier this line prices (graduated and volume charges). */
  tier?: number;
  /** The period the money belongs to when it is not the invoice's own: the corrected period, a credit's origin. */
  period?: string;
  description: string;
  /** Exact decimal string; quantity × unitAmount is the exact amount before rounding. */
  quantity: string;
  /** Exact unit price with at least the currency's minor digits: "0.001", "8.00", "49.00". */
  unitAmount: string;
  /** Rounded half-up to the currency's minor unit, e.g. "76.73" (usd) or "120" (jpy). */
  amount: string;
  /** The amount as an exact integer of minor units ("7673"); a string because it may pass 2^53. */
  amountMinor: string;
  /** Stable id of the line within its invoice (idempotency keys): "api_calls:tier:1", "base_fee". */
  lineKey: string;
}

export interface InvoiceDraft {
  currency: Plan['currency'];
  lines: InvoiceLine[];
  /** Sum of the rounded line amounts. */
  total: string;
}

export interface PriceUsageInput {
  plan: Plan;
  /** Catalog meters, for display names and units in descriptions. */
  meters: Meter[];
  /** Period quantity per meter slug (decimal strings); a charged meter without usage counts 0. */
  usage: Record<string, string>;
  /**
   * Quantities already invoiced for this period. When given, the usage is a LATE update of an
   * invoiced period and the draft holds only its correction lines; `period` is then
   * required to name the corrected period.
   */
  invoiced?: Record<string, string>;
  /** The period (YYYY-MM) of `usage`; required with `invoiced`. */
  period?: string;
  /**
   * Whether the period owes the plan's fixed fees (base fee, flat charges); default true. A
   * customer owes them only from the period it was created in (usage metered before that is
   * priced on the default plan without them).
   */
  fees?: boolean;
}

export interface MeterPrice {
  meter: string;
  value: string;
  included: string;
  /** value / included × 100 with 2 decimals, truncated (percentOf); null when nothing is included. */
  percentUsed: string | null;
  /** What the meter adds to the invoice: the sum of its rounded lines. */
  amount: string;
  /** The exact, unrounded price of the charge. */
  exactAmount: string;
  tiers: TierDetail[];
}

/** Prices a period's usage on a plan: base fee, then each charge in plan order, tier by tier. */
export function priceUsage(input: PriceUsageInput): InvoiceDraft {
  const { plan, meters, usage, invoiced, period } = input;
  if (invoiced !== undefined) {
    if (period === undefined) throw new TypeError('period is required to price a correction of an invoiced period');
    return invoiceDraft(plan.currency, correctionLines(plan, meters, usage, invoiced, period));
  }
  const fees = input.fees ?? true;
  const lines: InvoiceLine[] = [];
  if (fees && plan.baseFee !== undefined) {
    lines.push(
      toLine(plan.currency, {
        kind: 'base_fee',
        lineKey: 'base_fee',
        quantity: dec('1'),
        unitAmount: dec(plan.baseFee),
        description: `${plan.name}: base fee`,
      }),
    );
  }
  for (const charge of plan.charges) {
    if (!fees && charge.model === 'flat') continue;
    lines.push(...chargeLines(plan.currency, charge, labelOf(meters, charge.meter), quantityOf(usage, charge.meter)));
  }
  // No zero-amount lines: a free tier, a zero base fee or a fee that rounds to nothing carries no money.
  return invoiceDraft(
    plan.currency,
    lines.filter((l) => l.amountMinor !== '0'),
  );
}

/** Totals lines that were rounded already (e.g. a period's lines plus corrections of an earlier one). */
export function invoiceDraft(currency: Plan['currency'], lines: InvoiceLine[]): InvoiceDraft {
  const total = sum(lines.map((l) => dec(l.amount, 'line amount')));
  return { currency, lines, total: roundToMinor(total, currency) };
}

/** One meter on the usage page: value, allowance used, and its amount as it would be invoiced. */
export function priceMeter(plan: Plan, meter: string, quantity: string): MeterPrice {
  const q = parseQuantity(quantity);
  const charge = plan.charges.find((c) => c.meter === meter);
  if (charge === undefined) {
    return { meter, value: toPlain(q), included: '0', percentUsed: null, amount: roundToMinor(ZERO, plan.currency), exactAmount: '0', tiers: [] };
  }
  const result = priceCharge(charge, toPlain(q));
  const included = dec(charge.included, 'included');
  const billed = billedAmount(plan.currency, charge, q, result);
  return {
    meter,
    value: toPlain(q),
    included: toPlain(included),
    percentUsed: included.isZero() ? null : percentOf(q, included),
    amount: roundToMinor(billed, plan.currency),
    exactAmount: result.amount,
    tiers: result.tiers,
  };
}

/**
 * Correction lines for usage that arrived after its period was invoiced. Per charged
 * meter: (sum of its rounded lines at the quantity now) - (sum of its rounded lines at the quantity
 * invoiced), i.e. on the same line-rounding basis as the original invoice, so that invoiced lines
 * plus corrections always equal what the period would have been billed with all its usage, and
 * graduated tiers stay exact. A line only when the difference is non-zero; it may be negative
 * (e.g. a LATEST meter that went down). A meter missing from a map counts 0.
 */
export function correctionLines(
  plan: Plan,
  meters: Meter[],
  nowTotals: Record<string, string>,
  invoicedTotals: Record<string, string>,
  period: string,
): InvoiceLine[] {
  if (!Period.isValidKey(period)) throw new RangeError(`period must be YYYY-MM, got ${JSON.stringify(period)}`);
  const lines: InvoiceLine[] = [];
  for (const charge of plan.charges) {
    const now = parseQuantity(quantityOf(nowTotals, charge.meter), `${charge.meter} quantity now`);
    const before = parseQuantity(quantityOf(invoicedTotals, charge.meter), `${charge.meter} quantity invoiced`);
    // The same quantity prices the same: nothing to correct, and no need to price it twice.
    if (now.eq(before)) continue;
    const difference = billedAmount(plan.currency, charge, now).minus(billedAmount(plan.currency, charge, before));
    if (difference.isZero()) continue;
    const label = labelOf(meters, charge.meter);
    const delta = now.minus(before);
    const signed = `${delta.isNegative() ? '' : '+'}${formatQuantity(delta)}`;
    lines.push(
      toLine(plan.currency, {
        kind: 'correction',
        meter: charge.meter,
        period,
        lineKey: `${charge.meter}:correction:${period}`,
        quantity: dec('1'),
        unitAmount: difference,
        description: `${label.displayName}: correction for ${period} (${signed} ${unitFor(delta, label.unit)})`,
      }),
    );
  }
  return lines;
}

/** A meter's quantity from a usage map; own keys only (a meter may be called "constructor"). */
function quantityOf(totals: Record<string, string>, meter: string): string {
  return Object.prototype.hasOwnProperty.call(totals, meter) ? (totals[meter] ?? '0') : '0';
}

interface MeterLabel {
  slug: string;
  displayName: string;
  unit: string;
}

function labelOf(meters: Meter[], slug: string): MeterLabel {
  const meter = meters.find((m) => m.slug === slug);
  return { slug, displayName: meter?.displayName ?? slug, unit: meter?.unit ?? 'units' };
}

/** An invoice line before rounding: quantity × unitAmount is its exact amount. */
export interface LinePart {
  kind: InvoiceLineKind;
  meter?: string;
  tier?: number;
  period?: string;
  lineKey: string;
  quantity: Decimal;
  unitAmount: Decimal;
  description: string;
}

export function toLine(currency: Plan['currency'], part: LinePart): InvoiceLine {
  const amount = roundToMinor(part.quantity.times(part.unitAmount), currency);
  return {
    kind: part.kind,
    ...(part.meter !== undefined ? { meter: part.meter } : {}),
    ...(part.tier !== undefined ? { tier: part.tier } : {}),
    ...(part.period !== undefined ? { period: part.period } : {}),
    description: part.description,
    quantity: toPlain(part.quantity),
    unitAmount: part.unitAmount.toFixed(Math.max(currencyMinorDigits(currency), part.unitAmount.decimalPlaces())),
    amount,
    amountMinor: toMinorUnits(amount, currency),
    lineKey: part.lineKey,
  };
}

function chargeLines(currency: Plan['currency'], charge: Charge, label: MeterLabel, quantity: string): InvoiceLine[] {
  const q = parseQuantity(quantity, `${charge.meter} quantity`);
  return chargeParts(charge, q, priceCharge(charge, toPlain(q)), label, currency).map((p) => toLine(currency, p));
}

/** What a charge adds to an invoice: the sum of its rounded lines (zero lines add nothing). */
function billedAmount(currency: Plan['currency'], charge: Charge, quantity: Decimal, priced?: PriceResult): Decimal {
  const result = priced ?? priceCharge(charge, toPlain(quantity));
  return sum(chargeParts(charge, quantity, result, labelOf([], charge.meter), currency).map((p) => dec(roundToMinor(p.exact, currency))));
}

/**
 * Splits a priced charge into invoice line parts: one per reached tier (its units × unit price) and
 * one per charged tier flat fee, so quantity × unitAmount always equals the line's exact amount.
 */
function chargeParts(charge: Charge, quantity: Decimal, result: PriceResult, label: MeterLabel, currency: Plan['currency']): (LinePart & { exact: Decimal })[] {
  const name = label.displayName;
  const unit = label.unit;
  const money = (v: string): string => formatMoney(v, currency);
  const part = (p: LinePart): LinePart & { exact: Decimal } => ({ ...p, exact: p.quantity.times(p.unitAmount) });
  const meter = charge.meter;
  switch (charge.model) {
    case 'graduated':
    case 'volume':
      return result.tiers.flatMap((t) => {
        const range = rangeText(t, charge.model);
        const where = charge.model === 'volume' ? `all units, volume tier ${range ?? 'for any quantity'}` : range;
        const parts = [
          part({
            kind: 'usage',
            meter,
            tier: t.index,
            lineKey: `${meter}:tier:${t.index}`,
            quantity: dec(t.quantity),
            unitAmount: dec(t.unitPrice),
            description: `${name}: ${quantityWithUnit(t.quantity, unit)} × ${money(t.unitPrice)}${where ? ` (${where})` : ''}`,
          }),
        ];
        if (t.flatFee !== undefined) {
          parts.push(
            part({
              kind: 'usage',
              meter,
              tier: t.index,
              lineKey: `${meter}:tier:${t.index}:flat_fee`,
              quantity: dec('1'),
              unitAmount: dec(t.flatFee),
              description: `${name}: tier flat fee${range ? ` (${range})` : ''}`,
            }),
          );
        }
        return parts;
      });
    case 'package': {
      const detail = result.tiers[0];
      if (detail === undefined) return [];
      const included = dec(charge.included);
      const billable = Money.max(ZERO, quantity.minus(included));
      const above = included.isZero()
        ? quantityWithUnit(billable, unit)
        : `${quantityWithUnit(billable, unit)} above the ${quantityWithUnit(included, unit)} included`;
      return [
        part({
          kind: 'usage',
          meter,
          lineKey: `${meter}:package`,
          quantity: dec(detail.quantity),
          unitAmount: dec(detail.unitPrice),
          description: `${name}: ${formatQuantity(detail.quantity)} × ${quantityWithUnit(charge.packageSize, unit)} ${unitFor(detail.quantity, 'packages')} × ${money(detail.unitPrice)} (${above})`,
        }),
      ];
    }
    case 'flat':
      return [
        part({
          kind: 'flat',
          meter,
          lineKey: `${meter}:flat`,
          quantity: dec('1'),
          unitAmount: dec(charge.amount),
          description: `${name}: flat fee for the period`,
        }),
      ];
    default:
      return unknownCharge(charge);
  }
}

function unknownCharge(charge: never): never {
  throw new Error(`unknown charge model ${JSON.stringify((charge as { model?: unknown }).model)}`);
}

/**
 * A tier's range for descriptions: "10,000–100,000", "above 1,000,000", and for the first tier
 * "first 10,000" (graduated) or "up to 50,000" (volume); undefined for a single open tier from 0.
 */
function rangeText(t: TierDetail, model: 'graduated' | 'volume'): string | undefined {
  const from = dec(t.from);
  if (t.upTo === null) return from.isZero() ? undefined : `above ${formatQuantity(t.from)}`;
  if (from.isZero()) return model === 'volume' ? `up to ${formatQuantity(t.upTo)}` : `first ${formatQuantity(t.upTo)}`;
  return `${formatQuantity(t.from)}–${formatQuantity(t.upTo)}`;
}
