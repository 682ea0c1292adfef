import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { grouped, renderError, renderPortal, scaleTop } from '../../functions/portal/page';
import type { PortalView } from '../../lib/app/portal';
import { ValidationError } from '../../lib/domain/errors';
import { PORTAL_LINK_TTL } from '../../lib/domain/portal-token';
import { requestBaseUrl } from '../../lib/platform/http';

/** The usage page as HTML, from a view built by hand: escaping, numbers, chart points, accessibility, headers. */
const HOSTILE = '<script>alert("x")</script> & \'friends\'';

function view(over: Partial<PortalView> = {}): PortalView {
  const days = ['2026-11-01', '2026-11-02', '2026-11-03'];
  return {
    customerId: 'cus_42',
    customerName: HOSTILE,
    token: 'eyJ2IjoxfQ.sig"><b>',
    expiresAt: '2026-11-03T13:00:00.000Z',
    current: '2026-11',
    periods: ['2026-11', '2026-10'],
    usage: {
      customerId: 'cus_42',
      period: '2026-11',
      periodStart: '2026-11-01T00:00:00.000Z',
      periodEnd: '2026-12-01T00:00:00.000Z',
      planId: 'default',
      planVersion: 2,
      currency: 'usd',
      asOf: '2026-11-03T12:00:00.000Z',
      meters: [
        {
          meter: 'api_calls',
          displayName: 'API Calls',
          unit: 'calls',
          aggregation: 'SUM',
          value: '1234567.5',
          included: '10000',
          percentUsed: '12345.67',
          amount: '406.91',
          tiers: [
            { index: 0, from: '0', upTo: '10000', quantity: '10000', unitPrice: '0', amount: '0' },
            { index: 1, from: '10000', upTo: '100000', quantity: '90000', unitPrice: '0.001', amount: '90' },
            { index: 2, from: '100000', upTo: null, quantity: '0', unitPrice: '0.0005', amount: '0' },
          ],
          projectedValue: '12345675',
        },
        {
          meter: 'storage_gb',
          displayName: 'Storage (peak)',
          unit: 'GB',
          aggregation: 'MAX',
          value: '9',
          included: '5',
          percentUsed: '180',
          amount: '1.00',
          tiers: [],
          projectedValue: '9',
        },
        {
          meter: 'active_users',
          displayName: 'Active users',
          unit: 'users',
          aggregation: 'UNIQUE_COUNT',
          value: '2',
          included: '0',
          percentUsed: null,
          amount: '0.00',
          tiers: [],
          projectedValue: '2',
        },
      ],
      baseFee: '0.00',
      subtotal: '407.91',
      budget: { amount: '500.00', currency: 'usd', percentUsed: '81.58', projectedPercent: '1000.00' },
      projection: { subtotal: '5000.00', method: '' },
      duplicatesDropped: 0,
    },
    series: [
      { meter: 'api_calls', points: days.map((day, i) => ({ day, value: String(i * 1000) })) },
      {
        meter: 'storage_gb',
        points: [
          { day: days[0]!, value: '9' },
          { day: days[1]!, value: null },
          { day: days[2]!, value: '4' },
        ],
      },
    ],
    alerts: [
      {
        kind: 'included',
        meter: 'api_calls',
        threshold: 100,
        value: '1234567.5',
        limit: '10000',
        percent: '12345.67',
        subject: `${HOSTILE}: API Calls at 100%`,
        status: 'sent',
        claimedAt: '2026-11-02T10:00:00.000Z',
        sentAt: '2026-11-02T10:00:01.000Z',
      },
    ],
    invoices: [
      {
        customerId: 'cus_42',
        key: '2026-10',
        period: '2026-10',
        kind: 'period',
        status: 'finalized',
        planId: 'default',
        currency: 'usd',
        lines: [
          {
            kind: 'usage',
            meter: 'api_calls',
            period: '2026-10',
            description: `API Calls ${HOSTILE}`,
            quantity: '20000',
            unitAmount: '0.001',
            amount: '10.00',
            lineKey: 'api_calls',
          },
        ],
        total: '10.00',
        creditAppliedTo: null,
        stripeInvoiceId: 'in_1',
        stripeStatus: 'open',
        hostedInvoiceUrl: 'javascript:alert(1)',
        quantities: {},
        corrections: [],
        lastError: null,
        createdAt: '2026-11-01T02:00:00.000Z',
        finalizedAt: '2026-11-01T02:00:01.000Z',
      },
    ],
    credits: { credits: [], owed: [] },
    ...over,
  } as PortalView;
}

