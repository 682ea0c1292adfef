import type { Catalog, CatalogIssue, Retired } from './catalog';

/**
 * Every meter and plan version ever published (catalog/published.json, written by `npm run
 * catalog:publish`): what `catalog:check` holds the catalog against. What is published never
 * changes: a changed plan is its next version, a meter counted by another rule is another meter.
 * The part of it no longer in the catalog (catalog/retired.json, written with it) is bundled beside
 * the catalog, so that a version, or a whole plan, removed from the catalog stays readable for the
 * periods it priced, and a removed meter's events still count.
 */
export interface PublishedIssue extends CatalogIssue {
  /** Only not published yet (the build refuses it; a function still loads it). */
  unpublished?: true;
}

/** Fields that decide what a meter counts: changing one would re-read the counters kept so far under another rule. */
const COUNTING_FIELDS = ['aggregation', 'eventType', 'valueProperty'] as const;

export function publishedIssues(current: Catalog, published: Catalog): PublishedIssue[] {
  const issues: PublishedIssue[] = [];
  current.meters.forEach((m, mi) => {
    const before = published.meters.find((p) => p.slug === m.slug);
    if (!before) {
      issues.push({ path: ['meters', mi], message: `meter "${m.slug}" is not published yet: run npm run catalog:publish`, unpublished: true });
      return;
    }
    for (const field of COUNTING_FIELDS) {
      if (before[field] !== m[field]) {
        issues.push({
          path: ['meters', mi, field],
          message: `meter "${m.slug}" was published as ${before[field] ?? '(none)'} and cannot change to ${m[field] ?? '(none)'}: a meter that counts by another rule is a new meter (a new slug), or its counters so far would be recounted under the new rule`,
        });
      }
    }
  });
  current.plans.forEach((p, pi) => {
    const before = published.plans.find((q) => q.id === p.id && q.version === p.version);
    if (!before) {
      issues.push({ path: ['plans', pi], message: `plan "${p.id}" version ${p.version} is not published yet: run npm run catalog:publish`, unpublished: true });
    } else if (canonicalJson(before) !== canonicalJson(p)) {
      const next = Math.max(...[...current.plans, ...published.plans].filter((q) => q.id === p.id).map((q) => q.version)) + 1;
      issues.push({
        path: ['plans', pi],
        message: `plan "${p.id}" version ${p.version} was published and cannot change (invoices may have been priced with it): add the change as version ${next} with an effectiveFrom`,
      });
    }
  });
  return issues;
}

/** The published catalog after publishing `current`: what was published, plus what is new (meters take their current names). */
export function publishCatalog(current: Catalog, published: Catalog): Catalog {
  const meters = [...current.meters, ...published.meters.filter((m) => !current.meters.some((c) => c.slug === m.slug))];
  const plans = [...published.plans, ...current.plans.filter((p) => !published.plans.some((q) => q.id === p.id && q.version === p.version))];
  const order = [...new Set(plans.map((p) => p.id))];
  return { meters, plans: plans.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id) || a.version - b.version) };
}

/** JSON with object keys sorted, so two parses of the same plan compare equal whatever the key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** What was published and is no longer in the catalog: what the functions bundle beside it (catalog/retired.json). */
export function retiredFrom(current: Catalog, published: Catalog): Retired {
  return {
    meters: published.meters.filter((m) => !current.meters.some((c) => c.slug === m.slug)),
    plans: published.plans.filter((p) => !current.plans.some((c) => c.id === p.id && c.version === p.version)),
  };
}

/** Whether two retired parts say the same (whatever the key order of their JSON). */
export const sameRetired = (a: Retired, b: Retired) => canonicalJson(a) === canonicalJson(b);
