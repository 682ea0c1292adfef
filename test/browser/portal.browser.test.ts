/// <reference lib="dom" />
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startStack, type Stack } from '../../local/runtime/stack';
import { Period } from '../../lib/domain/period';

/**
 * The usage page in a real browser: Debian's Chromium, headless, driven by playwright-core, against
 * the stack `npm start` runs (in this process, default catalog). What only a browser can tell: the
 * numbers as rendered, the chart's points, the pages for a bad link, keyboard focus, a phone's width,
 * and that the content security policy lets the page's own stylesheet through.
 *
 * SCREENSHOTS=1 also writes docs/portal-desktop.png and docs/portal-phone.png.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ADMIN = 'local-admin-key';
const c = 'cus_browser';
const now = new Date();
const period = Period.containing(now);
const previous = period.previous();

let stack: Stack;
let context: BrowserContext;
let userDataDir: string;
let url: string;
let usage: any;
const policyViolations: string[] = [];

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  stack = await startStack({ port: 0, env: { CATALOG_FILE: '', POWERTOOLS_LOG_LEVEL: 'SILENT', INVOICE_GRACE_MINUTES: '0' } });
  expect((await api('PUT', `/api/v1/customers/${c}`, { name: 'Acme Browsers', planId: 'default', budget: { amount: '100' } })).status).toBe(201);
  const at = (minutesAgo: number) => new Date(Math.max(period.start.getTime(), now.getTime() - minutesAgo * 60_000)).toISOString();
  const event = (id: string, type: string, time: string, data: object) => ({ specversion: '1.0', id, source: 'browser-test', type, subject: c, time, data });
  const sent = await fetch(`${stack.url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/cloudevents-batch+json' },
    body: JSON.stringify([
      event('b-1', 'api_calls', at(60 * 24 * 3), { value: 52000 }),
      event('b-2', 'api_calls', at(5), { value: '1234.5' }),
      event('b-3', 'storage_gb', at(60 * 24 * 2), { value: 42 }),
      event('b-4', 'seats', at(5), { value: 7 }),
      // No compute_seconds: a meter without usage.
      event('b-6', 'user_activity', at(5), { userId: 'ann' }),
      // The previous period, invoiced below.
      event('b-7', 'api_calls', new Date(period.start.getTime() - 3_600_000).toISOString(), { value: 25000 }),
    ]),
  });
  expect(sent.status).toBe(202);
  const deadline = Date.now() + 60_000;
  do {
    usage = (await api('GET', `/api/v1/customers/${c}/usage`)).body;
    if (Date.now() > deadline) throw new Error('the events were not counted in time');
    await new Promise((r) => setTimeout(r, 200));
  } while (
    usage.meters.find((m: any) => m.meter === 'api_calls').value !== '53234.5' ||
    usage.meters.find((m: any) => m.meter === 'active_users').value !== '1'
  );
  expect((await api('POST', '/api/v1/invoice-runs', { period: previous.key, force: true })).status).toBe(202);
  while ((await api('GET', `/api/v1/invoice-runs/${previous.key}`)).body.status !== 'completed') {
    if (Date.now() > deadline) throw new Error('the invoice run did not complete in time');
    await new Promise((r) => setTimeout(r, 200));
  }
  // Alerts are claimed after the counters move: wait until two reads a second apart agree.
  let alerts = '';
  for (let last = '-'; alerts !== last; await new Promise((r) => setTimeout(r, 1000))) {
    last = alerts;
    alerts = JSON.stringify((await api('GET', `/api/v1/customers/${c}/alerts`)).body.alerts.map((a: any) => a.subject));
  }
  url = (await api('POST', `/api/v1/customers/${c}/portal-links`)).body.url;

  userDataDir = mkdtempSync(join(tmpdir(), 'portal-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  context.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) policyViolations.push(m.text());
  });
}, 180_000);

afterAll(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await stack?.stop();
});

async function open(target: string, viewport?: { width: number; height: number }): Promise<{ page: Page; status: number }> {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  const res = await page.goto(target);
  return { page, status: res!.status() };
}

it('renders the numbers the usage API returns for known usage, with its own stylesheet allowed', async () => {
  const { page, status } = await open(url);
  expect(status).toBe(200);
  expect(await page.title()).toBe(`Usage ${period.key} · Acme Browsers`);
  for (const m of usage.meters) {
    const shown = await page.locator(`#meter-${m.meter} [data-field="value"] data`).getAttribute('value');
    expect({ meter: m.meter, shown }).toEqual({ meter: m.meter, shown: m.value });
    expect(await page.locator(`#meter-${m.meter} [data-field="amount"] data`).getAttribute('value')).toBe(m.amount);
  }
  expect(await page.locator('#meter-api_calls [data-field="value"]').innerText()).toBe('53,234.5 calls');
  expect(await page.locator('[data-field="subtotal"] data').getAttribute('value')).toBe(usage.subtotal);
  expect(await page.locator('[data-field="projection"] data').getAttribute('value')).toBe(usage.projection.subtotal);
  expect(await page.locator('[data-field="budgetPercent"] data').getAttribute('value')).toBe(usage.budget.percentUsed);
  // The alert the seats crossed, as listed by the alerts API.
  const alerts = (await api('GET', `/api/v1/customers/${c}/alerts`)).body.alerts;
  expect(alerts.length).toBeGreaterThan(0);
  for (const a of alerts) await expect(page.locator('#alerts').innerText()).resolves.toContain(a.subject);
  // The past invoice, as the invoices API lists it: its lines and status.
  const [invoice] = (await api('GET', `/api/v1/customers/${c}/invoices`)).body.invoices;
  expect(invoice).toMatchObject({ period: previous.key, total: '15.00' });
  const shown = page.locator(`#invoice-${previous.key}-h`).locator('xpath=..');
  expect(await shown.locator('.status').innerText()).toBe(invoice.status.replace(/_/g, ' '));
  expect(await shown.locator('tbody tr').count()).toBe(invoice.lines.length);
  expect(await shown.locator('strong data').getAttribute('value')).toBe(invoice.total);
  // Styled: the policy let the stylesheet in (a refused one would leave the default black links and no grid).
  expect(
    await page
      .locator('dl.facts')
      .first()
      .evaluate((el) => getComputedStyle(el).display),
  ).toBe('grid');
  expect(policyViolations).toEqual([]);
  if (process.env.SCREENSHOTS) {
    mkdirSync(join(__dirname, '..', '..', 'docs'), { recursive: true });
    await page.setViewportSize({ width: 1280, height: 1300 });
    await page.screenshot({ path: join(__dirname, '..', '..', 'docs', 'portal-desktop.png') });
  }
  await page.close();
});

it('draws one point per day of the period so far', async () => {
  const { page } = await open(url);
  const days = Math.floor((now.getTime() - period.start.getTime()) / 86_400_000) + 1;
  for (const meter of ['api_calls', 'storage_gb', 'seats']) {
    expect({ meter, points: await page.locator(`#meter-${meter} svg.chart circle.point`).count() }).toEqual({ meter, points: days });
  }
  expect(await page.locator('#meter-active_users svg.chart').count()).toBe(0);
  // A meter without usage: a sentence, no empty chart.
  expect(await page.locator('#meter-compute_seconds svg').count()).toBe(0);
  expect(await page.locator('#meter-compute_seconds [data-field="noUsage"]').innerText()).toMatch(/^No usage so far in \w+ \d{4}\.$/);
  // A summed meter: its running total against the included 10,000 calls, reached (and marked) the day the 52,000 came.
  const reached = (await page.locator('#meter-api_calls [data-field="allowance"]').innerText()).match(
    /^Reached the 10,000 calls included on (\d{4}-\d{2}-\d{2})\.$/,
  );
  expect(reached).not.toBeNull();
  expect(await page.locator(`#meter-api_calls svg.chart circle.crossing[data-day="${reached![1]}"]`).isVisible()).toBe(true);
  // Horizontal, so no box to be "visible" in: drawn, and dashed by the page's own stylesheet.
  expect(await page.locator('#meter-api_calls svg.chart line.included').evaluate((el) => getComputedStyle(el).strokeDasharray)).toMatch(/^6(px)?,? 4(px)?$/);
  expect(await page.locator('#meter-api_calls svg.chart desc').textContent()).toContain('Reached the 10,000 calls included');
  const box = await page.locator('#meter-api_calls svg.chart').boundingBox();
  expect(box!.width).toBeGreaterThan(300);
  // Today's point carries the running total and the 1,234.5 calls of the day in its title.
  expect(await page.locator(`#meter-api_calls circle.point[data-day="${now.toISOString().slice(0, 10)}"] title`).textContent()).toMatch(
    /: 53,234\.5 calls in all \((1,234\.5|53,234\.5) calls that day\)$/, // 53,234.5 on the 1st, when the 52,000 fall on the same day
  );
  await page.close();
});

it('shows a page, not JSON, for an expired and for a forged link', async () => {
  const token = new URL(url).searchParams.get('token')!;
  const [payload, mac] = token.split('.');
  const forged = `${Buffer.from(JSON.stringify({ v: 1, c: 'cus_someone_else', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.${mac}`;
  const expiredToken = (require('../../lib/platform/container') as typeof import('../../lib/platform/container'))
    .container()
    .portalTokens.issue(c, new Date(Date.now() - 60_000));
  for (const [t, heading] of [
    [expiredToken, 'This link has expired'],
    [forged, 'This link is not valid'],
    [`${payload}.${mac!.slice(0, -1)}`, 'This link is not valid'],
  ] as const) {
    const { page, status } = await open(`${stack.url}/portal?token=${t}`);
    expect({ status, heading: await page.locator('h1').innerText() }).toEqual({ status: 401, heading });
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await page.close();
  }
});

it('lets the keyboard reach the period picker and the CSV link, with a visible focus ring', async () => {
  const { page } = await open(url);
  const reached = new Set<string>();
  for (let i = 0; i < 15 && reached.size < 2; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return { id: el.id, outline: getComputedStyle(el).outlineStyle };
    });
    if (focused.id === 'period' || focused.id === 'csv') {
      reached.add(focused.id);
      expect({ id: focused.id, outline: focused.outline }).toEqual({ id: focused.id, outline: 'solid' });
    }
  }
  expect([...reached].sort()).toEqual(['csv', 'period']);
  await page.close();
});

it('switches period with the picker (a plain form: the page has no script) and downloads the daily CSV', async () => {
  const { page } = await open(url);
  expect(await page.locator('script').count()).toBe(0);
  await page.locator('#period').selectOption(previous.key);
  await Promise.all([page.waitForURL(/period=/), page.locator('form.picker button').click()]);
  expect(new URL(page.url()).searchParams.get('period')).toBe(previous.key);
  const old = (await api('GET', `/api/v1/customers/${c}/usage?period=${previous.key}`)).body;
  expect(await page.locator('#meter-api_calls [data-field="value"] data').getAttribute('value')).toBe(
    old.meters.find((m: any) => m.meter === 'api_calls').value,
  );
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#csv').click()]);
  const csv = readFileSync((await download.path())!, 'utf8');
  expect(csv.split('\n')[0]).toBe('date,meter,unit,aggregation,value');
  expect(csv).toContain(`,api_calls,calls,SUM,25000`);
  expect(download.suggestedFilename()).toBe(`usage-${c}-${previous.key}.csv`);
  await page.close();
});

it('fits a 375 px wide phone screen without horizontal scrolling', async () => {
  const { page } = await open(url, { width: 375, height: 812 });
  const width = () => page.evaluate(() => ({ content: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth }));
  expect(await width()).toEqual({ content: 375, viewport: 375 });
  if (process.env.SCREENSHOTS) await page.screenshot({ path: join(__dirname, '..', '..', 'docs', 'portal-phone.png') });
  // With every table of daily values open too.
  for (const summary of await page.locator('details summary').all()) await summary.click();
  expect(await width()).toEqual({ content: 375, viewport: 375 });
  // The measure sees overflow when there is some: one element too wide, and the page scrolls.
  await page.evaluate(() => {
    const wide = document.createElement('div');
    wide.style.width = '600px';
    wide.textContent = 'too wide';
    document.querySelector('main')!.append(wide);
  });
  expect((await width()).content).toBeGreaterThan(375);
  await page.close();
});
