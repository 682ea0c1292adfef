import type { Decimal } from 'decimal.js';
import type { Plan } from './catalog';
import type { BudgetUse } from './billing';
import { dec, formatMoney, formatQuantity, percentOf, toPlain } from './money';
import { quantityWithUnit } from './units';

/**
 * Usage and budget alerts: which thresholds a customer's period has reached, and what the
 * alert says. Pure: no I/O, no clock; every quantity and amount is an exact decimal.
 *
 * Evaluation is LEVEL-triggered: `evaluateAlerts` returns every threshold reached right now, not
 * only the ones crossed since last time. `selectAlerts` then decides what is new: per kind and
 * meter one message, for the highest threshold reached; the lower new ones are recorded as passed
 * (superseded), never sent. The caller claims each key once per (customer, period) (a conditional
 * write) and sends only what it won, so evaluating again, from any number of Lambdas at once, is
 * safe, and a jump over 80, 90 and 100% sends one message, for 100%.
 *
 * Kinds:
 * - `included`: a charged meter's value >= T% of the charge's `included` units (thresholds from
 *   `plan.alertThresholds.included`); meters without a charge or with nothing included: none.
 * - `budget`: the estimated cost so far (the invoice subtotal) >= T% of the monthly budget
 *   (thresholds from `plan.alertThresholds.budget`); no budget or a zero budget: none.
 * - `forecast`: the projected period-end cost strictly above the budget: one alert, threshold 100.
 * Money is compared as it would be invoiced: rounded to the currency's minor unit first.
 */

export type AlertKind = 'included' | 'budget' | 'forecast';

export interface AlertCandidate {
  kind: AlertKind;
  /** The meter slug for `included`; null for `budget` and `forecast`. */
  meter: string | null;
  /** Percent of the limit that triggers the alert (an integer, e.g. 80). */
  threshold: number;
  /** The measured value: a quantity (`included`) or an amount rounded to the minor unit. */
  value: string;
  /** What the threshold is a percentage of: the included units or the budget amount. */
  limit: string;
  /**
   * value / limit × 100 with 2 decimals, truncated (never rounded up), so that it is always >= the
   * threshold of the alert and never shows "80.00" for 79.996%.
   */
  percent: string;
  /** Stable id of the alert within a (customer, period): "included#api_calls#80", "budget#-#50", "forecast#-#100". */
  key: string;
}

export interface EvaluateAlertsInput {
  plan: Plan;
  /** Period values per meter slug (decimal strings); a charged meter that is missing counts 0. */
  values: Record<string, string>;
  /**
   * The budget as the usage page shows it (`budgetUse` of the period estimate): the same
   * percentages decide the alerts, so the page and the alerts never disagree. Null: no budget.
   */
  budget: BudgetUse | null;
  /**
   * Whether enough of the period has gone for its projection to warrant an alert (forecastDue):
   * one hour into a month a projection multiplies that hour ~700 times, and the period's one
   * forecast alert would go on noise. Default true.
   */
  forecast?: boolean;
}

/** A forecast alert waits until this much of the period has gone (the page shows the projection all along). */
const FORECAST_MIN_ELAPSED_MS = 3 * 86_400_000;

/** Whether a period's projection is old enough to forecast on, at `now`. */
export function forecastDue(periodStart: Date, now: Date): boolean {
  return now.getTime() - periodStart.getTime() >= FORECAST_MIN_ELAPSED_MS;
}

const KIND_ORDER: Record<AlertKind, number> = { included: 0, budget: 1, forecast: 2 };
/** Threshold of the single forecast alert. */
const FORECAST_THRESHOLD = 100;

function alertKey(kind: AlertKind, meter: string | null, threshold: number): string {
  return `${kind}#${meter ?? '-'}#${threshold}`;
}

