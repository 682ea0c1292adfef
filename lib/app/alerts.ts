import { authorize, type Principal } from '../domain/apikey';
import { alertMessage, evaluateAlerts, forecastDue, selectAlerts, type AlertCandidate, type AlertContext } from '../domain/alerts';
import { PlanNotFoundError } from '../domain/billing';
import { Period } from '../domain/period';
import { mapLimit, retry } from '../domain/concurrency';
import { checkCustomerId } from './customer-id';
import type { AlertPublisher, AlertRecord, AlertRepository } from './ports/alerts';
import { resolvePeriod } from './period-input';
import { estimate, type UsageDeps } from './usage';

/**
 * Alerts. After the aggregator's writes, each (customer, period) it touched is evaluated
 * level-triggered: every threshold currently reached is a candidate, and per kind and meter the
 * highest new one is sent while the lower new ones are recorded as superseded (one message for a
 * jump over 80, 90 and 100%). A period that has closed sends nothing: its late usage becomes a
 * correction on the next invoice, not an alarm. A conditional write claims each (customer, period,
 * kind, meter, threshold) once, however many aggregators evaluate at the same moment; the claim of
 * an alert to send is an outbox row: it is published, then marked sent. A publish that
 * fails leaves the row pending and the sweeper (every minute) sends it later, so an alert is never
 * skipped. The one window for a repeat is a crash after SNS accepted the message and before the row
 * was marked sent: the sweeper then sends it again (SNS email has no de-duplication).
 */
export interface AlertDeps extends UsageDeps {
  alerts: AlertRepository;
  publisher: AlertPublisher;
  /** The customer's usage page, linked from every message when given. */
  usagePageUrl?: (customerId: string) => string | undefined;
}

async function send(deps: AlertDeps, record: AlertRecord): Promise<boolean> {
  let messageId: string;
  try {
    messageId = await deps.publisher.publish({ subject: record.subject, body: record.body, attributes: record.attributes });
  } catch (err) {
    await deps.alerts.markFailed(record, err instanceof Error ? err.message : String(err));
    return false;
  }
  // Published: from here on the row may only become "sent". Treating a failed write of that (a
  // throttle) as a failed publish would leave it pending and the sweeper would send it again, so
  // the write is retried (it is idempotent); only if it keeps failing is the message retried.
  await retry(() => deps.alerts.markSent(record, messageId, deps.clock.now().toISOString()), { attempts: 8, baseMs: 100, maxMs: 3000, retryable: () => true });
  return true;
}

/** Evaluates one customer's period and sends what newly crossed; returns how many it sent. */
export async function evaluateCustomerAlerts(deps: AlertDeps, customerId: string, periodKey: string): Promise<number> {
  const period = Period.parse(periodKey);
  // Closed: late events change the next invoice (a correction line); an alarm would come too late to act on.
  if (deps.clock.now().getTime() >= period.end.getTime()) return 0;
  const { estimate: e, customer } = await estimate(deps, customerId, period);
  const plan = e.terms.plan;
  const candidates = evaluateAlerts({
    plan,
    values: Object.fromEntries(e.meters.map((m) => [m.meter, m.value])),
    budget: e.budget,
    forecast: forecastDue(period.start, deps.clock.now()),
  });
  if (candidates.length === 0) return 0;
  const claimed = new Set((await deps.alerts.list(customerId, periodKey)).map((a) => a.key));
  const { send: toSend, superseded } = selectAlerts(candidates, claimed);
  const context: AlertContext = {
    customerId,
    customerName: customer?.name,
    period: periodKey,
    currency: plan.currency,
    plan: { id: plan.id, version: plan.version },
    projected: e.budget?.projected ?? e.projectedSubtotal,
    budget: e.budget?.amount,
    usagePageUrl: deps.usagePageUrl?.(customerId),
  };
  const record = (c: AlertCandidate, extra: Partial<AlertContext>, status: AlertRecord['status'], supersededBy?: string): AlertRecord => {
    const meter = c.meter ? deps.catalog.meter(c.meter) : undefined;
    const msg = alertMessage(c, { ...context, meterDisplayName: meter?.displayName, unit: meter?.unit, ...extra });
    return {
      customerId,
      period: periodKey,
      key: c.key,
      kind: c.kind,
      meter: c.meter,
      threshold: c.threshold,
      value: c.value,
      limit: c.limit,
      percent: c.percent,
      subject: msg.subject,
      body: msg.body,
      attributes: msg.attributes,
      status,
      ...(supersededBy ? { supersededBy } : {}),
      claimedAt: deps.clock.now().toISOString(),
      attempts: 0,
    };
  };
  // The lower thresholds first: should this invocation die here, the next evaluation still sends
  // the highest (it is not claimed yet) and finds these recorded.
  const passedBy = new Map<string, number[]>();
  for (const s of superseded) {
    if (await deps.alerts.claim(record(s.candidate, {}, 'superseded', s.by))) passedBy.set(s.by, [...(passedBy.get(s.by) ?? []), s.candidate.threshold]);
  }
  let sent = 0;
  for (const c of toSend) {
    const r = record(c, { alsoPassed: passedBy.get(c.key) }, 'pending');
    if (!(await deps.alerts.claim(r))) continue; // another aggregator claimed it first
    if (await send(deps, r)) sent++;
  }
  return sent;
}