const page = renderPortal(view());

it('escapes every customer-supplied string: name, alert subjects, invoice lines, the token', () => {
  expect(page.body).not.toContain('<script>');
  expect(page.body).not.toContain('"><b>');
  expect(page.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;friends&#39;');
  // Only https invoice links are followed; a javascript: URL is not a link at all.
  expect(page.body).not.toContain('javascript:');
});

it('lists credits owed, saying where each goes: the next invoice, or a correction or refund in a currency left', () => {
  const credit = (key: string, currency: PortalView['credits']['credits'][number]['currency'], amount: string, usableOnNextInvoice: boolean) => ({
    key,
    period: key,
    currency,
    amount,
    status: 'open' as const,
    appliedTo: null,
    usableOnNextInvoice,
    settledAt: null,
    settledBy: null,
    reason: null,
    reference: null,
  });
  const body = renderPortal(
    view({
      credits: {
        credits: [credit('2026-08', 'usd', '50.00', false), credit('2026-09', 'jpy', '300', true)],
        owed: [
          { currency: 'jpy', amount: '300' },
          { currency: 'usd', amount: '50.00' },
        ],
      },
    }),
  ).body;
  const section = body.slice(body.indexOf('id="credits-h"')).split('</section>')[0]!;
  expect(section).toContain('<data value="50.00">USD 50.00</data> from the August 2026 invoice: in USD, which your invoices are no longer in');
  expect(section).toContain('<data value="300">JPY 300</data> from the September 2026 invoice: it goes on your next invoice.');
  expect(page.body).not.toContain('id="credits-h"'); // none owed: no section
});

it('shows a closed, invoiced period as invoiced plus the correction pending, with no subtotal "so far" and no projection', () => {
  const base = view();
  const body = renderPortal(
    view({
      usage: {
        ...base.usage,
        closed: true,
        invoice: { key: '2026-10', status: 'finalized', total: '10.00', billed: '10.00', stripeInvoiceId: 'in_1' },
        pendingCorrection: { currency: 'usd', lines: [], total: '10.00', carriedBy: '2026-11' },
      },
    }),
  ).body;
  expect(body).toContain('Invoiced (finalized)');
  expect(body).toContain('<dd data-field="billed"><data value="10.00">USD 10.00</data></dd>');
  expect(body).toMatch(/data-field="pendingCorrection"><data value="10.00">USD 10.00<\/data>, on the November 2026 invoice/);
  expect(body).not.toContain('so far');
  expect(body).not.toContain('data-field="projection"');
  expect(page.body).toContain('Subtotal so far'); // the current period says so
});

it('names the plan and the version of it that prices the period', () => {
  expect(page.body).toContain('plan <code>default</code> (version 2)');
});

it('shows the API numbers unchanged in <data value>, with thousands separators for the eye', () => {
  expect(page.body).toContain('<dd data-field="value"><data value="1234567.5">1,234,567.5</data> calls</dd>');
  expect(page.body).toContain('<dd data-field="subtotal"><data value="407.91">USD 407.91</data></dd>');
  expect(page.body).toContain('<dd data-field="projection"><data value="5000.00">USD 5,000.00</data></dd>');
  expect(page.body).toContain('<data value="81.58">81.58</data>%');
  expect([grouped('-1234.5000'), grouped('999'), grouped('1000'), grouped('abc')]).toEqual(['-1,234.5000', '999', '1,000', 'abc']);
});

it('draws one point per day, marks a day without a reading, and lists only the tiers reached', () => {
  const article = (meter: string) => page.body.slice(page.body.indexOf(`id="meter-${meter}"`)).split('</article>')[0]!;
  const points = (meter: string) => article(meter).match(/<circle class="point[^"]*"/g) ?? [];
  expect(points('api_calls')).toHaveLength(3);
  expect(points('storage_gb')).toEqual(['<circle class="point"', '<circle class="point none"', '<circle class="point"']);
  expect(page.body).toContain('<title>2026-11-02: no reading</title>');
  expect(article('active_users')).not.toContain('<svg');
  expect(article('active_users')).toContain('no daily series');
  expect(page.body.match(/<caption>Tiers reached<\/caption>/g)).toHaveLength(1);
  expect(page.body).toContain('<td>up to 10,000 calls</td>');
  expect(page.body).toContain('<td>10,000 to 100,000 calls</td>');
  expect(page.body).not.toContain('to more');
});

/** The page of a view with these meters and daily series instead of the default ones. */
function pageWith(meters: Partial<PortalView['usage']['meters'][number]>[], series: PortalView['series'], usage: Partial<PortalView['usage']> = {}) {
  const base = view();
  const full = meters.map((m) => ({
    meter: 'api_calls',
    displayName: 'API Calls',
    unit: 'calls',
    aggregation: 'SUM' as const,
    value: '0',
    included: '0',
    percentUsed: null,
    amount: '0.00',
    tiers: [],
    projectedValue: '0',
    ...m,
  }));
  return renderPortal(view({ usage: { ...base.usage, meters: full, ...usage }, series })).body;
}
const articleOf = (body: string, meter: string) => body.slice(body.indexOf(`id="meter-${meter}"`)).split('</article>')[0]!;
const novemberDays = (n: number) => Array.from({ length: n }, (_, i) => `2026-11-${String(i + 1).padStart(2, '0')}`);

describe('a summed meter: the running total against the included units', () => {
  // 400 calls a day for 5 days, none yet on the 6th: 2,000 of 10,000 included, 12,000 projected.
  const days = novemberDays(6);
  const body = pageWith(
    [{ value: '2000', included: '10000', percentUsed: '20.00', projectedValue: '12000' }],
    [{ meter: 'api_calls', points: days.map((day, i) => ({ day, value: i < 5 ? '400' : '0' })) }],
    { asOf: '2026-11-06T00:00:00.000Z' },
  );
  const article = articleOf(body, 'api_calls');

  it('draws the running total per day so far over the whole period, with a line at the included units and the projection', () => {
    const cy = [...article.matchAll(/<circle class="point" data-day="([\d-]+)" cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])]);
    expect(cy.map(([day]) => day)).toEqual(days);
    const ys = cy.map(([, y]) => y as number);
    for (let i = 1; i < 5; i++) expect(ys[i]).toBeLessThan(ys[i - 1]!); // rising: a running total, not daily spikes
    expect(ys[5]).toBe(ys[4]); // a day without usage keeps the total
    expect(article).toContain('<title>2026-11-03: 1,200 calls in all (400 calls that day)</title>');
    expect(article).toMatch(/<line class="included" [^>]*\/>\s*<text class="included" [^>]*>10k<\/text>/); // on the y axis, over no line
    expect(article).toContain('dashed red: the 10,000 calls included; dashed blue: the projection.');
    expect(article).toContain('<line class="projection"');
    expect(article).toContain('<text x="588" y="172" text-anchor="end">11-30</text>'); // the x axis is the whole period
    expect(article).toContain('<th scope="col" class="n">In all (calls)</th>');
    expect(article).toContain(
      '<td>2026-11-05</td>\n                <td class="n"><data value="400">400</data></td>\n                <td class="n"><data value="2000">2,000</data></td>',
    );
  });

  it("marks the day the projection reaches the included units, and says so in text and in the chart's description", () => {
    const sentence = 'At the rate so far, usage reaches the 10,000 calls included on 2026-11-26 (projected: 12,000 calls at the end of the period).';
    expect(article).toContain(`<p data-field="allowance">${sentence}</p>`);
    expect(article).toMatch(
      new RegExp(
        `<desc id="chart-api_calls-d">6 of 30 days; 2,000 calls in all on 2026-11-06; 10,000 calls included\\. ${sentence.replace(/[.()]/g, '\\$&')}</desc>`,
      ),
    );
    expect(article).toMatch(/<circle class="crossing" data-day="2026-11-26" [^>]*><title>At the rate so far/);
    expect(article).toMatch(/<svg class="chart" [^>]*role="img" aria-labelledby="chart-api_calls-t chart-api_calls-d">/);
  });

  it('says when the projection stays within the included units, and marks no day', () => {
    const within = articleOf(
      pageWith(
        [{ value: '1000', included: '10000', percentUsed: '10.00', projectedValue: '6000' }],
        [{ meter: 'api_calls', points: days.map((day, i) => ({ day, value: i < 5 ? '200' : '0' })) }],
        { asOf: '2026-11-06T00:00:00.000Z' },
      ),
      'api_calls',
    );
    expect(within).toContain(
      '<p data-field="allowance">At the rate so far, usage stays within the 10,000 calls included (projected: 6,000 calls at the end of the period).</p>',
    );
    expect(within).not.toContain('class="crossing"');
  });

  it('marks the day the included units were reached, with totals added exactly (0.1 + 0.2 is 0.3)', () => {
    const reached = articleOf(
      pageWith(
        [
          {
            meter: 'compute_seconds',
            displayName: 'Compute',
            unit: 'seconds',
            value: '3600.3',
            included: '3600',
            percentUsed: '100.00',
            projectedValue: '36003',
          },
        ],
        [{ meter: 'compute_seconds', points: novemberDays(3).map((day, i) => ({ day, value: ['0.1', '0.2', '3600'][i]! })) }],
      ),
      'compute_seconds',
    );
    expect(reached).toContain('<td class="n"><data value="0.3">0.3</data></td>');
    expect(reached).not.toContain('0.30000000000000004');
    expect(reached).toContain('<p data-field="allowance">Reached the 3,600 seconds included on 2026-11-03.</p>');
    expect(reached).toMatch(/<circle class="crossing" data-day="2026-11-03" /);
  });

  it('draws no included line and says nothing of an allowance for a meter with none', () => {
    const none = articleOf(
      pageWith(
        [{ value: '5', projectedValue: '50' }],
        [{ meter: 'api_calls', points: novemberDays(3).map((day) => ({ day, value: day.endsWith('3') ? '5' : '0' })) }],
      ),
      'api_calls',
    );
    expect(none).toContain('<circle class="point"');
    expect(none).not.toContain('class="included"');
    expect(none).not.toContain('data-field="allowance"');
  });
});

