import * as z from 'zod';
import { authorize, type Principal } from '../domain/apikey';
import { dailySeries, daysSoFar, type DailyPoint } from '../domain/daily';
import { Period } from '../domain/period';
import { PORTAL_LINK_TTL, type PortalGrant } from '../domain/portal-token';
import { listAlerts, type AlertDeps } from './alerts';
import { portalLink, type LinkDeps } from './portal-link';
import { creditSummary } from './credits';
import { publicInvoice } from './invoicing/views';
import type { CustomerRepository } from './ports/customers';
import type { InvoiceRepository } from './ports/invoicing';
import type { UsageLedger } from './ports/usage';
import { resolvePeriod } from './period-input';
import { readUsage, type ReadUsageDeps } from './usage';

/**
 * What customers see (docs/portal.md): a link that opens their usage page without an API key, and
 * the page's data. Every number comes from the same use cases the API answers with (readUsage,
 * listAlerts, the invoice list and credits); only the daily series is read here, from the daily counters.
 */
export { portalLink, type LinkDeps };

export interface PortalDeps extends AlertDeps, LinkDeps, ReadUsageDeps {
  ledger: Pick<UsageLedger, 'readDaily' | 'periodsWithUsage'>;
  customers: Pick<CustomerRepository, 'get'>;
  invoices: Pick<InvoiceRepository, 'list'>;
}

/** POST /customers/{id}/portal-links: the body is optional. */
export const portalLinkInput = z
  .object({
    ttlSeconds: z.number().int().min(PORTAL_LINK_TTL.minSeconds).max(PORTAL_LINK_TTL.maxSeconds).optional(),
  })
  .strict()
  .optional();

export function createPortalLink(deps: LinkDeps, principal: Principal, customerId: string, input: z.infer<typeof portalLinkInput>, baseUrl: string) {
  authorize(principal, 'read', customerId);
  return portalLink(deps, baseUrl, customerId, input?.ttlSeconds);
}

/** The token stands for a read key bound to its customer: the use cases below check it as they would one. */
const principalOf = (grant: PortalGrant): Principal => ({ keyId: 'portal-link', scopes: ['read'], customerId: grant.customerId });

/** How far back the period picker looks for usage not yet invoiced (invoiced periods are listed by their invoices). */
const PICKER_MONTHS = 12;

export interface MeterSeries {
  meter: string;
  points: DailyPoint[];
}

/** GET /portal?token=&period=: the token first (401), then the period (400), then everything the page shows. */
export async function readPortal(deps: PortalDeps, token: string | undefined, periodText: string | undefined) {
  const now = deps.clock.now();
  const grant = deps.portalTokens.verify(token, now);
  const principal = principalOf(grant);
  const period = resolvePeriod(periodText, deps.clock);
  const current = Period.containing(now);
  const recent: string[] = [];
  for (let p = current, i = 0; i < PICKER_MONTHS; i++, p = p.previous()) recent.push(p.key);
  const [usage, daily, alerts, records, customer, withUsage] = await Promise.all([
    readUsage(deps, principal, grant.customerId, period.key),
    deps.ledger.readDaily(grant.customerId, period.key),
    listAlerts(deps, principal, grant.customerId, period.key),
    deps.invoices.list(grant.customerId),
    deps.customers.get(grant.customerId),
    deps.ledger.periodsWithUsage(grant.customerId, recent),
  ]);
  const days = daysSoFar(period, now);
  const series: MeterSeries[] = usage.meters.flatMap((m) =>
    m.aggregation === 'UNIQUE_COUNT' ? [] : [{ meter: m.meter, points: dailySeries(m.aggregation, days, daily[m.meter] ?? {}) }],
  );
  const invoices = records.map(publicInvoice);
  const periods = [...new Set([current.key, period.key, ...withUsage, ...invoices.map((i) => i.period)])].sort().reverse();
  return {
    customerId: grant.customerId,
    customerName: customer?.name ?? null,
    token: token!,
    expiresAt: grant.expiresAt.toISOString(),
    current: current.key,
    periods,
    usage,
    series,
    alerts: alerts.alerts,
    invoices,
    credits: creditSummary(deps.catalog, customer, records, now),
  };
}
export type PortalView = Awaited<ReturnType<typeof readPortal>>;

/** GET /portal/usage.csv?token=&period=: the daily series of every meter that has one, as rows. */
export async function readDailyUsage(
  deps: Pick<PortalDeps, 'portalTokens' | 'clock' | 'ledger' | 'catalog'>,
  token: string | undefined,
  periodText: string | undefined,
) {
  const now = deps.clock.now();
  const grant = deps.portalTokens.verify(token, now);
  const period = resolvePeriod(periodText, deps.clock);
  const daily = await deps.ledger.readDaily(grant.customerId, period.key);
  const days = daysSoFar(period, now);
  const rows = deps.catalog
    .meters()
    .flatMap((m) => (m.aggregation === 'UNIQUE_COUNT' ? [] : dailySeries(m.aggregation, days, daily[m.slug] ?? {}).map((p) => ({ ...p, meter: m }))));
  return { customerId: grant.customerId, period: period.key, rows };
}
