import { createHash } from 'node:crypto';
import type { PortalView, MeterSeries } from '../../lib/app/portal';
import { daysSoFar, type DailyPoint } from '../../lib/domain/daily';
import { dec } from '../../lib/domain/money';
import { Period } from '../../lib/domain/period';
import { PORTAL_LINK_TTL } from '../../lib/domain/portal-token';
import { dayIncludedReached, projectedCrossing, runningTotals } from '../../lib/domain/projection';
import { quantityWithUnit, tierRangeWords, unitFor } from '../../lib/domain/units';
import { Html, markup } from '../../lib/platform/html';
import type { PageError, PageResponse } from '../../lib/platform/http';

/**
 * The usage page (docs/portal.md): server-rendered HTML, no script. Numbers are the API's own
 * strings, shown with thousands separators and kept exact in `<data value>`; charts are inline SVG
 * with their values also in a table; every interpolated value is escaped (lib/platform/html.ts).
 */

const CSS = `
:root{color-scheme:light;--ink:#1f2937;--muted:#4b5563;--line:#d1d5db;--accent:#1d4ed8;--warn:#b91c1c;--bg:#f9fafb}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
.wrap{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.25rem}h3{font-size:1.1rem;margin:0 0 .5rem}
p{margin:.5rem 0}.muted{color:var(--muted)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{position:static}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.bar{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}
form.picker{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
select,button{font:inherit;padding:.35rem .5rem;border:1px solid var(--muted);border-radius:.25rem;background:#fff;color:var(--ink)}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.5rem;margin:.5rem 0}
dl.facts div{background:var(--bg);border:1px solid var(--line);border-radius:.25rem;padding:.5rem}
dt{font-size:.85rem;color:var(--muted)}dd{margin:0;font-weight:600;overflow-wrap:anywhere}
article{border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:1rem 0}
figure{margin:.5rem 0}figcaption{font-size:.85rem;color:var(--muted)}
svg{display:block;width:100%;height:auto}
.chart .axis{stroke:var(--muted);stroke-width:1}.chart .grid{stroke:var(--line);stroke-width:1}
.chart .line{fill:none;stroke:var(--accent);stroke-width:2}
.chart .point{fill:var(--accent)}.chart .none{fill:#fff;stroke:var(--muted);stroke-width:1.5}
.chart text{font-size:12px;fill:var(--muted)}
.chart .included{stroke:var(--warn);stroke-width:1.5;stroke-dasharray:6 4}.chart text.included{fill:#991b1b;stroke:none;font-weight:600}
.chart .projection{fill:none;stroke:var(--accent);stroke-width:1.5;stroke-dasharray:4 4}
.chart .mark{stroke:var(--warn);stroke-width:1;stroke-dasharray:2 3}.chart .crossing{fill:#fff;stroke:var(--warn);stroke-width:2.5}
svg.budget{height:.75rem;margin:.25rem 0}
.budget .track{fill:var(--line)}.budget .used{fill:var(--accent)}.budget .over{fill:var(--warn)}.budget .projected{stroke:var(--ink);stroke-width:1.5}
table{width:100%;border-collapse:collapse;table-layout:fixed;margin:.5rem 0;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.35rem .25rem;border-bottom:1px solid var(--line);overflow-wrap:anywhere;vertical-align:top}
th{color:var(--muted);font-weight:600}td.n,th.n{text-align:right}
.status{font-size:.85rem;font-weight:600;padding:.1rem .4rem;border-radius:.25rem;background:var(--bg);border:1px solid var(--line)}
details{margin:.5rem 0}summary{cursor:pointer;color:var(--accent)}
footer{margin:2rem 0 1rem;font-size:.85rem;color:var(--muted)}
@media (max-width:30rem){.wrap{padding:.75rem}h1{font-size:1.3rem}table{font-size:.85rem}}
`;

/** The stylesheet is the only inline content the policy allows, by its hash; nothing may run. */
const CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'`,
  "img-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  // The token is in the URL: no page it links to (a Stripe invoice) may learn it, and no cache may keep it.
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