/** Every alert threshold currently reached, sorted by kind (included, budget, forecast), meter, threshold. */
export function evaluateAlerts(input: EvaluateAlertsInput): AlertCandidate[] {
  const { plan, values } = input;
  const candidates: AlertCandidate[] = [];

  for (const charge of plan.charges) {
    const included = dec(charge.included, `included of ${charge.meter}`);
    if (!included.gt(0)) continue;
    const raw = Object.prototype.hasOwnProperty.call(values, charge.meter) ? values[charge.meter] : undefined;
    const value = dec(raw ?? '0', `value of ${charge.meter}`);
    for (const t of thresholds(plan.alertThresholds.included, 'alertThresholds.included')) {
      if (reached(value, included, t)) candidates.push(candidate('included', charge.meter, t, toPlain(value), toPlain(included), percentOf(value, included)));
    }
  }

  const budget = input.budget;
  if (budget) {
    for (const t of thresholds(plan.alertThresholds.budget, 'alertThresholds.budget')) {
      // percentUsed is truncated to 2 decimals, so for a whole threshold this is exactly spent >= t% of the budget.
      if (dec(budget.percentUsed).gte(t)) candidates.push(candidate('budget', null, t, budget.spent, budget.amount, budget.percentUsed));
    }
    // Early in a period a projection is mostly noise; spending above the budget already is not.
    const forecastable = input.forecast !== false || dec(budget.spent).gt(budget.amount);
    if (forecastable && dec(budget.projected).gt(budget.amount)) {
      candidates.push(candidate('forecast', null, FORECAST_THRESHOLD, budget.projected, budget.amount, budget.projectedPercent));
    }
  }

  return candidates.sort(compareCandidates);
}

export interface AlertSelection {
  /** One per kind and meter at most: the highest threshold reached, when it is new. */
  send: AlertCandidate[];
  /** New thresholds below a higher one reached (sent now or before): recorded as passed, never sent. */
  superseded: { candidate: AlertCandidate; by: string }[];
}

/**
 * Of the thresholds reached now (`evaluateAlerts`), which are new (not in `claimed`), and of those
 * which one each kind and meter sends: the highest reached. A new threshold below a higher one,
 * whether that one is new or was claimed before (a threshold added to the plan later), is only
 * recorded as passed: a message about 80% after one about 100% would say less, and later.
 */
export function selectAlerts(candidates: readonly AlertCandidate[], claimed: ReadonlySet<string>): AlertSelection {
  const groups = new Map<string, AlertCandidate[]>();
  for (const c of [...candidates].sort(compareCandidates)) {
    const group = `${c.kind}#${c.meter ?? '-'}`;
    groups.set(group, [...(groups.get(group) ?? []), c]);
  }
  const send: AlertCandidate[] = [];
  const superseded: AlertSelection['superseded'] = [];
  for (const group of groups.values()) {
    const top = group[group.length - 1]!;
    if (!claimed.has(top.key)) send.push(top);
    for (const c of group) if (c !== top && !claimed.has(c.key)) superseded.push({ candidate: c, by: top.key });
  }
  return { send, superseded };
}

/** value >= threshold% of limit, exactly (value × 100 >= threshold × limit: no division). */
function reached(value: Decimal, limit: Decimal, threshold: number): boolean {
  return value.times(100).gte(limit.times(threshold));
}

