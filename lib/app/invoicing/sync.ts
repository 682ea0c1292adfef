import type { Clock } from '../ports/clock';
import type { InvoiceRepository } from '../ports/invoicing';
import type { InvoiceRecord, InvoiceStatus } from '../../domain/invoice-record';
import { DomainError } from '../../domain/errors';
import { BillingProviderError, type InvoiceSync, type SyncInvoice } from './billing-provider';

/**
 * Sync: an invoice record walks through the provider one recorded state at a time. The table says,
 * for each state, which provider step runs, which flag is recorded before its first write (so a
 * later attempt knows to look for what a crashed one may have made) and which state follows. A
 * state is advanced with a conditional write; when another attempt moved it first, the walk goes on
 * from what that attempt stored.
 */
interface Step {
  next: InvoiceStatus;
  /** Recorded before the step's first provider write; when already set, the step runs `resumed`. */
  flag?: 'draftRequested' | 'itemsRequested';
  run(sync: InvoiceSync, invoice: SyncInvoice, record: InvoiceRecord, resumed: boolean): Promise<Partial<InvoiceRecord>>;
}

const STEPS: Partial<Record<InvoiceStatus, Step>> = {
  pending: {
    next: 'draft_created',
    flag: 'draftRequested',
    run: async (sync, invoice, _record, resumed) => ({ stripeInvoiceId: (await sync.openDraft(invoice, resumed)).invoiceId }),
  },
  draft_created: {
    next: 'items_added',
    flag: 'itemsRequested',
    run: async (sync, invoice, record, resumed) => {
      await sync.addLines(invoice, record.stripeInvoiceId!, resumed);
      return {};
    },
  },
  items_added: {
    next: 'finalized',
    run: async (sync, invoice, record) => {
      const finalized = await sync.finalize(invoice, record.stripeInvoiceId!);
      if (finalized.totalMinor !== record.totalMinor) {
        throw new BillingProviderError(
          `provider invoice ${finalized.id} totals ${finalized.totalMinor}, the record ${record.totalMinor}`,
          false,
          'total_mismatch',
        );
      }
      return { stripeStatus: finalized.status, stripeNumber: finalized.number ?? null, hostedInvoiceUrl: finalized.hostedInvoiceUrl ?? null };
    },
  },
};

export interface SyncDeps {
  invoices: InvoiceRepository;
  sync: InvoiceSync;
  clock: Clock;
}

function toSync(r: InvoiceRecord): SyncInvoice {
  return {
    customerId: r.customerId,
    key: r.key,
    period: r.period,
    currency: r.currency,
    stripeCustomerId: r.stripeCustomerId!,
    lines: r.lines,
    totalMinor: r.totalMinor,
  };
}

/** Walks the record to a terminal state. A provider refusal that no retry can cure blocks it, with the reason recorded. */
export async function syncInvoice(deps: SyncDeps, start: InvoiceRecord): Promise<InvoiceRecord> {
  let record = start;
  const at = () => deps.clock.now().toISOString();
  /** Records the changes if the state is still `from`; otherwise goes on from what the other attempt stored. */
  const advance = async (from: InvoiceRecord, changes: Partial<InvoiceRecord>) =>
    (await deps.invoices.update(from.customerId, from.key, from.status, { ...changes, updatedAt: at() })) ??
    (await deps.invoices.get(from.customerId, from.key))!;

  for (let step = STEPS[record.status]; step !== undefined; step = STEPS[record.status]) {
    const resumed = step.flag !== undefined && record[step.flag] === true;
    if (step.flag !== undefined && !resumed) {
      const flagged = await advance(record, { [step.flag]: true });
      if (flagged.status !== record.status) {
        record = flagged;
        continue;
      }
      record = flagged;
    }
    try {
      const changes = await step.run(deps.sync, toSync(record), record, resumed);
      record = await advance(record, { ...changes, status: step.next, ...(step.next === 'finalized' ? { finalizedAt: at() } : {}) });
    } catch (err) {
      if (!(err instanceof BillingProviderError) || err.retryable) throw err;
      return advance(record, { status: 'blocked', blockedFrom: record.status, lastError: failureReason(err).slice(0, 500) });
    }
  }
  return record;
}

/**
 * What a failed attempt may say where the customer's own keys read it (`lastError`, the run's
 * member): a refusal's code and sentence (ours or Stripe's), a transient provider failure's code,
 * and for anything else only that this service failed; the raw error is in the function's log.
 */
export function failureReason(err: unknown): string {
  if (err instanceof DomainError) return `${err.code}: ${err.message}`;
  if (err instanceof BillingProviderError) {
    return err.retryable
      ? `${err.code ?? 'provider_unavailable'}: Stripe could not take the request at the time; it is retried`
      : `${err.code ?? 'provider_error'}: ${err.message}`;
  }
  return 'internal_error: the invoice could not be sent because of a failure inside this service; its logs have the cause';
}