it('tops a chart with a short round number that fits left of the axis', () => {
  expect([238660.1, 1234567.5, 12345675, 50000, 10000, 5000, 42, 7, 3, 1, 0.3, 0].map((v) => scaleTop(v))).toEqual([
    { top: 250000, label: '250k' },
    { top: 2000000, label: '2M' },
    { top: 20000000, label: '20M' },
    { top: 50000, label: '50k' },
    { top: 10000, label: '10k' },
    { top: 5000, label: '5,000' },
    { top: 50, label: '50' },
    { top: 10, label: '10' },
    { top: 5, label: '5' },
    { top: 1, label: '1' },
    { top: 0.5, label: '0.5' },
    { top: 1, label: '1' },
  ]);
});

describe('a meter without usage', () => {
  it('says so in a sentence instead of drawing an empty chart, whatever its aggregation', () => {
    const body = pageWith(
      [
        { meter: 'api_calls', included: '10000' },
        { meter: 'seats', displayName: 'Seats (peak)', unit: 'seats', aggregation: 'MAX', included: '3' },
        { meter: 'active_users', displayName: 'Active users', unit: 'users', aggregation: 'UNIQUE_COUNT' },
        { meter: 'storage_gb', displayName: 'Storage (peak)', unit: 'GB', aggregation: 'MAX', value: '2' },
      ],
      [
        { meter: 'api_calls', points: novemberDays(3).map((day) => ({ day, value: '0' })) },
        { meter: 'seats', points: novemberDays(3).map((day) => ({ day, value: null })) },
        { meter: 'storage_gb', points: novemberDays(3).map((day) => ({ day, value: '2' })) },
      ],
    );
    for (const meter of ['api_calls', 'seats', 'active_users']) {
      const article = articleOf(body, meter);
      expect({ meter, svg: article.includes('<svg'), table: article.includes('Daily values') }).toEqual({ meter, svg: false, table: false });
      expect(article).toContain('<p class="muted" data-field="noUsage">No usage so far in November 2026.</p>');
    }
    expect(articleOf(body, 'storage_gb')).toContain('<svg class="chart"');
    const closed = pageWith([{ meter: 'api_calls' }], [{ meter: 'api_calls', points: [] }], { closed: true });
    expect(articleOf(closed, 'api_calls')).toContain('No usage in November 2026.');
  });
});

