import { authorize, type Principal } from '../domain/apikey';
import { alertMessage, evaluateAlerts } from '../domain/alerts';
import { PlanNotFoundError } from '../domain/invoicing';
import { Period } from '../domain/period';
import { mapLimit } from '../platform/concurrency';
import { checkCustomerId } from './customers';
import type { AlertPublisher, AlertRecord, AlertRepository } from './ports';
import { estimate, resolvePeriod, type UsageDeps } from './usage';

/**
 * Alerts. After the aggregator's writes, each (customer, period) it touched is evaluated
 * level-triggered: every threshold currently reached is a candidate. A conditional write claims
 * each (customer, period, kind, meter, threshold) once, however many aggregators evaluate at the
 * same moment; the claim is an outbox row: it is published, then marked sent. A publish that
 * fails leaves the row pending and the sweeper (every minute) sends it later, so an alert is never
 * skipped. The one window for a repeat is a crash after SNS accepted the message and before the row
 * was marked sent: the sweeper then sends it again (SNS email has no de-duplication).
 */
export interface AlertDeps extends UsageDeps {
  alerts: AlertRepository;
  publisher: AlertPublisher;
}

async function send(deps: AlertDeps, record: AlertRecord): Promise<boolean> {
  try {
    const messageId = await deps.publisher.publish({ subject: record.subject, body: record.body, attributes: record.attributes });
    await deps.alerts.markSent(record, messageId, deps.clock.now().toISOString());
    return true;
  } catch (err) {
    await deps.alerts.markFailed(record, err instanceof Error ? err.message : String(err));
    return false;
  }
}

/** Evaluates one customer's period and sends what newly crossed; returns how many it sent. */
export async function evaluateCustomerAlerts(deps: AlertDeps, customerId: string, periodKey: string): Promise<number> {
  const { estimate: e, customer } = await estimate(deps, customerId, Period.parse(periodKey));
  const plan = e.terms.plan;
  const candidates = evaluateAlerts({ plan, values: Object.fromEntries(e.meters.map((m) => [m.meter, m.value])), budget: e.budget });
  if (candidates.length === 0) return 0;
  const known = new Set((await deps.alerts.list(customerId, periodKey)).map((a) => a.key));
  let sent = 0;
  for (const c of candidates.filter((x) => !known.has(x.key))) {
    const meter = c.meter ? deps.catalog.meter(c.meter) : undefined;
    const msg = alertMessage(c, {
      customerId,
      customerName: customer?.name,
      period: periodKey,
      currency: plan.currency,
      meterDisplayName: meter?.displayName,
      unit: meter?.unit,
    });
    const record: AlertRecord = {
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
      status: 'pending',
      claimedAt: deps.clock.now().toISOString(),
      attempts: 0,
    };
    if (!(await deps.alerts.claim(record))) continue; // another aggregator claimed it first
    if (await send(deps, record)) sent++;
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
  const alerts = await deps.alerts.list(customerId, period.key);
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
      claimedAt: a.claimedAt,
      sentAt: a.sentAt ?? null,
    })),
  };
}
