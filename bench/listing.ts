import { PutObjectCommand } from '@aws-sdk/client-s3';
import { gzipSync } from 'node:zlib';
import { archiveKey, toNdjson, type ArchivedEvent } from '../lib/domain/archive';
import { Period } from '../lib/domain/period';
import { mapLimit } from '../lib/domain/concurrency';
import { startStack } from '../local/runtime/stack';

/**
 * `npm run bench:listing`: what one page of `GET /customers/{id}/events` costs in S3 requests and
 * time on the local stack, for a customer-month of OBJECTS archive objects (default 3,000, i.e.
 * 3,000 messages; EVENTS per object, default 10) of `api_calls`, one of which also holds a
 * `storage_gb` event:
 * - the first page and a middle page (from a cursor) of 100 events, unfiltered;
 * - a listing filtered on `storage_gb` (one object holds it) and on `seats` (none does), to the end.
 * Prints LIST and GET requests and milliseconds per case. S3 LIST returns 1,000 keys per request,
 * so a filtered listing costs OBJECTS/1,000 LISTs plus one GET per object that names the meter.
 */
const OBJECTS = Number(process.env.OBJECTS ?? 3000);
const EVENTS = Number(process.env.EVENTS ?? 10);

async function main() {
  const stack = await startStack({ port: 0 });
  const { s3Client } = require('../lib/platform/clients') as typeof import('../lib/platform/clients');
  const s3 = s3Client();
  const counts = new Map<string, number>();
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      counts.set(context.commandName!, (counts.get(context.commandName!) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  const headers = { authorization: 'Bearer local-admin-key', 'content-type': 'application/json' };
  const customer = 'cus_listing';
  const period = Period.containing(new Date());
  try {
    await fetch(`${stack.url}/api/v1/customers/${customer}`, { method: 'PUT', headers, body: JSON.stringify({ name: 'Listing' }) });
    const started = Date.now();
    await mapLimit(
      Array.from({ length: OBJECTS }, (_, i) => i),
      32,
      async (i) => {
        const batchId = `bench-${String(i).padStart(6, '0')}`;
        const events: ArchivedEvent[] = Array.from({ length: EVENTS }, (_, j) => ({
          source: 'bench',
          id: `${batchId}-${j}`,
          type: 'api_calls',
          time: new Date(period.start.getTime() + i * 1000).toISOString().replace('Z', '000000Z'),
          subject: customer,
          readings: { api_calls: '1', api_requests: '1' },
          batchId,
        }));
        if (i === Math.floor(OBJECTS / 2)) events.push({ ...events[0]!, id: `${batchId}-disk`, type: 'storage_gb', readings: { storage_gb: '5' } });
        const meters = events.flatMap((e) => Object.keys(e.readings));
        await s3.send(
          new PutObjectCommand({
            Bucket: stack.env.ARCHIVE_BUCKET,
            Key: archiveKey(customer, period.key, batchId, 0, meters),
            Body: gzipSync(toNdjson(events)),
          }),
        );
      },
    );
    console.log(`archive: ${OBJECTS} objects of ${EVENTS} api_calls events written in ${Date.now() - started} ms`);

    const measure = async (name: string, query: string, allPages: boolean) => {
      counts.clear();
      const t0 = performance.now();
      let cursor: string | null = null;
      let events = 0;
      let pages = 0;
      do {
        const url = `${stack.url}/api/v1/customers/${customer}/events?period=${period.key}&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await fetch(url, { headers });
        if (res.status !== 200) throw new Error(`${name}: ${res.status} ${await res.text()}`);
        const body = (await res.json()) as { events: unknown[]; nextCursor: string | null };
        events += body.events.length;
        pages++;
        cursor = body.nextCursor;
      } while (allPages && cursor);
      const ms = performance.now() - t0;
      console.log(
        `${name.padEnd(44)} pages ${String(pages).padStart(3)}  events ${String(events).padStart(5)}  ` +
          `LIST ${String(counts.get('ListObjectsV2Command') ?? 0).padStart(3)}  GET ${String(counts.get('GetObjectCommand') ?? 0).padStart(4)}  ${ms.toFixed(0).padStart(6)} ms`,
      );
      return cursor;
    };
    await measure('warm-up', 'limit=10', false);
    const next = await measure('first page, 100 events', 'limit=100', false);
    // A cursor from half-way: the page re-reads the cursor's object, then lists after it.
    let mid = next;
    for (let i = 0; i < Math.floor((OBJECTS * EVENTS) / 2 / 1000) && mid; i++) {
      const res = await fetch(`${stack.url}/api/v1/customers/${customer}/events?period=${period.key}&limit=1000&cursor=${encodeURIComponent(mid)}`, {
        headers,
      });
      mid = ((await res.json()) as { nextCursor: string | null }).nextCursor;
    }
    await measure('a page from the middle, 100 events', `limit=100&cursor=${encodeURIComponent(mid ?? '')}`, false);
    await measure('meter=storage_gb (1 object holds it), to end', 'meter=storage_gb&limit=100', true);
    await measure('meter=seats (no object holds it), to end', 'meter=seats&limit=100', true);
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