describe('tiers and units in words', () => {
  it('names the open tier "above 3 seats", not "3 to more", and says "1 seat", not "1 seats"', () => {
    const body = pageWith(
      [
        {
          meter: 'seats',
          displayName: 'Seats (peak)',
          unit: 'seats',
          aggregation: 'MAX',
          value: '4',
          included: '3',
          percentUsed: '133.33',
          amount: '8.00',
          projectedValue: '4',
          tiers: [
            { index: 0, from: '0', upTo: '3', quantity: '3', unitPrice: '0', amount: '0' },
            { index: 1, from: '3', upTo: null, quantity: '1', unitPrice: '8.00', amount: '8.00' },
          ],
        },
        { meter: 'storage_gb', displayName: 'Storage (peak)', unit: 'seats', aggregation: 'MAX', value: '1', included: '1', projectedValue: '1' },
      ],
      [
        { meter: 'seats', points: [{ day: '2026-11-01', value: '4' }] },
        { meter: 'storage_gb', points: [{ day: '2026-11-01', value: '1' }] },
      ],
    );
    const seats = articleOf(body, 'seats');
    expect(seats).toContain('<td>up to 3 seats</td>');
    expect(seats).toContain('<td>above 3 seats</td>');
    expect(seats).not.toContain('to more');
    const one = articleOf(body, 'storage_gb');
    expect(one).toContain('<dd data-field="value"><data value="1">1</data> seat</dd>');
    expect(one).toContain('<dd data-field="included"><data value="1">1</data> seat</dd>');
    expect(one).toContain('<title>2026-11-01: 1 seat</title>');
    expect(body).not.toMatch(/>1<\/data> seats/);
  });
});

