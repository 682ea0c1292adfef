import { z } from 'zod';
import { Money } from './money';

/**
 * The catalog: meters (how events become one number per customer and period) and plans (how those
 * numbers become money). It is a file in the repository, validated when the build runs
 * (`npm run catalog:check`, and a unit test) and again when a function loads it.
 */

export const AGGREGATIONS = ['SUM', 'COUNT', 'MAX', 'LATEST', 'UNIQUE_COUNT'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

const slug = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be lowercase letters, digits and _ (1..64, starting with a letter)');
/** Non-negative decimal with at most 12 decimal places, kept as a string so it is never a float. */
export const decimalString = z.string().regex(/^\d{1,15}(\.\d{1,12})?$/, 'must be a non-negative decimal string with at most 12 decimal places, e.g. "0.001"');
const valuePath = z.string().regex(/^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'must be a path like "$.value" or "$.usage.bytes"');

export const meterSchema = z
  .object({
    slug,
    displayName: z.string().min(1).max(128),
    unit: z.string().min(1).max(32),
    eventType: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1..128 chars of [A-Za-z0-9._:-]'),
    aggregation: z.enum(AGGREGATIONS),
    valueProperty: valuePath.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.aggregation !== 'COUNT' && !m.valueProperty) {
      ctx.addIssue({ code: 'custom', path: ['valueProperty'], message: `is required for ${m.aggregation} meters` });
    }
  });
export type Meter = z.infer<typeof meterSchema>;

const tierSchema = z.object({ upTo: decimalString.nullable(), unitPrice: decimalString, flatFee: decimalString.optional() }).strict();
export type Tier = z.infer<typeof tierSchema>;

const chargeBase = { meter: slug, included: decimalString.default('0') };
const tiered = { ...chargeBase, tiers: z.array(tierSchema).min(1) };
export const chargeSchema = z.discriminatedUnion('model', [
  z.object({ model: z.literal('graduated'), ...tiered }).strict(),
  z.object({ model: z.literal('volume'), ...tiered }).strict(),
  z.object({ model: z.literal('package'), ...chargeBase, packageSize: decimalString, packagePrice: decimalString }).strict(),
  z.object({ model: z.literal('flat'), ...chargeBase, amount: decimalString }).strict(),
]);
export type Charge = z.infer<typeof chargeSchema>;
export type ChargeModel = Charge['model'];

const percent = z.number().int().min(1).max(1000);
export const planSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1..64 chars of [A-Za-z0-9._-]'),
    name: z.string().min(1).max(128),
    currency: z.enum(['usd', 'eur', 'gbp', 'jpy']),
    baseFee: decimalString.optional(),
    alertThresholds: z
      .object({ included: z.array(percent).default([80, 90, 100]), budget: z.array(percent).default([50, 80, 100]) })
      .strict()
      .default({ included: [80, 90, 100], budget: [50, 80, 100] }),
    charges: z.array(chargeSchema),
  })
  .strict();
export type Plan = z.infer<typeof planSchema>;

export const catalogSchema = z
  .object({ meters: z.array(meterSchema).min(1), plans: z.array(planSchema).min(1) })
  .strict()
  .superRefine((c, ctx) => {
    const meters = new Set<string>();
    c.meters.forEach((m, i) => {
      if (meters.has(m.slug)) ctx.addIssue({ code: 'custom', path: ['meters', i, 'slug'], message: `duplicate meter "${m.slug}"` });
      meters.add(m.slug);
    });
    const plans = new Set<string>();
    c.plans.forEach((p, pi) => {
      if (plans.has(p.id)) ctx.addIssue({ code: 'custom', path: ['plans', pi, 'id'], message: `duplicate plan "${p.id}"` });
      plans.add(p.id);
      const charged = new Set<string>();
      p.charges.forEach((ch, ci) => {
        const at = ['plans', pi, 'charges', ci];
        if (!meters.has(ch.meter)) ctx.addIssue({ code: 'custom', path: [...at, 'meter'], message: `unknown meter "${ch.meter}"` });
        if (charged.has(ch.meter)) ctx.addIssue({ code: 'custom', path: [...at, 'meter'], message: `meter "${ch.meter}" is charged twice` });
        charged.add(ch.meter);
        if (ch.model === 'graduated' || ch.model === 'volume')
          tierIssues(ch.tiers).forEach((t) => ctx.addIssue({ code: 'custom', path: [...at, 'tiers', ...t.path], message: t.message }));
        if (ch.model === 'package' && Number(ch.packageSize) <= 0)
          ctx.addIssue({ code: 'custom', path: [...at, 'packageSize'], message: 'must be greater than 0' });
      });
    });
    if (!plans.has('default')) ctx.addIssue({ code: 'custom', path: ['plans'], message: 'a plan with id "default" is required' });
  });
export type Catalog = z.infer<typeof catalogSchema>;

/** Tier bounds must strictly increase and only the last tier may be open-ended (upTo: null). */
function tierIssues(tiers: Tier[]): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
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

/** Parses and validates a catalog; every problem names the field it is about. */
export function parseCatalog(input: unknown): Catalog {
  const result = catalogSchema.safeParse(input);
  if (!result.success) {
    throw new CatalogError(result.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  return result.data;
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
