import { customerInput, customerPatch, getCustomer, listCustomers, patchCustomer, putCustomer } from '../../lib/app/customers';
import { wire } from '../../lib/platform/wiring/base';
import { catalogArea } from '../../lib/platform/wiring/catalog';
import { customersArea } from '../../lib/platform/wiring/customers';
import { invoiceRecordsArea } from '../../lib/platform/wiring/invoicing';
import { subscriptionsArea } from '../../lib/platform/wiring/subscriptions';
import { usageArea } from '../../lib/platform/wiring/usage';
import { httpHandler } from '../../lib/platform/http';

/** The areas of the composition root this function uses. */
const deps = () => wire(catalogArea, customersArea, subscriptionsArea, usageArea, invoiceRecordsArea);

/** PUT /api/v1/customers/{id} (admin). */
export const put = httpHandler('PUT /api/v1/customers/{id}')(async (req) => {
  const principal = await req.principal();
  const out = await putCustomer(deps(), principal, req.param('id'), req.json(customerInput));
  return { status: out.created ? 201 : 200, body: out.customer };
});

/** PATCH /api/v1/customers/{id} (admin): only the fields given change; null removes one. */
export const patch = httpHandler('PATCH /api/v1/customers/{id}')(async (req) => {
  const principal = await req.principal();
  return { status: 200, body: await patchCustomer(deps(), principal, req.param('id'), req.json(customerPatch)) };
});

/** GET /api/v1/customers/{id} (read; a bound key reads only its customer). */
export const get = httpHandler('GET /api/v1/customers/{id}')(async (req) => ({
  status: 200,
  body: await getCustomer(deps(), await req.principal(), req.param('id')),
}));

/** GET /api/v1/customers?limit=&cursor= (admin). */
export const list = httpHandler('GET /api/v1/customers')(async (req) => ({
  status: 200,
  body: await listCustomers(deps(), await req.principal(), req.query('limit'), req.query('cursor')),
}));
