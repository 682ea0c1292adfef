import type { CatalogIndex } from '../../domain/catalog';
import { type InvoiceSnapshot } from '../../domain/billing';
import { correctionLookback, type Period } from '../../domain/period';
import { DUPLICATES_COUNTER, type CounterReads } from '../ports/usage';
import { type InvoiceRepository } from '../ports/invoicing';
import { type Customer } from '../../domain/customer';
import { type InvoiceRecord } from '../../domain/invoice-record';

/**
 * Gather: everything billing reads about one customer, read in one place. The compute
 * (lib/domain/billing.ts) then works on this snapshot alone, with the time as an input.
 */
export interface SnapshotDeps {
  catalog: CatalogIndex;
  counterReads: CounterReads;
  invoices: Pick<InvoiceRepository, 'list'>;
  /** The late-event window and the grace before a period is invoiced: together they say how far corrections look back. */
  correctionWindowMs: number;
  graceMs: number;
}

/**
 * The period as it accrues (usage page, alerts): the customer, the period's counters of the
 * catalog's meters and the duplicates dropped, in one read.
 */
export async function gatherPeriod(deps: Pick<SnapshotDeps, 'catalog' | 'counterReads'>, customerId: string, period: Period) {
  const meters = deps.catalog.meters().map((m) => m.slug);
  const read = await deps.counterReads.read(customerId, [period.key], [...meters, DUPLICATES_COUNTER]);
  const { [DUPLICATES_COUNTER]: duplicates = '0', ...counters } = read.counters[period.key]!;
  return { customer: read.customer, counters, duplicatesDropped: Number(duplicates) };
}

export interface GatheredInvoices extends InvoiceSnapshot {
  customer: Customer | undefined;
  records: InvoiceRecord[];
}

/**
 * What invoicing a period reads, in two requests: every invoice record of the customer (earlier
 * baselines, carried credits, and whether this period's invoice exists), and together the customer
 * (plan schedule, creation, Stripe id) with the counters of the catalog's meters in the period and
 * in the earlier periods it may correct. Of those, only periods with an invoice of their own are
 * kept: the others have nothing to correct.
 */
export async function gatherInvoices(deps: SnapshotDeps, customerId: string, period: Period): Promise<GatheredInvoices> {
  const depth = correctionLookback(deps.correctionWindowMs, deps.graceMs);
  const lookback: string[] = [];
  for (let p = period.previous(), i = 0; i < depth; i++, p = p.previous()) lookback.push(p.key);
  const meters = deps.catalog.meters().map((m) => m.slug);
  const [records, read] = await Promise.all([deps.invoices.list(customerId), deps.counterReads.read(customerId, [period.key, ...lookback], meters)]);
  const invoiced = lookback.filter((key) => records.some((r) => r.kind === 'period' && r.key === key));
  const counters: Record<string, Record<string, string>> = { [period.key]: read.counters[period.key]! };
  for (const key of invoiced) counters[key] = read.counters[key]!;
  return { customerId, customer: read.customer, period, counters, records, lookback: depth };
}
