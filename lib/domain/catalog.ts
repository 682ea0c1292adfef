import * as z from 'zod/mini';
import './zod-english';
import { currencyMinorDigits, isOnMinorUnit, Money } from './money';

/**
 * The catalog: meters (how events become one number per customer and period) and plans (how those
 * numbers become money). It is a file in the repository, validated when the build runs
 * (`npm run catalog:check`, and a unit test) and again when a function loads it: with zod/mini,
 * which keeps the full zod (~150 KB) out of the functions that load the catalog on their hot path.
 */

export const AGGREGATIONS = ['SUM', 'COUNT', 'MAX', 'LATEST', 'UNIQUE_COUNT'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export const CURRENCIES = ['usd', 'eur', 'gbp', 'jpy'] as const;

const matching = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));
const length = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const slug = matching(/^[a-z][a-z0-9_]{0,63}$/, 'must be lowercase letters, digits and _ (1..64, starting with a letter)');
/** Non-negative decimal with at most 12 decimal places, kept as a string so it is never a float. */
export const decimalString = matching(/^\d{1,15}(\.\d{1,12})?$/, 'must be a non-negative decimal string with at most 12 decimal places, e.g. "0.001"');
const valuePath = matching(/^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'must be a path like "$.value" or "$.usage.bytes"');

export const meterSchema = z
  .strictObject({
    slug,
    displayName: length(1, 128),
    unit: length(1, 32),
    eventType: matching(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1..128 chars of [A-Za-z0-9._:-]'),
    aggregation: z.enum(AGGREGATIONS),
    valueProperty: z.optional(valuePath),
  })
  .check(
    z.superRefine((m, ctx) => {
      if (m.aggregation !== 'COUNT' && !m.valueProperty) {
        ctx.addIssue({ code: 'custom', path: ['valueProperty'], message: `is required for ${m.aggregation} meters` });
      }
    }),
  );
export type Meter = z.infer<typeof meterSchema>;

const tierSchema = z.strictObject({ upTo: z.nullable(decimalString), unitPrice: decimalString, flatFee: z.optional(decimalString) });
export type Tier = z.infer<typeof tierSchema>;

/**
 * `included`: the free allowance that alerts and "percent used" refer to. `limit`: a hard cap per
 * period (entitlements answer hasAccess: false once usage reaches it); metering itself never stops.
 */
const chargeBase = { meter: slug, included: z._default(decimalString, '0'), limit: z.optional(decimalString) };
const tiered = { ...chargeBase, tiers: z.array(tierSchema).check(z.minLength(1)) };
export const chargeSchema = z.discriminatedUnion('model', [
  z.strictObject({ model: z.literal('graduated'), ...tiered }),
  z.strictObject({ model: z.literal('volume'), ...tiered }),
  z.strictObject({ model: z.literal('package'), ...chargeBase, packageSize: decimalString, packagePrice: decimalString }),
  z.strictObject({ model: z.literal('flat'), ...chargeBase, amount: decimalString }),
]);
export type Charge = z.infer<typeof chargeSchema>;
export type ChargeModel = Charge['model'];

const percent = z.number().check(z.int(), z.minimum(1), z.maximum(1000));
export const planSchema = z
  .strictObject({
    id: matching(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1..64 chars of [A-Za-z0-9._-]'),
    name: length(1, 128),
    currency: z.enum(CURRENCIES),
    baseFee: z.optional(decimalString),
    alertThresholds: z._default(
      z.strictObject({ included: z._default(z.array(percent), [80, 90, 100]), budget: z._default(z.array(percent), [50, 80, 100]) }),
      { included: [80, 90, 100], budget: [50, 80, 100] },
    ),
    charges: z.array(chargeSchema),
  })
  .check(
    z.superRefine((p, ctx) => {
      for (const issue of planIssues(p)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    }),
  );
export type Plan = z.infer<typeof planSchema>;

export interface CatalogIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Rules inside one plan: a meter is charged once, tiers are ordered, packages have a size, and
 * every FIXED amount (base fee, flat charge, tier flat fee, package price) is a whole number of the
 * currency's minor unit: it is billed as it stands, so "49.5" yen could never be invoiced exactly.
 * Unit prices may be finer (0.001 per call): they are multiplied before the line is rounded.
 */
function planIssues(p: Omit<Plan, 'alertThresholds'>): CatalogIssue[] {
  const issues: CatalogIssue[] = [];
  const fixed = (path: (string | number)[], amount: string | undefined) => {
    if (amount !== undefined && !isOnMinorUnit(amount, p.currency)) {
      issues.push({
        path,
        message: `${amount} is finer than the ${p.currency} minor unit (${currencyMinorDigits(p.currency)} decimals); fixed amounts are billed as they stand`,
      });
    }
  };
  fixed(['baseFee'], p.baseFee);
  const charged = new Set<string>();
  p.charges.forEach((ch, ci) => {
    const at = ['charges', ci];
    if (charged.has(ch.meter)) issues.push({ path: [...at, 'meter'], message: `meter "${ch.meter}" is charged twice` });
    charged.add(ch.meter);
    if (ch.model === 'graduated' || ch.model === 'volume') {
      tierIssues(ch.tiers).forEach((t) => issues.push({ path: [...at, 'tiers', ...t.path], message: t.message }));
      ch.tiers.forEach((t, ti) => fixed([...at, 'tiers', ti, 'flatFee'], t.flatFee));
    }
    if (ch.model === 'package') {
      if (new Money(ch.packageSize).lte(0)) issues.push({ path: [...at, 'packageSize'], message: 'must be greater than 0' });
      fixed([...at, 'packagePrice'], ch.packagePrice);
    }
    if (ch.model === 'flat') fixed([...at, 'amount'], ch.amount);
    if (ch.limit !== undefined && new Money(ch.limit).lt(ch.included)) {
      issues.push({ path: [...at, 'limit'], message: `must not be below included (${ch.included}): usage would be cut off inside the free allowance` });
    }
  });
  return issues;
}

export interface Catalog {
  meters: Meter[];
  plans: Plan[];
}

const catalogShape = z.strictObject({ meters: z.array(z.unknown()).check(z.minLength(1)), plans: z.array(z.unknown()).check(z.minLength(1)) });

/**
 * Every problem of a catalog at once: each meter and plan is validated on its own, and the
 * cross-references (unknown or duplicate meters, the default plan) are checked on whatever parsed,
 * so an invalid aggregation never hides an unknown meter in a plan.
 */
export function catalogIssues(input: unknown): CatalogIssue[] {
  const shape = catalogShape.safeParse(input);
  if (!shape.success) return shape.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message }));
  const issues: CatalogIssue[] = [];
  const collect = <T>(schema: z.ZodMiniType<T>, value: unknown, path: (string | number)[]): T | undefined => {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    issues.push(...r.error.issues.map((i) => ({ path: [...path, ...(i.path as (string | number)[])], message: i.message })));
    return undefined;
  };
  const slugOf = (raw: unknown) => (raw !== null && typeof raw === 'object' ? (raw as { slug?: unknown }).slug : undefined);
  const meters = new Set<string>();
  shape.data.meters.forEach((raw, i) => {
    collect(meterSchema, raw, ['meters', i]);
    const slugValue = slugOf(raw);
    if (typeof slugValue !== 'string') return;
    if (meters.has(slugValue)) issues.push({ path: ['meters', i, 'slug'], message: `duplicate meter "${slugValue}"` });
    meters.add(slugValue);
  });
  const plans = new Set<string>();
  shape.data.plans.forEach((raw, pi) => {
    collect(planSchema, raw, ['plans', pi]);
    const plan = (raw ?? {}) as { id?: unknown; charges?: unknown };
    if (typeof plan.id === 'string') {
      if (plans.has(plan.id)) issues.push({ path: ['plans', pi, 'id'], message: `duplicate plan "${plan.id}"` });
      plans.add(plan.id);
    }
    if (!Array.isArray(plan.charges)) return;
    plan.charges.forEach((ch: unknown, ci) => {
      const meter = ch !== null && typeof ch === 'object' ? (ch as { meter?: unknown }).meter : undefined;
      if (typeof meter === 'string' && !meters.has(meter)) issues.push({ path: ['plans', pi, 'charges', ci, 'meter'], message: `unknown meter "${meter}"` });
    });
  });
  if (!plans.has('default')) issues.push({ path: ['plans'], message: 'a plan with id "default" is required' });
  return issues;
}

