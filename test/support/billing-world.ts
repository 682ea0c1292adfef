import { putCustomer, type CustomerInput } from '../../lib/app/customers';
import { invoiceCustomer } from '../../lib/app/invoicing/job';
import { beginInvoiceRun, fanOutInvoiceRun } from '../../lib/app/invoicing/runs';
import type { Principal } from '../../lib/domain/apikey';
import type { CatalogIndex } from '../../lib/domain/catalog';
import type { Period } from '../../lib/domain/period';
import { MemoryClock, memoryBilling } from './memory';

export const admin: Principal = { keyId: 'test', scopes: ['admin'] };
const HOUR = 3_600_000;

/**
 * The invoice job, runs, previews and customers on in-memory adapters, with helpers that run a
 * period the way the schedule does (one hour after its end) and drain the invoice queue in order.
 */
export function billingWorld(catalog: CatalogIndex, at: Date, opts: Parameters<typeof memoryBilling>[2] = {}) {
  const clock = new MemoryClock(at);
  const deps = memoryBilling(catalog, clock, opts);
  const { stripe } = deps;
  const put = (id: string, body: CustomerInput) => putCustomer(deps, admin, id, body);
  /** Runs every queued job (fan-outs and invoices) until the queue is empty. */
  const drain = async () => {
    while (deps.invoiceJobs.jobs.length > 0) {
      const job = deps.invoiceJobs.jobs.shift()!;
      if ('action' in job) await fanOutInvoiceRun(deps, job);
      else await invoiceCustomer(deps, job);
    }
  };
  /** Starts the period's run and walks its fan-out, leaving the customers' jobs in the queue. */
  const fanOut = async (period: Period) => {
    await beginInvoiceRun(deps, period);
    for (let step; (step = deps.invoiceJobs.jobs.find((j) => 'action' in j));) {
      deps.invoiceJobs.jobs.splice(deps.invoiceJobs.jobs.indexOf(step), 1);
      if ('action' in step) await fanOutInvoiceRun(deps, step);
    }
  };
  const run = async (period: Period, when = new Date(period.end.getTime() + HOUR)) => {
    clock.at = when;
    await beginInvoiceRun(deps, period);
    await drain();
  };
  /** A customer's records by key. */
  const records = (customerId: string) =>
    Object.fromEntries(
      deps.invoices
        .all()
        .filter((r) => r.customerId === customerId)
        .map((r) => [r.key, r]),
    );
  return { deps, clock, stripe, put, run, drain, fanOut, records };
}
