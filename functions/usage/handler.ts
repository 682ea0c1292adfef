import { readUsage } from '../../lib/app/usage';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { countersArea } from '../../lib/platform/wiring/counters';
import { invoiceRecordsArea } from '../../lib/platform/wiring/invoicing';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, countersArea, invoiceRecordsArea);

/** GET /api/v1/customers/{id}/usage?period=YYYY-MM: the usage page. */
export const handler = httpHandler('GET /api/v1/customers/{id}/usage')(async (req) => {
  const c = deps();
  return { status: 200, body: await readUsage(c, await req.principal(), req.param('id'), req.query('period')) };
});