/** Tier bounds must strictly increase and only the last tier may be open-ended (upTo: null). */
function tierIssues(tiers: Tier[]): CatalogIssue[] {
  const issues: CatalogIssue[] = [];
  let previous: string | null = null;
  tiers.forEach((t, i) => {
    const last = i === tiers.length - 1;
    if (t.upTo === null && !last) issues.push({ path: [i, 'upTo'], message: 'only the last tier may be open-ended (null)' });
    if (t.upTo !== null && last) issues.push({ path: [i, 'upTo'], message: 'the last tier must be open-ended (null)' });
    if (t.upTo !== null && previous !== null && compareDecimalStrings(t.upTo, previous) <= 0) {
      issues.push({ path: [i, 'upTo'], message: `must be greater than the previous tier's upTo (${previous})` });
    }
    if (t.upTo !== null) previous = t.upTo;
  });
  return issues;
}

/** Compares two decimal strings exactly (no float conversion). */
export function compareDecimalStrings(a: string, b: string): number {
  return new Money(a).comparedTo(b);
}

export class CatalogError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid catalog:\n  ${problems.join('\n  ')}`);
    this.name = 'CatalogError';
  }
}

/** Parses and validates a catalog; every problem names the field it is about, all of them at once. */
export function parseCatalog(input: unknown): Catalog {
  const issues = catalogIssues(input);
  if (issues.length > 0) throw new CatalogError(issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  const raw = input as { meters: unknown[]; plans: unknown[] };
  return { meters: raw.meters.map((m) => meterSchema.parse(m)), plans: raw.plans.map((p) => planSchema.parse(p)) };
}

/** Lookups over a validated catalog. */
export class CatalogIndex {
  private readonly meterBySlug: Map<string, Meter>;
  private readonly metersByType = new Map<string, Meter[]>();
  private readonly planById: Map<string, Plan>;

  constructor(readonly catalog: Catalog) {
    this.meterBySlug = new Map(catalog.meters.map((m) => [m.slug, m]));
    this.planById = new Map(catalog.plans.map((p) => [p.id, p]));
    for (const m of catalog.meters) this.metersByType.set(m.eventType, [...(this.metersByType.get(m.eventType) ?? []), m]);
  }

  meters(): Meter[] {
    return this.catalog.meters;
  }
  meter(slug: string): Meter | undefined {
    return this.meterBySlug.get(slug);
  }
  metersForType(eventType: string): Meter[] {
    return this.metersByType.get(eventType) ?? [];
  }
  plan(id: string): Plan | undefined {
    return this.planById.get(id);
  }
  defaultPlan(): Plan {
    return this.planById.get('default')!;
  }
}