/** Thousands separators for display; the digits are the API's, unchanged. */
export function grouped(raw: string): string {
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(raw);
  return m ? `${m[1]}${m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${m[3] ?? ''}` : raw;
}
const num = (raw: string) => markup`<data value="${raw}">${grouped(raw)}</data>`;
/** A quantity and its unit: "<data>1</data> seat", "<data>10,000</data> calls". */
const amountOf = (raw: string, unit: string) => markup`${num(raw)} ${unitFor(raw, unit)}`;
const money = (raw: string, currency: string) => markup`<data value="${raw}">${currency.toUpperCase()} ${grouped(raw)}</data>`;
const percent = (raw: string | null) => (raw === null ? markup`<span class="muted">no allowance</span>` : markup`<data value="${raw}">${raw}%</data>`);
const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
const monthName = (period: string) =>
  new Intl.DateTimeFormat('en', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${period}-01T00:00:00Z`));

function shell(title: string, body: Html): string {
  return markup`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>${title}</title>
    <style>${new Html(CSS)}</style>
  </head>
  <body>
    <a class="skip" href="#main">Skip to the usage</a>
    <div class="wrap">${body}</div>
  </body>
</html>
`.text;
}

// ---------------------------------------------------------------------------------------------
// Charts

const W = 600;
const H = 180;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

type Usage = PortalView['usage'];
type Meter = Usage['meters'][number];

/** A meter with nothing to draw: no usage in the period, and no day with a reading other than 0. */
function noUsage(m: Meter, series: MeterSeries | undefined): boolean {
  return dec(m.value).isZero() && (series?.points ?? []).every((p) => p.value === null || dec(p.value).isZero());
}

/**
 * The top of a chart's scale: the smallest 1, 2, 2.5 or 5 × 10^k at or above the highest value, so
 * its label is short and round ("250k" over 238,660.1) and fits left of the axis. Drawing only: the
 * values themselves are shown exactly, in titles and tables.
 */
export function scaleTop(highest: number): { top: number; label: string } {
  if (!(highest > 0)) return { top: 1, label: '1' };
  const magnitude = 10 ** Math.floor(Math.log10(highest));
  const top = Number(([1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((v) => v >= highest) ?? 10 * magnitude).toPrecision(3));
  return { top, label: axisLabel(top) };
}

/** A value as an axis label, short enough for the room left of the axis: "250k", "1.23M", "3,600", "0.5". */
function axisLabel(value: number): string {
  const [divisor, suffix] = value >= 1e9 ? [1e9, 'G'] : value >= 1e6 ? [1e6, 'M'] : value >= 1e4 ? [1e3, 'k'] : [1, ''];
  return `${grouped(String(Number((value / divisor).toPrecision(3))))}${suffix}`;
}

/** The frame of a chart: top and zero lines and their labels, the first and last day under the x axis. */
function frame(top: string | null, y: (v: number) => number, first: string | undefined, last: string | undefined): Html {
  return markup`<line class="grid" x1="${PAD.left}" y1="${PAD.top}" x2="${W - PAD.right}" y2="${PAD.top}" />
        <line class="axis" x1="${PAD.left}" y1="${y(0).toFixed(1)}" x2="${W - PAD.right}" y2="${y(0).toFixed(1)}" />
        ${top === null ? '' : markup`<text x="${PAD.left - 6}" y="${PAD.top + 4}" text-anchor="end">${top}</text>`}
        <text x="${PAD.left - 6}" y="${(y(0) + 4).toFixed(1)}" text-anchor="end">0</text>
        ${first ? markup`<text x="${PAD.left}" y="${H - 8}">${first.slice(5)}</text>` : ''}
        ${last && last !== first ? markup`<text x="${W - PAD.right}" y="${H - 8}" text-anchor="end">${last.slice(5)}</text>` : ''}`;
}

/** x of the i-th of n days, spread over the chart's width. */
const xOf = (n: number) => (i: number) => (n === 1 ? (PAD.left + W - PAD.right) / 2 : PAD.left + (i * (W - PAD.left - PAD.right)) / (n - 1));

/** MAX and LATEST: one point per day (circles), joined where consecutive days have values; the values also in a table. */
function dailyChart(s: MeterSeries, label: string, unit: string, id: string): Html {
  const values = s.points.flatMap((p) => (p.value === null ? [] : [Number(p.value)]));
  const { top, label: topLabel } = scaleTop(Math.max(0, ...values));
  const bottom = Math.min(0, ...values);
  const span = top - bottom || 1;
  const n = s.points.length;
  const x = xOf(n);
  const y = (v: number) => PAD.top + ((top - v) * (H - PAD.top - PAD.bottom)) / span;
  const segments: string[][] = [[]];
  s.points.forEach((p, i) => {
    if (p.value === null) segments.push([]);
    else segments.at(-1)!.push(`${x(i).toFixed(1)},${y(Number(p.value)).toFixed(1)}`);
  });
  const describe = (p: DailyPoint) => `${p.day}: ${p.value === null ? 'no reading' : quantityWithUnit(p.value, unit)}`;
  const peak = s.points.reduce<DailyPoint | undefined>(
    (best, p) => (p.value !== null && (!best || Number(p.value) > Number(best.value)) ? p : best),
    undefined,
  );
  return markup`<figure>
      <svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${id}-t ${id}-d">
        <title id="${id}-t">${label}, per day</title>
        <desc id="${id}-d">${n} days${peak ? `; highest ${describe(peak)}` : '; no readings'}</desc>
        ${frame(topLabel, y, s.points[0]?.day, s.points.at(-1)?.day)}
        ${segments.filter((seg) => seg.length > 1).map((seg) => markup`<polyline class="line" points="${seg.join(' ')}" />`)}
        ${s.points.map(
          (p, i) =>
            markup`<circle class="${p.value === null ? 'point none' : 'point'}" data-day="${p.day}" cx="${x(i).toFixed(1)}" cy="${y(Number(p.value ?? 0)).toFixed(1)}" r="3.5"><title>${describe(p)}</title></circle>`,
        )}
      </svg>
      <figcaption>${label} per UTC day${n > 0 ? `, ${s.points[0]!.day} to ${s.points[n - 1]!.day}` : ''}.</figcaption>
    </figure>
    <details>
      <summary>Daily values</summary>
      <table>
        <caption class="vh">${label} per day</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col" class="n">${unit}</th>
          </tr>
        </thead>
        <tbody>
          ${s.points.map(
            (p) =>
              markup`<tr>
                <td>${p.day}</td>
                <td class="n">${p.value === null ? markup`<span class="muted">no reading</span>` : num(p.value)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </details>`;
}

/**
 * What a summed meter's allowance comes to, in one sentence (under the chart and in its text
 * alternative): the day the included units were reached, or the day the projection reaches them,
 * or that the projection stays within them. Undefined when nothing is included.
 */
function allowanceSentence(m: Meter, u: Usage, reachedOn: string | undefined, crossingOn: string | undefined): string | undefined {
  if (dec(m.included).isZero()) return undefined;
  const included = `the ${quantityWithUnit(m.included, m.unit)} included`;
  const projected = `projected: ${quantityWithUnit(m.projectedValue, m.unit)} at the end of the period`;
  if (reachedOn) return `Reached ${included} on ${reachedOn}.`;
  if (u.closed) return `Stayed within ${included}.`;
  if (crossingOn) return `At the rate so far, usage reaches ${included} on ${crossingOn} (${projected}).`;
  return `At the rate so far, usage stays within ${included} (${projected}).`;
}

/**
 * SUM and COUNT: the running total of the period, day by day over the whole period, against a line
 * at the included units; the projection to the period end as a dashed line, and the day the
 * included units were reached, or are projected to be, marked on that line and said in words.
 * Coordinates are floats for drawing only: every number shown is an exact decimal string.
 */
function runningChart(s: MeterSeries, m: Meter, u: Usage, id: string): Html {
  const label = m.displayName;
  const unit = m.unit;
  const days = daysSoFar(Period.parse(u.period), new Date(u.periodEnd));
  const running = runningTotals(s.points);
  const last = running.at(-1);
  const hasIncluded = !dec(m.included).isZero();
  const reachedOn = dayIncludedReached(running, m.included);
  const crossingOn = reachedOn
    ? undefined
    : (projectedCrossing({
        value: m.value,
        included: m.included,
        aggregation: m.aggregation,
        periodStart: new Date(u.periodStart),
        periodEnd: new Date(u.periodEnd),
        now: new Date(u.asOf),
      })?.day ?? undefined);
  const markedOn = reachedOn ?? crossingOn;
  // The projection is drawn from today's total to the last day while the period is open and it adds something.
  const projecting = !u.closed && last !== undefined && running.length < days.length && dec(m.projectedValue).gt(last.total);
  const { top, label: topLabel } = scaleTop(
    Math.max(Number(last?.total ?? 0), hasIncluded ? Number(m.included) : 0, projecting ? Number(m.projectedValue) : 0),
  );
  const x = xOf(days.length);
  const y = (v: number) => PAD.top + ((top - v) * (H - PAD.top - PAD.bottom)) / top;
  // The included units are labelled on the y axis, like the top: nothing is written over the lines.
  // A label too close to the top's takes its place; one too close to 0 is left to the caption.
  const includedY = y(Number(m.included));
  const includedLabel = hasIncluded && y(0) - includedY >= 14;
  const topShown = !(includedLabel && includedY - PAD.top < 14);
  const at = (day: string) => days.indexOf(day);
  const sentence = allowanceSentence(m, u, reachedOn, crossingOn);
  const describe = (p: (typeof running)[number]) => `${p.day}: ${quantityWithUnit(p.total, unit)} in all (${quantityWithUnit(p.value, unit)} that day)`;
  const desc = [
    `${running.length} of ${days.length} days`,
    last ? `${quantityWithUnit(last.total, unit)} in all on ${last.day}` : 'nothing yet',
    hasIncluded ? `${quantityWithUnit(m.included, unit)} included` : 'nothing included',
  ].join('; ');
  return markup`<figure>
      <svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${id}-t ${id}-d">
        <title id="${id}-t">${label}, running total of the period</title>
        <desc id="${id}-d">${desc}.${sentence ? ` ${sentence}` : ''}</desc>
        ${frame(topShown ? topLabel : null, y, days[0], days.at(-1))}
        ${
          hasIncluded
            ? markup`<line class="included" x1="${PAD.left}" y1="${includedY.toFixed(1)}" x2="${W - PAD.right}" y2="${includedY.toFixed(1)}" />
        ${includedLabel ? markup`<text class="included" x="${PAD.left - 6}" y="${(includedY + 4).toFixed(1)}" text-anchor="end">${axisLabel(Number(m.included))}</text>` : ''}`
            : ''
        }
        ${
          projecting
            ? markup`<line class="projection" x1="${x(running.length - 1).toFixed(1)}" y1="${y(Number(last!.total)).toFixed(1)}" x2="${x(days.length - 1).toFixed(1)}" y2="${y(Number(m.projectedValue)).toFixed(1)}" />`
            : ''
        }
        ${running.length > 1 ? markup`<polyline class="line" points="${running.map((p, i) => `${x(i).toFixed(1)},${y(Number(p.total)).toFixed(1)}`).join(' ')}" />` : ''}
        ${running.map(
          (p, i) =>
            markup`<circle class="point" data-day="${p.day}" cx="${x(i).toFixed(1)}" cy="${y(Number(p.total)).toFixed(1)}" r="3.5"><title>${describe(p)}</title></circle>`,
        )}
        ${
          markedOn && at(markedOn) >= 0
            ? markup`<line class="mark" x1="${x(at(markedOn)).toFixed(1)}" y1="${PAD.top}" x2="${x(at(markedOn)).toFixed(1)}" y2="${y(0).toFixed(1)}" />
        <circle class="crossing" data-day="${markedOn}" cx="${x(at(markedOn)).toFixed(1)}" cy="${y(Number(m.included)).toFixed(1)}" r="5"><title>${sentence}</title></circle>`
            : ''
        }
      </svg>
      <figcaption>
        ${label}: running total per UTC day, ${days[0]} to ${days.at(-1)}${hasIncluded ? `; dashed red: the ${quantityWithUnit(m.included, unit)} included` : ''}${projecting ? '; dashed blue: the projection' : ''}.
      </figcaption>
    </figure>
    ${sentence ? markup`<p data-field="allowance">${sentence}</p>` : ''}
    <details>
      <summary>Daily values</summary>
      <table>
        <caption class="vh">${label} per day and in all</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col" class="n">That day (${unit})</th>
            <th scope="col" class="n">In all (${unit})</th>
          </tr>
        </thead>
        <tbody>
          ${running.map(
            (p) =>
              markup`<tr>
                <td>${p.day}</td>
                <td class="n">${num(p.value)}</td>
                <td class="n">${num(p.total)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </details>`;
}

function budgetBar(percentUsed: string, projectedPercent: string): Html {
  const used = Math.min(100, Number(percentUsed));
  const projected = Math.min(100, Number(projectedPercent));
  return markup`<svg
    class="budget"
    viewBox="0 0 100 6"
    preserveAspectRatio="none"
    role="img"
    aria-label="${percentUsed}% of the budget used, ${projectedPercent}% projected at period end"
  >
    <rect class="track" x="0" y="0" width="100" height="6" />
    <rect class="${Number(percentUsed) >= 100 ? 'over' : 'used'}" x="0" y="0" width="${used.toFixed(2)}" height="6" />
    <line class="projected" x1="${projected.toFixed(2)}" y1="0" x2="${projected.toFixed(2)}" y2="6" />
  </svg>`;
}

// ---------------------------------------------------------------------------------------------
// The page

function usageView(m: Meter, series: MeterSeries | undefined, u: Usage): Html {
  if (noUsage(m, series)) {
    return markup`<p class="muted" data-field="noUsage">No usage ${u.closed ? 'in' : 'so far in'} ${monthName(u.period)}.</p>`;
  }
  if (!series) return markup`<p class="muted">Counted as distinct values over the whole period, so there is no daily series.</p>`;
  const id = `chart-${m.meter}`;
  return m.aggregation === 'SUM' || m.aggregation === 'COUNT' ? runningChart(series, m, u, id) : dailyChart(series, m.displayName, m.unit, id);
}

function meterSection(m: Meter, series: MeterSeries | undefined, u: Usage): Html {
  const currency = u.currency;
  const reached = m.tiers.filter((t) => Number(t.quantity) > 0);
  return markup`<article class="meter" id="meter-${m.meter}" aria-labelledby="meter-${m.meter}-h">
    <h3 id="meter-${m.meter}-h">${m.displayName}</h3>
    <dl class="facts">
      <div>
        <dt>Usage</dt>
        <dd data-field="value">${amountOf(m.value, m.unit)}</dd>
      </div>
      <div>
        <dt>Included</dt>
        <dd data-field="included">${amountOf(m.included, m.unit)}</dd>
      </div>
      <div>
        <dt>Used of included</dt>
        <dd data-field="percentUsed">${percent(m.percentUsed)}</dd>
      </div>
      <div>
        <dt>Amount</dt>
        <dd data-field="amount">${money(m.amount, currency)}</dd>
      </div>
      <div>
        <dt>Projected at period end</dt>
        <dd data-field="projectedValue">${amountOf(m.projectedValue, m.unit)}</dd>
      </div>
    </dl>
    ${usageView(m, series, u)}
    ${
      reached.length > 0
        ? markup`<table class="tiers">
            <caption>Tiers reached</caption>
            <thead>
              <tr>
                <th scope="col">Tier</th>
                <th scope="col" class="n">Units</th>
                <th scope="col" class="n">Unit price</th>
                <th scope="col" class="n">Amount</th>
              </tr>
            </thead>
            <tbody>
              ${reached.map(
                (t) =>
                  markup`<tr>
                    <td>${tierRangeWords(t.from, t.upTo, m.unit)}</td>
                    <td class="n">${num(t.quantity)}</td>
                    <td class="n">${num(t.unitPrice)}</td>
                    <td class="n">${num(t.amount)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : ''
    }
  </article>`;
}

function periodPicker(v: PortalView): Html {
  return markup`<form class="picker" method="get" action="portal">
    <input type="hidden" name="token" value="${v.token}" />
    <label for="period">Period</label>
    <select id="period" name="period">
      ${v.periods.map(
        (p) => markup`<option value="${p}"${p === v.usage.period ? new Html(' selected') : ''}>${monthName(p)}${p === v.current ? ' (current)' : ''}</option>`,
      )}
    </select>
    <button type="submit">Show</button>
  </form>`;
}

export function renderPortal(v: PortalView): PageResponse {
  const u = v.usage;
  const who = v.customerName ?? v.customerId;
  const csv = `portal/usage.csv?token=${encodeURIComponent(v.token)}&period=${u.period}`;
  const body = markup`<header>
      <h1>Usage of ${who}, ${monthName(u.period)}</h1>
      <p class="muted">
        Customer <code>${v.customerId}</code> · plan <code>${u.planId}</code> (version ${String(u.planVersion)}) · ${u.periodStart.slice(0, 10)} to
        ${new Date(Date.parse(u.periodEnd) - 1).toISOString().slice(0, 10)} (UTC) · as of ${when(u.asOf)}
      </p>
      <div class="bar">
        ${periodPicker(v)}
        <p><a id="csv" href="${csv}" download>Download daily usage (CSV)</a></p>
      </div>
    </header>
    <main id="main">
      <section aria-labelledby="summary-h">
        <h2 id="summary-h">Summary</h2>
        <dl class="facts">
          ${
            u.invoice
              ? markup`<div>
                    <dt>Invoiced (${u.invoice.status.replace(/_/g, ' ')})</dt>
                    <dd data-field="billed">${money(u.invoice.billed, u.currency)}</dd>
                  </div>
                  <div>
                    <dt>Correction pending</dt>
                    <dd data-field="pendingCorrection">${
                      u.pendingCorrection
                        ? markup`${money(u.pendingCorrection.total, u.pendingCorrection.currency)}${
                            u.pendingCorrection.carriedBy ? markup`, on the ${monthName(u.pendingCorrection.carriedBy)} invoice` : ''
                          }`
                        : markup`<span class="muted">none</span>`
                    }</dd>
                  </div>`
              : markup`<div>
                    <dt>${u.closed ? 'Subtotal (not invoiced yet)' : 'Subtotal so far'}</dt>
                    <dd data-field="subtotal">${money(u.subtotal, u.currency)}</dd>
                  </div>`
          }
          <div>
            <dt>Base fee (included)</dt>
            <dd data-field="baseFee">${money(u.baseFee, u.currency)}</dd>
          </div>
          ${
            u.closed
              ? ''
              : markup`<div>
                  <dt>Projected at period end</dt>
                  <dd data-field="projection">${money(u.projection.subtotal, u.currency)}</dd>
                </div>`
          }
          <div>
            <dt>Budget</dt>
            <dd data-field="budget">${u.budget ? money(u.budget.amount, u.budget.currency) : markup`<span class="muted">none set</span>`}</dd>
          </div>
        </dl>
        ${
          u.budget && u.budget.percentUsed === null
            ? markup`<p class="muted" data-field="budgetOtherCurrency">
                The budget is in ${u.budget.currency.toUpperCase()}; this period is billed in ${u.currency.toUpperCase()}, so it does not apply (money is never converted).
              </p>`
            : ''
        }
        ${
          u.budget && u.budget.percentUsed !== null && u.budget.projectedPercent !== null
            ? markup`<p>
                  Budget used: <strong data-field="budgetPercent">${num(u.budget.percentUsed)}%</strong>, projected
                  <span data-field="budgetProjected">${num(u.budget.projectedPercent)}%</span> at period end.
                </p>
                ${budgetBar(u.budget.percentUsed, u.budget.projectedPercent)}`
            : ''
        }
        <p class="muted">
          ${
            u.invoice
              ? 'This period is invoiced. The meters below are its usage now, priced as its invoice was: what was invoiced, plus the correction pending since (late usage, or usage voided), which your next invoice carries.'
              : u.closed
                ? 'This period has ended and is not invoiced yet. Amounts are what it will be invoiced, rounded per line as on the invoice.'
                : 'Amounts are what the period would be invoiced now, rounded per line as on the invoice. The projection scales summed meters by the share of the period gone; peaks and latest values stay as they are.'
          }
        </p>
      </section>
      <section aria-labelledby="meters-h">
        <h2 id="meters-h">By meter</h2>
        ${u.meters.map((m) =>
          meterSection(
            m,
            v.series.find((s) => s.meter === m.meter),
            u,
          ),
        )}
      </section>
      <section aria-labelledby="alerts-h">
        <h2 id="alerts-h">Alerts in ${monthName(u.period)}</h2>
        ${
          v.alerts.length === 0
            ? markup`<p class="muted">No alerts in this period.</p>`
            : markup`<table id="alerts">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Alert</th>
                    <th scope="col">Status</th>
                  </tr>
                </thead>
                <tbody>
                  ${v.alerts.map(
                    (a) =>
                      markup`<tr>
                        <td>${when(a.claimedAt)}</td>
                        <td>${a.subject}</td>
                        <td>${a.status}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      ${
        v.credits.owed.length === 0
          ? ''
          : markup`<section aria-labelledby="credits-h">
              <h2 id="credits-h">Credits owed to you</h2>
              <ul data-field="creditsOwed">
                ${v.credits.credits
                  .filter((c) => c.status === 'open')
                  .map(
                    (c) =>
                      markup`<li>${money(c.amount, c.currency)} from the ${monthName(c.period)} invoice: ${
                        c.usableOnNextInvoice
                          ? 'it goes on your next invoice.'
                          : markup`in ${c.currency.toUpperCase()}, which your invoices are no longer in: it goes on a correction in ${c.currency.toUpperCase()} if one comes, or is refunded.`
                      }</li>`,
                  )}
              </ul>
            </section>`
      }
      <section aria-labelledby="invoices-h">
        <h2 id="invoices-h">Invoices</h2>
        ${
          v.invoices.length === 0
            ? markup`<p class="muted">No invoices yet.</p>`
            : v.invoices.map(
                (i) =>
                  markup`<article class="invoice" aria-labelledby="invoice-${i.key}-h">
                    <h3 id="invoice-${i.key}-h">
                      ${i.kind === 'correction' ? 'Corrections, ' : ''}${monthName(i.period)} <span class="status">${i.status.replace(/_/g, ' ')}</span>
                    </h3>
                    <p>
                      Total <strong>${money(i.total, i.currency)}</strong>${
                        i.hostedInvoiceUrl?.startsWith('https://')
                          ? markup` · <a href="${i.hostedInvoiceUrl}" rel="noopener noreferrer">View the invoice</a>`
                          : ''
                      }
                    </p>
                    <table>
                      <caption class="vh">Lines of the invoice for ${monthName(i.period)}</caption>
                      <thead>
                        <tr>
                          <th scope="col">Description</th>
                          <th scope="col" class="n">Quantity</th>
                          <th scope="col" class="n">Amount</th>
                        </tr>
                      </thead>
                      <tbody>
                        ${i.lines.map(
                          (l) =>
                            markup`<tr>
                              <td>${l.description}</td>
                              <td class="n">${num(l.quantity)}</td>
                              <td class="n">${money(l.amount, i.currency)}</td>
                            </tr>`,
                        )}
                      </tbody>
                    </table>
                  </article>`,
              )
        }
      </section>
    </main>
    <footer>This link shows ${who}'s usage until ${when(v.expiresAt)}. Days are UTC days.</footer>`;
  return { status: 200, body: shell(`Usage ${u.period} · ${who}`, body), headers: PAGE_HEADERS };
}

/** "1 hour", "24 hours": a link's lifetime, from the token's own limits. */
const hours = (seconds: number) => (seconds === 3_600 ? '1 hour' : `${grouped(String(seconds / 3_600))} hours`);

/** What a person is told for each way a link can fail; anything else is "something went wrong". */
const EXPLAINED: Record<string, { title: string; hint: string }> = {
  portal_link_expired: {
    title: 'This link has expired',
    hint: `A usage link lasts up to ${hours(PORTAL_LINK_TTL.maxSeconds)} (${hours(PORTAL_LINK_TTL.defaultSeconds)} unless whoever made it chose otherwise). Ask for a new one where you got this one.`,
  },
  portal_link_invalid: {
    title: 'This link is not valid',
    hint: 'It may have been cut short or changed. Open the link exactly as you received it, or ask for a new one.',
  },
  portal_link_missing: { title: 'This page needs its link', hint: 'Open the usage link you were given; it carries what lets you in.' },
  invalid_period: { title: 'There is no such period', hint: 'Periods are months, written like 2026-11.' },
};

export function renderError(e: PageError): PageResponse {
  const known = EXPLAINED[e.code] ?? (e.status < 500 ? { title: 'This page cannot be shown', hint: e.message } : undefined);
  const title = known?.title ?? 'Something went wrong';
  const body = markup`<main id="main">
    <h1>${title}</h1>
    <p>${known ? e.message.charAt(0).toUpperCase() + e.message.slice(1) : 'We could not show this page just now. Try again in a moment.'}.</p>
    <p>${known?.hint ?? ''}</p>
    <p class="muted">Reference: <code>${e.requestId}</code> (HTTP ${e.status})</p>
  </main>`;
  return { status: e.status, body: shell(title, body), headers: PAGE_HEADERS };
}