/**
 * Runs after a usage message was counted: every touched (customer, period), a few at a time. A
 * period that cannot be priced as the catalog stands (plan_not_found) is reported, not thrown: the
 * counters are applied already, and failing the message would only wedge the customer's later
 * messages behind a configuration error that no retry cures. Anything else (a throttled read) fails
 * the message so SQS retries it.
 */
export async function evaluateTouched(deps: AlertDeps, touched: { customerId: string; period: string }[]) {
  const unpriced: { customerId: string; period: string; error: string }[] = [];
  const sent = await mapLimit(touched, 4, async (t) => {
    try {
      return await evaluateCustomerAlerts(deps, t.customerId, t.period);
    } catch (err) {
      if (!(err instanceof PlanNotFoundError)) throw err;
      unpriced.push({ ...t, error: err.message });
      return 0;
    }
  });
  return { sent: sent.reduce((n, k) => n + k, 0), unpriced };
}

/** The outbox sweeper: sends alerts claimed more than `graceMs` ago and still pending. */
export async function sweepPendingAlerts(deps: AlertDeps, graceMs = 30_000): Promise<{ retried: number; sent: number }> {
  const before = new Date(deps.clock.now().getTime() - graceMs).toISOString();
  const pending = await deps.alerts.pending(before, 100);
  const results = await mapLimit(pending, 4, (r) => send(deps, r));
  return { retried: pending.length, sent: results.filter(Boolean).length };
}

/** GET /customers/{id}/alerts?period=: what was claimed and sent. */
export async function listAlerts(deps: AlertDeps, principal: Principal, customerId: string, periodText: string | undefined) {
  authorize(principal, 'read', customerId);
  checkCustomerId(customerId);
  const period = resolvePeriod(periodText, deps.clock);
  const alerts = (await deps.alerts.list(customerId, period.key)).sort(byKindMeterThreshold);
  return {
    customerId,
    period: period.key,
    alerts: alerts.map((a) => ({
      kind: a.kind,
      meter: a.meter,
      threshold: a.threshold,
      value: a.value,
      limit: a.limit,
      percent: a.percent,
      subject: a.subject,
      status: a.status,
      supersededBy: a.supersededBy ?? null,
      claimedAt: a.claimedAt,
      sentAt: a.sentAt ?? null,
    })),
  };
}

const KIND_ORDER: Record<string, number> = { included: 0, budget: 1, forecast: 2 };
/** Kind, meter, then threshold as a number (the store's key order puts "100" before "80"). */
function byKindMeterThreshold(a: AlertRecord, b: AlertRecord): number {
  return (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) || (a.meter ?? '').localeCompare(b.meter ?? '') || a.threshold - b.threshold;
}
