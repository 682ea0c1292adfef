import { stringify } from 'csv-stringify/sync';
import { createPortalLink, portalLinkInput, readDailyUsage, readPortal } from '../../lib/app/portal';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { usageArea } from '../../lib/platform/wiring/usage';
import { countersArea } from '../../lib/platform/wiring/counters';
import { customersArea } from '../../lib/platform/wiring/customers';
import { invoicingArea } from '../../lib/platform/wiring/invoicing';
import { alertsArea } from '../../lib/platform/wiring/alerts';
import { portalArea } from '../../lib/platform/wiring/portal';
import { httpHandler, pageHandler, requestBaseUrl } from '../../lib/platform/http';
import { PAGE_HEADERS, renderError, renderPortal } from './page';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, usageArea, countersArea, customersArea, invoicingArea, alertsArea, portalArea);

/** POST /api/v1/customers/{id}/portal-links {ttlSeconds?} (read; a bound key only for its customer): a signed, expiring link. */
export const createLink = httpHandler('POST /api/v1/customers/{id}/portal-links')(async (req) => {
  const c = deps();
  const baseUrl = requestBaseUrl(req.event, { publicUrl: c.config.PUBLIC_URL, isLocal: c.config.isLocal });
  return { status: 201, body: createPortalLink(c, await req.principal(), req.param('id'), req.json(portalLinkInput), baseUrl) };
});

/** GET /portal?token=&period=: the usage page; the token in the URL is the credential. */
export const page = pageHandler('GET /portal', async (req) => renderPortal(await readPortal(deps(), req.query('token'), req.query('period'))), renderError);

/** GET /portal/usage.csv?token=&period=: the page's daily series as CSV. */
export const csv = pageHandler(
  'GET /portal/usage.csv',
  async (req) => {
    const out = await readDailyUsage(deps(), req.query('token'), req.query('period'));
    const body = stringify([
      ['date', 'meter', 'unit', 'aggregation', 'value'],
      ...out.rows.map((r) => [r.day, r.meter.slug, r.meter.unit, r.meter.aggregation, r.value ?? '']),
    ]);
    return {
      status: 200,
      body,
      headers: {
        ...PAGE_HEADERS,
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="usage-${out.customerId}-${out.period}.csv"`,
      },
    };
  },
  renderError,
);
