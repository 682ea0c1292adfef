import * as z from 'zod/mini';
import './zod-english';
import { CURRENCIES, currencyMinorDigits, isOnMinorUnit, Money } from './money';
import { PERIOD_PATTERN } from './period';

/**
 * The catalog: meters (how events become one number per customer and period) and plans (how those
 * numbers become money). It is a file in the repository, validated when the build runs
 * (`npm run catalog:check`, and a unit test) and again when a function loads it: with zod/mini,
 * which keeps the full zod (~150 KB) out of the functions that load the catalog on their hot path.
 */

export const AGGREGATIONS = ['SUM', 'COUNT', 'MAX', 'LATEST', 'UNIQUE_COUNT'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

const matching = (pattern: RegExp, message: string) => z.string().check(z.regex(pattern, message));
const length = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const slug = matching(/^[a-z][a-z0-9_]{0,63}$/, 'must be lowercase letters, digits and _ (1..64, starting with a letter)');
/** Non-negative decimal with at most 12 decimal places, kept as a string so it is never a float. */
export const DECIMAL_PATTERN = /^\d{1,15}(\.\d{1,12})?$/;
const decimalString = matching(DECIMAL_PATTERN, 'must be a non-negative decimal string with at most 12 decimal places, e.g. "0.001"');
const valuePath = matching(/^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/, 'must be a path like "$.value" or "$.usage.bytes"');

const meterSchema = z
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
 * `included`: the free allowance that alerts and "percent used" refer to; for graduated and volume
 * charges it is the free tier (derived from the tiers when left out, and refused when it says
 * otherwise: a page saying 75% used while the invoice already charges would be a lie). `limit`: a
 * hard cap per period (entitlements answer hasAccess: false once usage reaches it); metering itself
 * never stops.
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
const planObject = z
  .strictObject({
    id: matching(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1..64 chars of [A-Za-z0-9._-]'),
    /** Plans are versions: a published version never changes; a change is the next version (docs/invoicing.md, "Plan versions"). */
    version: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(9999)), 1),
    /** The first period this version prices (absent on a plan's first version: it covers every period before the next). */
    effectiveFrom: z.optional(matching(PERIOD_PATTERN, 'must be a period YYYY-MM from 1970-01 to 9998-12')),
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
/** A plan version; graduated and volume charges without `included` take their free tier. */
export const planSchema = z.pipe(z.transform(withDerivedIncluded), planObject);
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
  if (p.version > 1 && p.effectiveFrom === undefined) issues.push({ path: ['effectiveFrom'], message: `is required for version ${p.version}` });
  const charged = new Set<string>();
  p.charges.forEach((ch, ci) => {
    const at = ['charges', ci];
    if (charged.has(ch.meter)) issues.push({ path: [...at, 'meter'], message: `meter "${ch.meter}" is charged twice` });
    charged.add(ch.meter);
    if (ch.model === 'graduated' || ch.model === 'volume') {
      const tiers = tierIssues(ch.tiers);
      tiers.forEach((t) => issues.push({ path: [...at, 'tiers', ...t.path], message: t.message }));
      ch.tiers.forEach((t, ti) => fixed([...at, 'tiers', ti, 'flatFee'], t.flatFee));
      const free = tiers.length === 0 ? freeTier(ch.model, ch.tiers) : null;
      if (free !== null && !new Money(ch.included).eq(free)) {
        issues.push({
          path: [...at, 'included'],
          message: `must equal the free tier (${free}), or be left out to take it: an allowance that differs from the free tier shows usage as included while it is charged`,
        });
      }
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
function catalogIssues(input: unknown): CatalogIssue[] {
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
  const versions = new Map<string, { version: number; effectiveFrom?: string; at: number }[]>();
  shape.data.plans.forEach((raw, pi) => {
    const parsed = collect(planSchema, raw, ['plans', pi]);
    const plan = (raw ?? {}) as { id?: unknown; charges?: unknown };
    if (parsed) versions.set(parsed.id, [...(versions.get(parsed.id) ?? []), { version: parsed.version, effectiveFrom: parsed.effectiveFrom, at: pi }]);
    if (!Array.isArray(plan.charges)) return;
    plan.charges.forEach((ch: unknown, ci) => {
      const meter = ch !== null && typeof ch === 'object' ? (ch as { meter?: unknown }).meter : undefined;
      if (typeof meter === 'string' && !meters.has(meter)) issues.push({ path: ['plans', pi, 'charges', ci, 'meter'], message: `unknown meter "${meter}"` });
    });
  });
  for (const [id, list] of versions) issues.push(...versionIssues(id, list));
  if (!versions.has('default') && !shape.data.plans.some((p) => (p as { id?: unknown })?.id === 'default')) {
    issues.push({ path: ['plans'], message: 'a plan with id "default" is required' });
  }
  return issues;
}

/**
 * The versions of one plan in a catalog: each once, numbered without gaps (a catalog may leave out
 * a plan's oldest versions: the published catalog keeps them), and taking effect in their order.
 */
function versionIssues(id: string, list: { version: number; effectiveFrom?: string; at: number }[]): CatalogIssue[] {
  const issues: CatalogIssue[] = [];
  const sorted = [...list].sort((a, b) => a.version - b.version || a.at - b.at);
  sorted.forEach((v, i) => {
    const before = sorted[i - 1];
    if (!before) return;
    const path = ['plans', v.at, 'version'];
    if (v.version === before.version) issues.push({ path, message: `plan "${id}" has version ${v.version} twice` });
    else if (v.version !== before.version + 1) issues.push({ path, message: `plan "${id}" jumps from version ${before.version} to ${v.version}` });
    else if (v.effectiveFrom !== undefined && before.effectiveFrom !== undefined && v.effectiveFrom < before.effectiveFrom) {
      issues.push({
        path: ['plans', v.at, 'effectiveFrom'],
        message: `${v.effectiveFrom} is before version ${before.version}'s ${before.effectiveFrom}: versions take effect in their order`,
      });
    }
  });
  return issues;
}

const isFree = (t: Tier) => new Money(t.unitPrice).isZero() && (t.flatFee === undefined || new Money(t.flatFee).isZero());

/**
 * The free tier of a tiered charge: the units priced at nothing. Graduated: up to the end of its
 * leading zero-price tiers; volume: the first tier's bound when that tier is free (a total within it
 * costs nothing), else 0. Null when every unit is free (any allowance is then true).
 */
function freeTier(model: 'graduated' | 'volume', tiers: Tier[]): string | null {
  let bound = '0';
  for (const t of model === 'volume' ? tiers.slice(0, 1) : tiers) {
    if (!isFree(t)) return bound;
    if (t.upTo === null) return null;
    bound = t.upTo;
  }
  return bound;
}

/** A copy of a raw plan in which graduated and volume charges without `included` take their free tier. */
function withDerivedIncluded(plan: unknown): unknown {
  const charges = (plan as { charges?: unknown } | null)?.charges;
  if (!Array.isArray(charges)) return plan;
  return {
    ...(plan as object),
    charges: charges.map((ch: unknown) => {
      const c = ch as { model?: unknown; included?: unknown; tiers?: unknown } | null;
      if (c === null || typeof c !== 'object' || c.included !== undefined || (c.model !== 'graduated' && c.model !== 'volume')) return ch;
      const tiers = z.array(tierSchema).check(z.minLength(1)).safeParse(c.tiers);
      const free = tiers.success && tierIssues(tiers.data).length === 0 ? freeTier(c.model, tiers.data) : '0';
      return { ...c, included: free ?? '0' };
    }),
  };
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
  if (issues.length > 0) throw new CatalogError(issues.map(issueText));
  const raw = input as { meters: unknown[]; plans: unknown[] };
  return { meters: raw.meters.map((m) => meterSchema.parse(m)), plans: raw.plans.map((p) => planSchema.parse(p)) };
}

/** `path: message`, as catalog errors are printed. */
const issueText = (i: CatalogIssue) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`;

/** Meters and plan versions published before and no longer in the catalog (catalog/retired.json). */
export interface Retired {
  meters: Meter[];
  plans: Plan[];
}

const retiredShape = z.strictObject({ meters: z.array(meterSchema), plans: z.array(planSchema) });

/** Parses catalog/retired.json: each meter and version valid on its own (they were checked whole when published). */
export function parseRetired(input: unknown): Retired {
  const parsed = retiredShape.safeParse(input);
  if (!parsed.success) throw new CatalogError(parsed.error.issues.map((i) => `retired.${i.path.map(String).join('.')}: ${i.message}`));
  return parsed.data;
}

/**
 * Lookups over a validated catalog and what was published before it. Ingest reads the catalog's
 * meters; counting, pricing and reading also know the meters and plan versions that were published
 * and are no longer in the catalog, so that events accepted before a deploy still count and periods
 * priced with a removed version are still priced with it.
 */
export class CatalogIndex {
  private readonly meterBySlug = new Map<string, Meter>();
  private readonly metersByType = new Map<string, Meter[]>();
  private readonly versionsById = new Map<string, Plan[]>();
  private readonly retired: Meter[];

  constructor(
    readonly catalog: Catalog,
    /** What was published before: all of it, or only what is no longer in the catalog (retired). */
    readonly published?: Retired,
  ) {
    for (const m of catalog.meters) {
      this.meterBySlug.set(m.slug, m);
      this.metersByType.set(m.eventType, [...(this.metersByType.get(m.eventType) ?? []), m]);
    }
    this.retired = (published?.meters ?? []).filter((m) => !this.meterBySlug.has(m.slug));
    for (const m of this.retired) this.meterBySlug.set(m.slug, m);
    for (const p of [...catalog.plans, ...(published?.plans ?? [])]) {
      const list = this.versionsById.get(p.id) ?? [];
      if (!list.some((q) => q.version === p.version)) list.push(p);
      this.versionsById.set(
        p.id,
        list.sort((a, b) => a.version - b.version),
      );
    }
  }

  /** The catalog's meters (what ingest accepts and the usage page lists). */
  meters(): Meter[] {
    return this.catalog.meters;
  }
  /** The catalog's meters and those published before and removed since (what counting and pricing may meet). */
  knownMeters(): Meter[] {
    return [...this.catalog.meters, ...this.retired];
  }
  meter(slug: string): Meter | undefined {
    return this.meterBySlug.get(slug);
  }
  metersForType(eventType: string): Meter[] {
    return this.metersByType.get(eventType) ?? [];
  }
  /** Whether customers can be put on the plan: it is in the catalog (not only published). */
  onSale(id: string): boolean {
    return this.catalog.plans.some((p) => p.id === id);
  }
  /**
   * The version of a plan in force for a period: the latest whose effectiveFrom is at or before it;
   * a period before every version's effectiveFrom takes the first version. Undefined: no such plan.
   */
  planVersion(id: string, period: string): Plan | undefined {
    const versions = this.versionsById.get(id);
    if (!versions) return undefined;
    let inForce = versions[0]!;
    for (const v of versions) if (v.effectiveFrom === undefined || v.effectiveFrom <= period) inForce = v;
    return inForce;
  }
  defaultPlan(period: string): Plan {
    return this.planVersion('default', period)!;
  }
}
