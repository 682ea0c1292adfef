import { alertsArea } from './wiring/alerts';
import { archiveArea } from './wiring/archive';
import { auditArea } from './wiring/audit';
import { authArea } from './wiring/auth';
import { wire } from './wiring/base';
import { catalogArea } from './wiring/catalog';
import { customersArea } from './wiring/customers';
import { countersArea } from './wiring/counters';
import { ingestArea } from './wiring/ingest';
import { invoicingArea } from './wiring/invoicing';
import { portalArea } from './wiring/portal';
import { subscriptionsArea } from './wiring/subscriptions';
import { usageArea } from './wiring/usage';

/**
 * Every area of the composition root (./wiring) at once, for the tests, the local stack and the
 * CLI. Functions wire only the areas they use, on the same shared object: `container().clock = x`
 * moves the clock of every handler running in the process. Stripe is not here: the invoice worker
 * gets it from ./wiring/stripe.
 */
export function container() {
  return wire(
    catalogArea,
    authArea,
    customersArea,
    subscriptionsArea,
    usageArea,
    archiveArea,
    ingestArea,
    invoicingArea,
    alertsArea,
    auditArea,
    countersArea,
    portalArea,
  );
}
export type Container = ReturnType<typeof container>;
