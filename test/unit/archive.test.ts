import { gzipSync } from 'node:zlib';
import fixture from '../fixtures/catalog.json';
import { archiveGroups, archiveKey, fromNdjson, keyMayHold, recount, toNdjson, type ArchivedEvent } from '../../lib/domain/archive';
import { CatalogIndex, parseCatalog } from '../../lib/domain/catalog';
import type { MeteredEvent } from '../../lib/domain/events';

const catalog = new CatalogIndex(parseCatalog(fixture));
const ev = (over: Partial<MeteredEvent>): MeteredEvent => ({
  source: 's',
  id: '1',
  type: 'api_calls',
  customerId: 'cus_a',
  time: '2026-11-03T10:00:00.000000000Z',
  period: '2026-11',
  readings: { api_calls: '1', api_requests: '1' },
  ...over,
});
const archived = (over: Partial<ArchivedEvent>): ArchivedEvent => ({
  source: 's',
  id: '1',
  type: 't',
  time: '2026-11-03T10:00:00.000000000Z',
  subject: 'cus_a',
  readings: {},
  batchId: 'b',
  ...over,
});

describe('archive objects', () => {
  const all = [
    ev({ id: '3', customerId: 'cus_b' }),
    ev({ id: '2' }),
    ev({ id: '1', period: '2026-10', time: '2026-10-31T23:00:00.000000000Z' }),
    ev({ id: '1' }),
    ev({ id: '9', customerId: 'cus_c' }),
  ];

  it('groups a message by (customer, period) in a fixed order, keyed by batch and group, events sorted', () => {
    const owned = all.filter((e) => e.customerId !== 'cus_c'); // cus_c's event was a duplicate: not archived
    const groups = archiveGroups('batch-1', all, owned);
    expect(groups.map((g) => [g.key, g.events.map((e) => e.id)])).toEqual([
      ['events/cus_a/2026-10/batch-1-0~api_calls,api_requests.ndjson.gz', ['1']],
      ['events/cus_a/2026-11/batch-1-1~api_calls,api_requests.ndjson.gz', ['1', '2']],
      ['events/cus_b/2026-11/batch-1-2~api_calls,api_requests.ndjson.gz', ['3']],
    ]);
    expect(archiveKey('cus_b', '2026-11', 'batch-1', 2, ['api_requests', 'api_calls', 'api_calls'])).toBe(groups[2]!.key);
  });

  it('names the meters of its events in the key, so a filtered listing can pass over an object unread', () => {
    const key = archiveKey('cus_a', '2026-11', 'b', 0, ['storage_gb', 'api_calls']);
    expect(key).toBe('events/cus_a/2026-11/b-0~api_calls,storage_gb.ndjson.gz');
    expect(keyMayHold(key, 'storage_gb')).toBe(true);
    expect(keyMayHold(key, 'api_calls')).toBe(true);
    expect(keyMayHold(key, 'api')).toBe(false); // a whole name, not a prefix
    expect(keyMayHold(key, 'seats')).toBe(false);
    // written before keys named meters, or naming too many to fit: may hold any meter
    expect(keyMayHold('events/cus_a/2026-11/b-0.ndjson.gz', 'seats')).toBe(true);
    const many = archiveKey(
      'cus_a',
      '2026-11',
      'b',
      0,
      Array.from({ length: 40 }, (_, i) => `meter_number_${i}`),
    );
    expect(many).toBe('events/cus_a/2026-11/b-0~all.ndjson.gz');
    expect(keyMayHold(many, 'seats')).toBe(true);
    expect(Buffer.byteLength(many)).toBeLessThan(1024); // an S3 key's limit
  });

  it('writes the same bytes for the same message whatever the order of its events (a redelivery rewrites an identical object)', () => {
    const a = archiveGroups('b', all, all).map((g) => gzipSync(toNdjson(g.events)));
    const b = archiveGroups('b', [...all].reverse(), [...all].reverse()).map((g) => gzipSync(toNdjson(g.events)));
    expect(b).toEqual(a);
  });

  it('reads back what it wrote', () => {
    const [group] = archiveGroups(
      'b',
      [ev({ readings: { api_calls: '0.000000000001', api_requests: '1' } })],
      [ev({ readings: { api_calls: '0.000000000001', api_requests: '1' } })],
    );
    expect(fromNdjson(toNdjson(group!.events))).toEqual(group!.events);
  });
});

describe('recount: counters from archived events', () => {
  const events = [
    archived({ id: 'a', readings: { api_calls: '0.1', api_requests: '1' } }),
    archived({ id: 'b', readings: { api_calls: '0.2', api_requests: '1' } }),
    archived({ id: 'c', readings: { storage_gb: '50' } }),
    archived({ id: 'd', readings: { storage_gb: '80' } }),
    archived({ id: 'e', time: '2026-11-05T00:00:00.000000000Z', readings: { queue_depth: '7' } }),
    archived({ id: 'f', time: '2026-11-04T00:00:00.000000000Z', readings: { queue_depth: '3' } }),
    archived({ id: 'g', readings: { active_users: 'ann' } }),
    archived({ id: 'h', readings: { active_users: 'ann' } }),
    archived({ id: 'i', readings: { active_users: 'bob' } }),
  ];

  it('adds SUM and COUNT exactly, takes the MAX, the LATEST by event time, and the distinct count', () => {
    expect(recount(catalog, events).values).toEqual({ api_calls: '0.3', api_requests: '2', storage_gb: '80', queue_depth: '7', active_users: '2' });
  });

  it('recomputes every meter but UNIQUE_COUNT per UTC day of the event time', () => {
    const late = archived({ id: 'j', time: '2026-11-04T23:59:59.999999999Z', readings: { api_calls: '5', api_requests: '1', storage_gb: '90' } });
    const r = recount(catalog, [...events, late], (e) => e.id === 'a');
    expect(r.days).toEqual({
      api_calls: { '2026-11-03': '0.2', '2026-11-04': '5' },
      api_requests: { '2026-11-03': '1', '2026-11-04': '1' },
      storage_gb: { '2026-11-03': '80', '2026-11-04': '90' },
      queue_depth: { '2026-11-04': '3', '2026-11-05': '7' },
    });
    expect(r.latestDays).toEqual({
      queue_depth: { '2026-11-04': expect.stringContaining('2026-11-04T00:00:00'), '2026-11-05': expect.stringContaining('2026-11-05T00:00:00') },
    });
  });

  it('leaves voided events out', () => {
    const voided = new Set(['b', 'd', 'e', 'i']);
    expect(recount(catalog, events, (e) => voided.has(e.id)).values).toEqual({
      api_calls: '0.1',
      api_requests: '1',
      storage_gb: '50',
      queue_depth: '3',
      active_users: '1',
    });
  });

  it('breaks LATEST ties by (source, id) like the counters do', () => {
    const tie = [archived({ id: 'x', readings: { queue_depth: '1' } }), archived({ id: 'y', readings: { queue_depth: '2' } })];
    expect(recount(catalog, tie).values.queue_depth).toBe('2');
    expect(recount(catalog, [...tie].reverse()).values.queue_depth).toBe('2');
  });
});
