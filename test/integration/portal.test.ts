import { Period } from '../../lib/domain/period';
import { PortalTokens } from '../../lib/domain/portal-token';
import { ADMIN, cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * What customers see, over HTTP on the emulators (docs/portal.md): links handed out by the API,
 * the page and its CSV showing the numbers the usage API returns, and every way a link can fail
 * answered with a page. The browser's view (layout, focus, phone width) is test/browser/.
 */
let t: TestStack;
let container: () => import('../../lib/platform/container').Container;

const NAME = '<img src=x onerror=alert(1)> Acme & "Co"';
const c = 'cus_portal';
const now = new Date();
const period = Period.containing(now);
const previous = period.previous();

beforeAll(async () => {
  t = await startTestStack({ visibilityTimeoutSeconds: 3, env: { CATALOG_FILE: '', INVOICE_GRACE_MINUTES: '0' } });
  container = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container;
  const put = await t.request('PUT', `/api/v1/customers/${c}`, { body: { name: NAME, planId: 'default', budget: { amount: '50' } } });
  expect(put.status).toBe(201);
  const recent = (minutesAgo: number) => new Date(Math.max(period.start.getTime(), now.getTime() - minutesAgo * 60_000)).toISOString();
  const sent = await t.sendEvents([
    cloudEvent({ subject: c, time: recent(60 * 30), data: { value: 15000 } }),
    cloudEvent({ subject: c, time: recent(2), data: { value: '2500.5' } }),
    cloudEvent({ subject: c, type: 'storage_gb', time: recent(3), data: { value: 12 } }),
    cloudEvent({ subject: c, type: 'seats', time: recent(3), data: { value: 4 } }),
    cloudEvent({ subject: c, type: 'user_activity', time: recent(3), data: { userId: 'ann' } }),
    // Late usage of the previous period, invoiced below.
    cloudEvent({ subject: c, time: new Date(period.start.getTime() - 3_600_000).toISOString(), data: { value: 20000 } }),
  ]);
  expect(sent.status).toBe(202);
  await t.drain();
  expect((await t.request('POST', '/api/v1/invoice-runs', { body: { period: previous.key, force: true } })).status).toBe(202);
  const deadline = Date.now() + 60_000;
  while ((await t.request('GET', `/api/v1/invoice-runs/${previous.key}`)).body.status !== 'completed') {
    if (Date.now() > deadline) throw new Error('the invoice run did not complete');
    await new Promise((r) => setTimeout(r, 200));
  }
}, 180_000);
afterAll(async () => {
  await t?.stop();
});

const link = (id: string, body?: unknown, key?: string) => t.request('POST', `/api/v1/customers/${id}/portal-links`, { body, key });
const open = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, text: await res.text() };
};
/** The value of `<dd data-field=...>`'s `<data value>` inside the element with this id. */
const field = (html: string, scope: string, name: string) => {
  const part = html.slice(html.indexOf(`id="${scope}"`));
  return new RegExp(`data-field="${name}"><data value="([^"]*)"`).exec(part)?.[1];
};

