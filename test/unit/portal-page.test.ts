import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { grouped, renderError, renderPortal } from '../../functions/portal/page';
import type { PortalView } from '../../lib/app/portal';
import { ValidationError } from '../../lib/domain/errors';
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
  const credit = (key: string, currency: string, amount: string, usableOnNextInvoice: boolean) => ({
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
  expect(page.body).toContain('<td>10,000 to 100,000</td>');
  expect(page.body).not.toContain('100,000 to more');
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
