import { customerInput, getCustomer, listCustomers, putCustomer } from '../../lib/app/customers';
import { container } from '../../lib/platform/container';
import { httpHandler } from '../../lib/platform/http';

/** PUT /api/v1/customers/{id} (admin). */
export const put = httpHandler({ scope: 'admin' }, async (req) => {
  const principal = await req.principal();
  const out = await putCustomer(container(), principal, req.param('id'), req.json(customerInput));
  return { status: out.created ? 201 : 200, body: out.customer };
});

/** GET /api/v1/customers/{id} (read; a bound key reads only its customer). */
export const get = httpHandler({ scope: 'read', customerParam: 'id' }, async (req) => ({
  status: 200,
  body: await getCustomer(container(), await req.principal(), req.param('id')),
}));

/** GET /api/v1/customers?limit=&cursor= (admin). */
export const list = httpHandler({ scope: 'admin' }, async (req) => ({
  status: 200,
  body: await listCustomers(container(), await req.principal(), req.query('limit'), req.query('cursor')),
}));