describe('portal links', () => {
  it('are handed to an admin or to a read key bound to the customer, valid for the time asked (an hour by default)', async () => {
    const t0 = Date.now();
    const res = await link(c);
    expect(res.status).toBe(201);
    expect(res.body.url).toMatch(new RegExp(`^${t.stack.url}/portal\\?token=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(res.body.expiresAt) - t0).toBeGreaterThan(3_595_000);
    expect(Date.parse(res.body.expiresAt) - t0).toBeLessThanOrEqual(3_600_000);
    for (const ttlSeconds of [60, 86_400]) {
      const r = await link(c, { ttlSeconds });
      expect(Math.round((Date.parse(r.body.expiresAt) - Date.now()) / 1000)).toBeGreaterThan(ttlSeconds - 5);
    }
    const bound = await t.request('POST', '/api/v1/api-keys', { body: { name: 'portal bound', scopes: ['read'], customerId: c } });
    expect((await link(c, undefined, bound.body.key)).status).toBe(201);
    expect((await link('cus_someone_else', undefined, bound.body.key)).body.error.code).toBe('customer_forbidden');
  });

  it.each([[{ ttlSeconds: 59 }], [{ ttlSeconds: 86_401 }], [{ ttlSeconds: '600' }], [{ ttlSeconds: 90.5 }], [{ ttl: 600 }]])(
    'refuse %j with a 400',
    async (body) => {
      const res = await link(c, body);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 400, code: 'invalid_body' });
    },
  );
});

describe('the usage page', () => {
  let page: { status: number; headers: Headers; text: string };
  let usage: any;
  beforeAll(async () => {
    page = await open((await link(c)).body.url);
    usage = (await t.usage(c)).body;
  });

  it('is HTML with a policy that runs nothing, and shows every number as the usage API returns it', () => {
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-/);
    for (const m of usage.meters) {
      for (const name of ['value', 'included', 'amount', 'projectedValue']) {
        expect({ meter: m.meter, name, shown: field(page.text, `meter-${m.meter}`, name) }).toEqual({ meter: m.meter, name, shown: m[name] });
      }
    }
    expect(usage.meters.find((m: any) => m.meter === 'api_calls').value).toBe('17500.5');
    expect(field(page.text, 'main', 'subtotal')).toBe(usage.subtotal);
    expect(field(page.text, 'main', 'projection')).toBe(usage.projection.subtotal);
    expect(field(page.text, 'main', 'budget')).toBe(usage.budget.amount);
  });

  it("escapes the customer's name wherever it appears (title, heading, alert subjects)", () => {
    expect(page.text).not.toContain('<img');
    expect(page.text).toContain('&lt;img src=x onerror=alert(1)&gt; Acme &amp; &quot;Co&quot;');
    expect(page.text).toMatch(/<table id="alerts">[\s\S]*Seats \(peak\) crossed 100% of included usage, now at 133%/);
  });

  it('draws one point per day of the period so far, whose days add up to the period for a summed meter', () => {
    const days = Math.floor((now.getTime() - period.start.getTime()) / 86_400_000) + 1;
    const article = page.text.slice(page.text.indexOf('id="meter-api_calls"')).split('</article>')[0]!;
    expect(article.match(/<circle class="point/g)).toHaveLength(days);
    const table = article.slice(article.indexOf('<details>'), article.indexOf('</details>'));
    // Each row: the day's value, then the running total through it.
    const rows = [...table.matchAll(/<td class="n"><data value="([^"]+)">[^]*?<td class="n"><data value="([^"]+)">/g)].map((m) => [m[1]!, m[2]!]);
    expect(rows).toHaveLength(days);
    expect(rows.reduce((a, [day]) => a + Number(day), 0)).toBe(17500.5);
    expect(rows.at(-1)![1]).toBe('17500.5');
    // 17,500.5 of 10,000 included: the day they were reached is marked and said.
    expect(article).toContain('<line class="included"');
    expect(article).toMatch(/<p data-field="allowance">Reached the 10,000 calls included on \d{4}-\d{2}-\d{2}\.<\/p>/);
  });

  it('says in a sentence, with no chart, that a meter has no usage', () => {
    const article = page.text.slice(page.text.indexOf('id="meter-compute_seconds"')).split('</article>')[0]!;
    expect(article).toContain(`No usage so far in`);
    expect(article).not.toContain('<svg');
  });

  it('lists the periods with usage or invoices and the past invoice with its lines and status', async () => {
    expect(page.text).toContain(`<option value="${period.key}" selected>`);
    expect(page.text).toContain(`<option value="${previous.key}">`);
    const [invoice] = (await t.request('GET', `/api/v1/customers/${c}/invoices`)).body.invoices;
    expect(invoice).toMatchObject({ period: previous.key, status: 'not_synced', total: '10.00' });
    expect(page.text).toContain(`id="invoice-${previous.key}-h"`);
    expect(page.text).toContain('<span class="status">not synced</span>');
    expect(page.text).toContain('<data value="10.00">USD 10.00</data>');
  });

  it('shows another period when asked, with that period’s numbers', async () => {
    const token = new URL((await link(c)).body.url).searchParams.get('token')!;
    const old = await open(`${t.stack.url}/portal?token=${token}&period=${previous.key}`);
    const api = (await t.usage(c, previous.key)).body;
    expect(old.status).toBe(200);
    expect(field(old.text, 'meter-api_calls', 'value')).toBe(api.meters.find((m: any) => m.meter === 'api_calls').value);
    expect(field(old.text, 'meter-api_calls', 'value')).toBe('20000');
  });

  it('offers the daily usage as CSV, one row per day and meter', async () => {
    const token = new URL((await link(c)).body.url).searchParams.get('token')!;
    const res = await fetch(`${t.stack.url}/portal/usage.csv?token=${token}&period=${period.key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="usage-${c}-${period.key}.csv"`);
    const [header, ...rows] = (await res.text()).trim().split('\n');
    expect(header).toBe('date,meter,unit,aggregation,value');
    const calls = rows.filter((r) => r.split(',')[1] === 'api_calls');
    expect(calls.reduce((sum, r) => sum + Number(r.split(',')[4]), 0)).toBe(17500.5);
    expect(new Set(rows.map((r) => r.split(',')[1]))).toEqual(new Set(['api_calls', 'storage_gb', 'compute_seconds', 'seats']));
  });
});

describe('links that do not work', () => {
  const path = (token: string | undefined, query = '') => `/portal${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}${query}`;
  const expectPage = async (p: string, status: number, title: string) => {
    const res = await open(`${t.stack.url}${p}`);
    expect({ p, status: res.status, type: res.headers.get('content-type'), title: /<h1>([^<]*)<\/h1>/.exec(res.text)?.[1] }).toEqual({
      p,
      status,
      type: 'text/html; charset=utf-8',
      title,
    });
    expect(res.text).not.toMatch(/^\s+at |"error":/m);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  };

  it('answer 401 with a page that says expired, not valid or missing; the CSV too', async () => {
    const tokens = container().portalTokens;
    const expired = tokens.issue(c, new Date(Date.now() - 1000));
    await expectPage(path(expired), 401, 'This link has expired');
    const valid = tokens.issue(c, new Date(Date.now() + 60_000));
    const [payload, mac] = valid.split('.');
    const otherCustomer = `${Buffer.from(JSON.stringify({ v: 1, c: 'cus_other', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url')}.${mac}`;
    await expectPage(path(otherCustomer), 401, 'This link is not valid');
    await expectPage(path(`${payload}.${'A'.repeat(43)}`), 401, 'This link is not valid');
    await expectPage(path(new PortalTokens('another-deployment-secret-of-at-least-32').issue(c, new Date(Date.now() + 60_000))), 401, 'This link is not valid');
    await expectPage(path(ADMIN), 401, 'This link is not valid');
    await expectPage(path(undefined), 401, 'This page needs its link');
    await expectPage(`/portal/usage.csv?token=${expired}`, 401, 'This link has expired');
  });

  it('answer 400 with a page for a period that does not exist, after the token is checked', async () => {
    const valid = container().portalTokens.issue(c, new Date(Date.now() + 60_000));
    await expectPage(path(valid, '&period=2026-13'), 400, 'There is no such period');
    await expectPage(`/portal/usage.csv?token=${valid}&period=26-01`, 400, 'There is no such period');
    await expectPage(path('forged.token', '&period=2026-13'), 401, 'This link is not valid');
  });
});
