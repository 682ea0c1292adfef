import * as z from 'zod';
import { authorize, requireUnbound, type Principal } from '../domain/apikey';
import type { CatalogIndex } from '../domain/catalog';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors';
import { CREDIT_CARRIED, termsFor } from '../domain/billing';
import { dec, roundToMinor, sum } from '../domain/money';
import { Period } from '../domain/period';
import { checkCustomerId } from './customer-id';
import type { Clock } from './ports/clock';
import type { CustomerRepository } from './ports/customers';
import type { InvoiceRepository } from './ports/invoicing';
import type { Customer } from '../domain/customer';
import type { InvoiceRecord } from '../domain/invoice-record';

/**
 * Carried credits: a negative total (a LATEST meter corrected down, say) is recorded as
 * `credit_carried` and put on the customer's next invoice in its currency. One in a currency the
 * customer no longer invoices in waits for a correction invoice in that currency, and is owed until
 * then: listed here (and on the usage page and in the CLI) until it is applied or an operator
 * settles it, by a refund made in Stripe or a write-off, both recorded with who, when and why.
 */
export interface CreditDeps {
  catalog: CatalogIndex;
  clock: Clock;
  customers: Pick<CustomerRepository, 'get'>;
  invoices: Pick<InvoiceRepository, 'list' | 'get' | 'settleCredit'>;
}

type CreditStatus = 'open' | 'applied' | 'refunded' | 'written_off';

function creditView(r: InvoiceRecord, currency: string | undefined) {
  const status: CreditStatus = r.creditAppliedTo ? 'applied' : r.creditSettlement ? (r.creditSettlement.as === 'refund' ? 'refunded' : 'written_off') : 'open';
  const s = r.creditSettlement;
  return {
    key: r.key,
    period: r.period,
    currency: r.currency,
    /** What the customer is owed: the invoice's negative total, as a positive amount. */
    amount: roundToMinor(dec(r.total).negated(), r.currency),
    status,
    appliedTo: r.creditAppliedTo ?? null,
    /** Whether the customer's next invoice is in this currency (an open credit then goes on it). */
    usableOnNextInvoice: status === 'open' && r.currency === currency,
    settledAt: s?.at ?? null,
    settledBy: s?.by ?? null,
    reason: s?.reason ?? null,
    reference: s?.reference ?? null,
  };
}

/** GET /customers/{id}/credits: every carried credit of the customer, and what is owed per currency. */
export async function listCredits(deps: CreditDeps, principal: Principal, customerId: string) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const [customer, records] = await Promise.all([deps.customers.get(customerId), deps.invoices.list(customerId)]);
  return { customerId, ...creditSummary(deps.catalog, customer, records, deps.clock.now()) };
}

/** The credits among a customer's invoice records (the usage page reads them with its invoices). */
export function creditSummary(catalog: CatalogIndex, customer: Customer | undefined, records: InvoiceRecord[], now: Date) {
  const next = Period.containing(now).next().key;
  const currency = customer ? termsFor(catalog, customer, next).plan.currency : undefined;
  const credits = records
    .filter((r) => r.status === CREDIT_CARRIED)
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((r) => creditView(r, currency));
  const owed = [...new Set(credits.filter((c) => c.status === 'open').map((c) => c.currency))].sort().map((cur) => ({
    currency: cur,
    amount: roundToMinor(sum(credits.filter((c) => c.status === 'open' && c.currency === cur).map((c) => dec(c.amount))), cur),
  }));
  return { credits, owed };
}

export const creditSettleInput = z
  .object({
    as: z
      .enum(['refund', 'write_off'])
      .meta({ description: '`refund`: the money went back through Stripe (give its `reference`); `write_off`: it is forgone.' }),
    reason: z.string().trim().min(1).max(500),
    reference: z
      .string()
      .regex(/^(re|cn|pyr|cbtxn)_[A-Za-z0-9]{1,64}$/, 'must be a Stripe refund, credit note or balance transaction id (re_..., cn_..., pyr_..., cbtxn_...)')
      .optional(),
  })
  .strict();

/** POST /customers/{id}/credits/{key}/settle: an operator settles an open credit; it is then never applied. */
export async function settleCredit(deps: CreditDeps, principal: Principal, customerId: string, key: string, input: z.infer<typeof creditSettleInput>) {
  authorize(principal, 'admin');
  requireUnbound(principal);
  checkCustomerId(customerId);
  if (input.as === 'refund' && input.reference === undefined) {
    const message = 'a refund names where the money went: reference is the Stripe refund or credit note id (re_..., cn_...)';
    throw new ValidationError('invalid_input', message, [{ field: 'reference', code: 'required', message }]);
  }
  const record = await deps.invoices.get(customerId, key);
  if (!record || record.status !== CREDIT_CARRIED) throw new NotFoundError('credit_not_found', `${customerId} has no carried credit "${key.slice(0, 64)}"`);
  const at = deps.clock.now().toISOString();
  const settled = await deps.invoices.settleCredit(customerId, key, {
    as: input.as,
    reason: input.reason,
    ...(input.reference ? { reference: input.reference } : {}),
    at,
    by: principal.keyId,
  });
  if (!settled) {
    const now = (await deps.invoices.get(customerId, key))!;
    throw new ConflictError('credit_not_open', `the credit ${key} is ${now.creditAppliedTo ? `applied to ${now.creditAppliedTo}` : 'settled already'}`);
  }
  return creditView((await deps.invoices.get(customerId, key))!, undefined);
}