function thresholds(list: readonly number[], what: string): number[] {
  for (const t of list) {
    if (!Number.isSafeInteger(t) || t < 1) throw new RangeError(`${what} must hold positive integer percentages, got ${JSON.stringify(t)}`);
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

function candidate(kind: AlertKind, meter: string | null, threshold: number, value: string, limit: string, percent: string): AlertCandidate {
  return { kind, meter, threshold, value, limit, percent, key: alertKey(kind, meter, threshold) };
}

function compareCandidates(a: AlertCandidate, b: AlertCandidate): number {
  if (a.kind !== b.kind) return KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
  const am = a.meter ?? '';
  const bm = b.meter ?? '';
  if (am !== bm) return am < bm ? -1 : 1;
  return a.threshold - b.threshold;
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface AlertContext {
  customerId: string;
  customerName?: string;
  /** YYYY-MM */
  period: string;
  currency: string;
  /** The plan and its version in force for the period (what the thresholds and prices come from). */
  plan?: { id: string; version: number };
  /** For `included` alerts: the meter's display name and unit from the catalog. */
  meterDisplayName?: string;
  unit?: string;
  /** The projected period-end cost (rounded), what the customer is heading for. */
  projected?: string;
  /** The monthly budget amount, when the customer has one. */
  budget?: string;
  /** The customer's usage page; absent, the message points at the usage API instead. */
  usagePageUrl?: string;
  /** Lower thresholds of the same kind and meter passed in the same update (recorded, not sent). */
  alsoPassed?: number[];
}

/** The JSON body of an alert message. */
interface AlertBody {
  customerId: string;
  period: string;
  kind: AlertKind;
  meter: string | null;
  threshold: number;
  value: string;
  limit: string;
  percent: string;
  currency: string;
  /** The plan and version in force for the period, or null when unknown. */
  plan: { id: string; version: number } | null;
  /** The projected period-end cost, or null when unknown. */
  projected: string | null;
  /** The monthly budget, or null when the customer has none. */
  budget: string | null;
  usagePageUrl: string | null;
  /** Lower thresholds passed in the same update (recorded as superseded, not sent on their own). */
  alsoPassed: number[];
  /** For people: what happened, where the period is heading, and where to look next. */
  message: string;
}

/** SNS message attributes (all strings); `meter` is "-" for budget and forecast alerts. */
interface AlertAttributes {
  customerId: string;
  kind: AlertKind;
  meter: string;
  threshold: string;
}

export interface AlertMessage {
  /** One line, at most MAX_SUBJECT_LENGTH characters, e.g. "Acme: API Calls at 90% of included usage (2026-11)". */
  subject: string;
  body: AlertBody;
  attributes: AlertAttributes;
}

/** SNS wants subjects "less than 100 characters long"; 99 satisfies every reading of that. */
export const MAX_SUBJECT_LENGTH = 99;

export function alertMessage(candidate: AlertCandidate, ctx: AlertContext): AlertMessage {
  const who = oneLine(ctx.customerName ?? '') || ctx.customerId;
  const label = oneLine(ctx.meterDisplayName ?? '') || (candidate.meter ?? '');
  const unit = oneLine(ctx.unit ?? '');
  const qty = (q: string) => quantityWithUnit(q, unit);
  const money = (m: string) => formatMoney(m, ctx.currency);
  const customer = ctx.customerName && oneLine(ctx.customerName) ? `${who} (${ctx.customerId})` : ctx.customerId;
  const { kind, threshold, value, limit, percent } = candidate;
  const alsoPassed = [...new Set(ctx.alsoPassed ?? [])].filter((t) => t < threshold).sort((a, b) => a - b);
  const passed =
    alsoPassed.length > 0 ? `; ${listOf(alsoPassed.map((t) => `${t}%`))} ${alsoPassed.length === 1 ? 'was' : 'were'} passed in the same update` : '';
  const usagePageUrl = ctx.usagePageUrl !== undefined && /^https?:\/\/[^\s]+$/.test(ctx.usagePageUrl) ? ctx.usagePageUrl : null;

  // The threshold and, once usage has gone past it, where it is now: "crossed 100% ..., now at 240%".
  const level = (what: string) =>
    beyond(percent, threshold) ? `crossed ${threshold}% of ${what}, now at ${wholePercent(percent)}%` : `at ${threshold}% of ${what}`;
  let subject: string;
  const sentences: string[] = [];
  switch (kind) {
    case 'included':
      subject = fitSubject([who, label], ([w, l]) => `${w}: ${l} ${level('included usage')} (${ctx.period})`);
      sentences.push(
        `${customer} has used ${qty(value)} of ${label} in ${ctx.period}: ${percent}% of the ${qty(limit)} included in the plan (alert threshold ${threshold}%${passed}).`,
        "Usage beyond the included amount is billed at the plan's prices.",
      );
      break;
    case 'budget':
      subject = fitSubject([who], ([w]) => `${w}: estimated cost ${level('monthly budget')} (${ctx.period})`);
      sentences.push(
        `The estimated cost of ${customer} for ${ctx.period} is ${money(value)}: ${percent}% of the monthly budget of ${money(limit)} (alert threshold ${threshold}%${passed}).`,
      );
      break;
    case 'forecast':
      subject = fitSubject(
        [who],
        ([w]) => `${w}: forecast to exceed monthly budget${beyond(percent, threshold) ? `, projected at ${wholePercent(percent)}%` : ''} (${ctx.period})`,
      );
      sentences.push(
        `The projected cost of ${customer} for ${ctx.period} is ${money(value)}, above the monthly budget of ${money(limit)} (${percent}% of it).`,
      );
      break;
  }
  // Where the period is heading (the forecast alert says it already), then where to look.
  if (kind !== 'forecast' && ctx.projected !== undefined) {
    sentences.push(
      `Projected cost for ${ctx.period}: ${money(ctx.projected)}${ctx.budget !== undefined ? `, against a monthly budget of ${money(ctx.budget)}` : ' (no monthly budget set)'}.`,
    );
  }
  sentences.push(
    usagePageUrl !== null
      ? `See the usage page: ${usagePageUrl}`
      : `See the usage: GET /api/v1/customers/${encodeURIComponent(ctx.customerId)}/usage?period=${ctx.period}`,
  );

  return {
    subject,
    body: {
      customerId: ctx.customerId,
      period: ctx.period,
      kind,
      meter: candidate.meter,
      threshold,
      value,
      limit,
      percent,
      currency: ctx.currency.toLowerCase(),
      plan: ctx.plan ?? null,
      projected: ctx.projected ?? null,
      budget: ctx.budget ?? null,
      usagePageUrl,
      alsoPassed,
      message: sentences.join(' '),
    },
    attributes: { customerId: ctx.customerId, kind, meter: candidate.meter ?? '-', threshold: String(threshold) },
  };
}

/** A percentage in whole percent, never rounded up, grouped: "240.00" -> "240", "12345.67" -> "12,345". */
function wholePercent(percent: string): string {
  return formatQuantity(dec(percent, 'percent').floor());
}

/** Whether usage is past its threshold by a whole percent or more (so "at 100%" would understate it). */
function beyond(percent: string, threshold: number): boolean {
  return dec(percent, 'percent').floor().gt(threshold);
}

/** "80%", "80% and 90%", "50%, 80% and 90%". */
function listOf(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Collapses line breaks, control characters and runs of white space into single spaces. */
function oneLine(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Renders a subject and, when it is too long, shortens the variable parts (customer name, meter
 * name) with "...", sharing the room fairly (a short part is kept whole), so that the fixed part
 * (threshold, period) always survives.
 */
function fitSubject(parts: string[], render: (parts: string[]) => string): string {
  let room = Math.max(0, MAX_SUBJECT_LENGTH - render(parts.map(() => '')).length);
  const caps = new Map<number, number>();
  const order = parts.map((p, i) => ({ i, len: p.length })).sort((a, b) => a.len - b.len);
  order.forEach(({ i, len }, k) => {
    const fair = Math.floor(room / (order.length - k));
    const cap = Math.min(len, fair);
    caps.set(i, cap);
    room -= cap;
  });
  const fitted = parts.map((p, i) => {
    const cap = caps.get(i)!;
    if (p.length <= cap) return p;
    return cap >= 4 ? `${cut(p, cap - 3).trimEnd()}...` : cut(p, cap);
  });
  return cut(render(fitted), MAX_SUBJECT_LENGTH);
}

/** The first `n` UTF-16 units of `s`, without splitting a surrogate pair. */
function cut(s: string, n: number): string {
  if (s.length <= n) return s;
  const head = s.slice(0, n);
  return /[\uD800-\uDBFF]$/.test(head) ? head.slice(0, -1) : head;
}
