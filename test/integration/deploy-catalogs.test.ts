import fixture from '../fixtures/catalog.json';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import { Period } from '../../lib/domain/period';
import type { Container } from '../../lib/platform/container';
import { cloudEvent, startTestStack, type TestStack } from '../support/stack';

/**
 * A deploy changes the catalog while events are in flight: for a while ingest and the aggregator
 * run different catalogs, in either direction. Both run here on the local stack (DynamoDB Local,
 * fauxqs, the poller), each with its own catalog: the functions read `catalog` from the one
 * composition root, which the test sets to the catalog of whichever side runs next.
 */
let t: TestStack;
let root: () => Container;
const gpus = { slug: 'gpus', displayName: 'GPUs', unit: 'gpus', eventType: 'gpus', aggregation: 'SUM', valueProperty: '$.value' };
const withGpus = { ...fixture, meters: [...fixture.meters, gpus] };
const period = Period.containing(new Date()).key;

beforeAll(async () => {
  // A short visibility timeout: a message left for a later delivery comes back in a second; many receives before the DLQ.
  t = await startTestStack({ visibilityTimeoutSeconds: 1, maxReceiveCount: 100 });
  root = (require('../../lib/platform/container') as typeof import('../../lib/platform/container')).container;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

/** The counters as stored (not through the usage API, whose meters are those of the catalog in force). */
const counters = async (customerId: string) => (await root().ledger.read(customerId, period)).values;
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

/** Ingest with one catalog while the aggregator stands still, then the aggregator on with another. */
async function ingestWith(catalog: CatalogIndex, aggregatorCatalog: CatalogIndex, send: () => Promise<void>): Promise<void> {
  const poller = t.stack.pollers.find((p) => p.queueUrl === t.usageQueueUrl)!;
  await poller.stop();
  root().catalog = catalog;
  await send();
  root().catalog = aggregatorCatalog;
  poller.start();
}

it('a meter added: ingest on the new catalog, the aggregator on the old: the rest of the message counts at once, the new meter once the aggregator knows it, nothing twice', async () => {
  const before = root().catalog;
  const after = new CatalogIndex(parseCatalog(withGpus));
  const gpu = cloudEvent({ subject: 'cus_deploy_new', type: 'gpus', id: 'gpu-1', data: { value: 2 } });
  // Ingest is deployed first; the aggregator is still the old one.
  await ingestWith(after, before, async () => {
    expect((await t.sendEvents([cloudEvent({ subject: 'cus_deploy_other', data: { value: 50000 } }), gpu])).status).toBe(202);
  });
  await until('the rest of the message to count', async () => (await counters('cus_deploy_other')).api_calls === '50000');
  // A client sends the new meter's event again meanwhile: accepted, and counted once in the end.
  await ingestWith(after, before, async () => {
    expect((await t.sendEvents([gpu])).status).toBe(202);
  });
  await new Promise((r) => setTimeout(r, 3000)); // a few more deliveries to the old aggregator
  expect(await counters('cus_deploy_new')).toEqual({});
  expect(await t.queueDepth(t.dlqUrl)).toBe(0);

  root().catalog = after; // the aggregator is deployed
  await t.drain();
  expect(await counters('cus_deploy_new')).toEqual({ gpus: '2' });
  expect(await counters('cus_deploy_other')).toEqual({ api_calls: '50000', api_requests: '1' });
  expect(await t.queueDepth(t.dlqUrl)).toBe(0);
  // What was counted is in the archive: the listing shows both events, and reconciliation finds no drift.
  const listed = (await t.request('GET', `/api/v1/customers/cus_deploy_new/events?period=${period}`)).body;
  expect(listed.events.map((e: { id: string; readings: unknown }) => [e.id, e.readings])).toEqual([['gpu-1', { gpus: '2' }]]);
  const { reconcile } = require('../../lib/app/audit') as typeof import('../../lib/app/audit');
  for (const customerId of ['cus_deploy_new', 'cus_deploy_other']) expect((await reconcile(root(), { period, customerId })).drifts).toEqual([]);
}, 90_000);

it('a meter removed: ingest on the old catalog accepted it, the new aggregator counts it (the published catalog still knows it)', async () => {
  root().catalog = new CatalogIndex(parseCatalog(withGpus));
  expect((await t.sendEvents([cloudEvent({ subject: 'cus_deploy_gone', type: 'gpus', id: 'gpu-2', data: { value: 5 } })])).status).toBe(202);
  root().catalog = new CatalogIndex(parseCatalog(fixture), parseCatalog(withGpus));
  await t.drain();
  expect(await counters('cus_deploy_gone')).toEqual({ gpus: '5' });
}, 60_000);
