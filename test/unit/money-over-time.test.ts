import catalogJson from '../../catalog/catalog.json';
import { scheduledInvoiceRun } from '../../lib/app/invoicing/runs';
import { readUsage } from '../../lib/app/usage';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { correctionLookback } from '../../lib/domain/period';
import { Period } from '../../lib/domain/period';
import { settingsProblems } from '../../lib/platform/config';
import { admin, billingWorld } from '../support/billing-world';

/**
 * Money over time: prices, plans and settings change while invoices already sent must not. One
 * scenario per case an auditor found, each on the pure compute and the in-memory stores.
 */
const catalog = new CatalogIndex(parseCatalog(catalogJson));
const jul = Period.parse('2026-07');
const sep = Period.parse('2026-09');
const oct = Period.parse('2026-10');
const nov = Period.parse('2026-11');
const dec = Period.parse('2026-12');
const jan = Period.parse('2027-01');
const HOUR = 3_600_000;
const DAY = 86_400_000;

describe('settings that cannot contradict each other', () => {
  it('corrects every period an event can still land in: the lookback follows the late-event window', () => {
    // The shortest k months after a period's end (February first) must outlast the window.
    expect(correctionLookback(35 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(58 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(59 * DAY, 0)).toBe(3);
    expect(correctionLookback(59 * DAY, HOUR)).toBe(2);
    expect(correctionLookback(90 * DAY, HOUR)).toBe(4);
    expect(correctionLookback(365 * DAY, HOUR)).toBe(12);
  });

  it('with a 90-day window, a late September event that arrives in December is corrected (it was never billed)', async () => {
    const w = billingWorld(catalog, new Date(sep.start.getTime() + DAY), { correctionWindowMs: 90 * DAY });
    await w.put('cus_late', { name: 'Late', stripeCustomerId: 'cus_s1' });
    w.deps.ledger.set('cus_late', sep.key, { api_calls: '20000' }); // 10.00
    await w.run(sep);
    await w.run(oct);
    await w.run(nov);
    w.deps.ledger.set('cus_late', sep.key, { api_calls: '100000' }); // 85 days late: +80.00 (to 90.00)
    expect((await readUsage(w.deps, admin, 'cus_late', sep.key)).subtotal).toBe('90.00');
    await w.run(dec);
    await w.run(jan);
    const billed = w.deps.invoices
      .all()
      .flatMap((r) => r.lines.filter((l) => (l.period ?? r.period) === sep.key))
      .reduce((s, l) => s + BigInt(l.amountMinor), 0n);
    expect(billed).toBe(9000n);
  });

  it('the schedule invoices the month that ended before it fired, whatever the grace, and never resumes a finished run', async () => {
    const w = billingWorld(catalog, new Date(oct.start.getTime() + DAY), { graceMs: 120 * 60_000 });
    await w.put('cus_s', { name: 'S', stripeCustomerId: 'cus_s2' });
    w.deps.ledger.set('cus_s', oct.key, { api_calls: '20000' });
    // 01:00 on the 1st: October ends plus 120 minutes of grace have not passed yet.
    expect(await scheduledInvoiceRun(w.deps, new Date(oct.end.getTime() + HOUR))).toMatchObject({ started: false, period: oct.key });
    expect(w.deps.runs.runs.has(sep.key)).toBe(false); // not the month before last
    expect(w.deps.runs.runs.has(oct.key)).toBe(false);
    w.clock.at = new Date(oct.end.getTime() + 2 * HOUR + 60_000);
    expect(await scheduledInvoiceRun(w.deps, w.clock.now())).toMatchObject({ started: true, period: oct.key });
    await w.drain();
    expect(w.records('cus_s')[oct.key]).toMatchObject({ status: 'finalized', total: '10.00' });
    const startedAt = w.deps.runs.runs.get(oct.key)!.startedAt;
    // The schedule fires again (hourly in the first days): the finished run is left alone.
    w.clock.at = new Date(oct.end.getTime() + 3 * HOUR);
    expect(await scheduledInvoiceRun(w.deps, w.clock.now())).toMatchObject({ started: false, period: oct.key, reason: expect.stringContaining('exists') });
    expect(w.deps.invoiceJobs.jobs).toEqual([]);
    expect(w.deps.runs.runs.get(oct.key)).toMatchObject({ startedAt, fannedOut: true });
  });

  it('refuses to start with settings that cannot work, naming both', () => {
    expect(settingsProblems({ INVOICE_GRACE_MINUTES: 60, DEDUPE_WINDOW_DAYS: 35 })).toEqual([]);
    const [problem] = settingsProblems({ INVOICE_GRACE_MINUTES: 36 * 24 * 60, DEDUPE_WINDOW_DAYS: 35 });
    expect(problem).toContain('INVOICE_GRACE_MINUTES');
    expect(problem).toContain('DEDUPE_WINDOW_DAYS');
    const [tooLong] = settingsProblems({ INVOICE_GRACE_MINUTES: 60, DEDUPE_WINDOW_DAYS: 400 });
    expect(tooLong).toContain('DEDUPE_WINDOW_DAYS');
  });
});
