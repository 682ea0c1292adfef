import { CORRECTION_LOOKBACK, type InvoiceSnapshot } from '../../domain/invoicing';
import type { Period } from '../../domain/period';
import type { Customer, CustomerRepository, InvoiceRecord, InvoiceRepository, UsageLedger } from '../ports';

/**
 * Gather: everything billing reads about one customer, read in one place. The compute
 * (lib/domain/invoicing.ts) then works on this snapshot alone, with the time as an input.
 */
export interface SnapshotDeps {
  ledger: Pick<UsageLedger, 'read'>;
  customers: Pick<CustomerRepository, 'get'>;
  invoices: Pick<InvoiceRepository, 'list'>;
}

/** The period as it accrues (usage page, alerts): the customer and the period's counters. */
export async function gatherPeriod(deps: Omit<SnapshotDeps, 'invoices'>, customerId: string, period: Period) {
  const [customer, counters] = await Promise.all([deps.customers.get(customerId), deps.ledger.read(customerId, period.key)]);
  return { customer, counters: counters.values, duplicatesDropped: counters.duplicatesDropped };
}

export interface GatheredInvoices extends InvoiceSnapshot {
  customer: Customer | undefined;
  records: InvoiceRecord[];
}

/**
 * What invoicing a period reads: the customer (plan schedule, creation, Stripe id), every invoice
 * record of the customer (earlier baselines, carried credits, and whether this period's invoice
 * exists), the period's counters, and the counters of the earlier periods it may correct (only
 * those that have an invoice of their own: the others have nothing to correct).
 */
export async function gatherInvoices(deps: SnapshotDeps, customerId: string, period: Period): Promise<GatheredInvoices> {
  const [customer, records, current] = await Promise.all([
    deps.customers.get(customerId),
    deps.invoices.list(customerId),
    deps.ledger.read(customerId, period.key),
  ]);
  const earlier: string[] = [];
  for (let p = period.previous(), i = 0; i < CORRECTION_LOOKBACK; i++, p = p.previous()) {
    if (records.some((r) => r.kind === 'period' && r.key === p.key)) earlier.push(p.key);
  }
  const counters: Record<string, Record<string, string>> = { [period.key]: current.values };
  await Promise.all(earlier.map(async (key) => (counters[key] = (await deps.ledger.read(customerId, key)).values)));
  return { customerId, customer, period, counters, records };
}