it('is a page for people: language, viewport, labelled picker, table headers, no script, a policy that allows only its stylesheet', () => {
  expect(page.body).toMatch(/^<!doctype html>\n<html lang="en">/);
  expect(page.body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1" />');
  expect(page.body).toContain('<label for="period">Period</label>');
  expect(page.body).toContain('<option value="2026-11" selected>November 2026 (current)</option>');
  expect(page.body).not.toMatch(/<script|\son[a-z]+=|style="/i);
  for (const th of page.body.match(/<th[ >][^>]*/g) ?? []) expect(th).toContain('scope="col"');
  const css = /<style>([\s\S]*?)<\/style>/.exec(page.body)![1]!;
  expect(page.headers['content-security-policy']).toContain(`style-src 'sha256-${createHash('sha256').update(css).digest('base64')}'`);
  expect(page.headers['content-security-policy']).toContain("default-src 'none'");
  expect(page.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' });
});

it('links the CSV and the period picker relative to the page, carrying the token', () => {
  expect(page.body).toContain(`href="portal/usage.csv?token=${encodeURIComponent('eyJ2IjoxfQ.sig"><b>')}&amp;period=2026-11"`);
  expect(page.body).toContain('<form class="picker" method="get" action="portal">');
});

describe('error pages', () => {
  it.each([
    [401, 'portal_link_expired', 'this link has expired', 'This link has expired'],
    [401, 'portal_link_invalid', 'this link is not valid', 'This link is not valid'],
    [400, 'invalid_period', 'period must be YYYY-MM; got "2026-13"', 'There is no such period'],
  ])('%i %s is a page that says so', (status, code, message, title) => {
    const res = renderError({ status, code, message, requestId: 'req-1' });
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain(`<h1>${title}</h1>`);
    expect(res.body).toContain('req-1');
  });

  it('tells how long links last as the tokens allow: up to 24 hours, 1 hour by default', () => {
    const res = renderError({ status: 401, code: 'portal_link_expired', message: 'this link has expired', requestId: 'req-3' });
    expect(res.body).toContain('A usage link lasts up to 24 hours (1 hour unless whoever made it chose otherwise).');
    expect(res.body).not.toContain('a few hours');
    expect(PORTAL_LINK_TTL).toMatchObject({ maxSeconds: 24 * 3600, defaultSeconds: 3600 });
  });

  it('says nothing of the cause of a 500', () => {
    const res = renderError({
      status: 500,
      code: 'internal_error',
      message: 'an internal error occurred; quote the requestId when reporting it',
      requestId: 'req-2',
    });
    expect(res.body).toContain('<h1>Something went wrong</h1>');
    expect(res.body).not.toContain('internal error occurred');
  });
});

describe('the base of a link', () => {
  const event = (domainName: string | undefined) => ({ requestContext: { domainName } }) as unknown as APIGatewayProxyEventV2;

  it.each([
    ['the configured PUBLIC_URL first', 'abc.execute-api.eu-west-1.amazonaws.com', 'https://usage.example.com', false, 'https://usage.example.com'],
    ["else API Gateway's domain, over https", 'abc.execute-api.eu-west-1.amazonaws.com', undefined, false, 'https://abc.execute-api.eu-west-1.amazonaws.com'],
    ['locally the Host, over http', '127.0.0.1:3000', undefined, true, 'http://127.0.0.1:3000'],
  ])('%s', (_, domainName, publicUrl, isLocal, base) => {
    expect(requestBaseUrl(event(domainName), { publicUrl, isLocal })).toBe(base);
  });

  it.each([[undefined], ['evil.example/phish?x='], ['user@host'], ['']])('refuses a host a link could not safely name: %j', (domainName) => {
    expect(() => requestBaseUrl(event(domainName), { isLocal: true })).toThrow(ValidationError);
  });
});
