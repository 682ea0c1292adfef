import type { CatalogIndex } from '../../domain/catalog';
import { CORRECTION_LOOKBACK, type InvoiceSnapshot } from '../../domain/invoicing';
import type { Period } from '../../domain/period';
import type { CounterReads, Customer, CustomerRepository, InvoiceRecord, InvoiceRepository, UsageLedger } from '../ports';

/**
 * Gather: everything billing reads about one customer, read in one place. The compute
 * (lib/domain/invoicing.ts) then works on this snapshot alone, with the time as an input.
 */
export interface SnapshotDeps {
  catalog: CatalogIndex;
  counterReads: CounterReads;
  invoices: Pick<InvoiceRepository, 'list'>;
}

/** The period as it accrues (usage page, alerts): the customer and the period's counters. */
export async function gatherPeriod(
  deps: { ledger: Pick<UsageLedger, 'read'>; customers: Pick<CustomerRepository, 'get'> },
  customerId: string,
  period: Period,
) {
  const [customer, counters] = await Promise.all([deps.customers.get(customerId), deps.ledger.read(customerId, period.key)]);
  return { customer, counters: counters.values, duplicatesDropped: counters.duplicatesDropped };
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
  const lookback: string[] = [];
  for (let p = period.previous(), i = 0; i < CORRECTION_LOOKBACK; i++, p = p.previous()) lookback.push(p.key);
  const meters = deps.catalog.meters().map((m) => m.slug);
  const [records, read] = await Promise.all([deps.invoices.list(customerId), deps.counterReads.read(customerId, [period.key, ...lookback], meters)]);
  const invoiced = lookback.filter((key) => records.some((r) => r.kind === 'period' && r.key === key));
  const counters: Record<string, Record<string, string>> = { [period.key]: read.counters[period.key]! };
  for (const key of invoiced) counters[key] = read.counters[key]!;
  return { customerId, customer: read.customer, period, counters, records };
}
