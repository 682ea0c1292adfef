import type { SQSRecord } from 'aws-lambda';
import { loadDeployment, rateMs } from '../../local/runtime/deployment';
import { succeeded } from '../../local/runtime/poller';
import { MAX_BATCH_BYTES, toBatches } from '../../lib/app/ingest';
import { splitTarget } from '../../local/runtime/http-server';
import { setEnvironment } from '../../local/runtime/stack';
import { asciiJson } from '../../lib/domain/json';
import type { MeteredEvent } from '../../lib/domain/events';

const rec = (id: string) => ({ messageId: id }) as SQSRecord;
const records = [rec('a'), rec('b'), rec('c')];

describe('local event source mapping follows Lambda partial batch rules', () => {
  it('deletes all but the reported failures', () => {
    expect(succeeded(records, { response: { batchItemFailures: [{ itemIdentifier: 'b' }] } }, true).map((r) => r.messageId)).toEqual(['a', 'c']);
    expect(succeeded(records, { response: { batchItemFailures: [] } }, true)).toHaveLength(3);
    expect(succeeded(records, { response: undefined }, true)).toHaveLength(3);
  });
  it('fails the whole batch when the handler throws or reports an unknown/empty identifier', () => {
    expect(succeeded(records, { error: new Error('x') }, true)).toEqual([]);
    expect(succeeded(records, { response: { batchItemFailures: [{ itemIdentifier: 'zzz' }] } }, true)).toEqual([]);
    expect(succeeded(records, { response: { batchItemFailures: [{ itemIdentifier: '' }] } }, true)).toEqual([]);
  });
  it('ignores batchItemFailures when the mapping does not report them', () => {
    expect(succeeded(records, { response: { batchItemFailures: [{ itemIdentifier: 'b' }] } }, false)).toHaveLength(3);
  });
});

describe('deployment description', () => {
  it('is read from serverless.yml: routes, the SQS trigger and resources', () => {
    const d = loadDeployment();
    expect(d.routes.map((r) => `${r.method} ${r.path}`)).toContain('POST /api/v1/events');
    expect(d.queueTriggers).toEqual([
      expect.objectContaining({ queue: 'UsageQueue', batchSize: 10, reportBatchItemFailures: true }),
      expect.objectContaining({ queue: 'InvoiceQueue', batchSize: 1, reportBatchItemFailures: true }),
    ]);
    expect(d.resources.UsageQueue?.Properties?.RedrivePolicy).toBeDefined();
    expect(d.schedules.map((s) => s.expression).sort()).toEqual(['${param:invoiceSchedule}', 'rate(1 day)', 'rate(1 minute)']);
  });

  it('turns rate() schedules into timer periods and leaves cron ones alone', () => {
    expect(rateMs('rate(1 minute)')).toBe(60_000);
    expect(rateMs('rate(5 minutes)')).toBe(300_000);
    expect(rateMs('rate(2 hours)')).toBe(7_200_000);
    expect(rateMs('cron(0 1 1 * ? *)')).toBeUndefined();
  });
});

describe('ingest batching', () => {
  it('cuts events into queue messages under the size limit, keeping order and every event', () => {
    const events: MeteredEvent[] = Array.from({ length: 1000 }, (_, i) => ({
      source: 'src',
      id: `id-${i}`,
      type: 'api_calls',
      customerId: 'cus_1',
      time: '2026-11-23T18:00:00.000000000Z',
      period: '2026-11',
      readings: { api_calls: '1', pad: 'x'.repeat(200) },
    }));
    const batches = toBatches(events, 'now', (n) => `b${n}`);
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.flatMap((b) => b.events)).toEqual(events);
    for (const b of batches) expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThan(MAX_BATCH_BYTES + 1024);
    expect(batches.map((b) => b.batchId)).toEqual(batches.map((_, i) => `b${i}`));
  });

  it('measures messages as the queue writes them (ASCII JSON), so escaped ids never overflow a message', () => {
    const events: MeteredEvent[] = Array.from({ length: 1000 }, (_, i) => ({
      source: '\u{1F600}'.repeat(128),
      id: `${i}-${'\uffff'.repeat(250)}`,
      type: 'user_activity',
      customerId: 'cus_1',
      time: '2026-11-23T18:00:00.000000000Z',
      period: '2026-11',
      readings: { active_users: '\u0001'.repeat(256) },
    }));
    const batches = toBatches(events, 'now', (n) => `b${n}`);
    expect(batches.flatMap((b) => b.events)).toEqual(events);
    for (const b of batches) expect(asciiJson(b).length).toBeLessThan(MAX_BATCH_BYTES + 1024);
  });

  it('groups events by customer and period so a message touches few counters', () => {
    const mk = (i: number, customerId: string, period: string): MeteredEvent => ({
      source: 's',
      id: String(i),
      type: 't',
      customerId,
      time: 'x',
      period,
      readings: {},
    });
    const events = [mk(1, 'b', '2026-11'), mk(2, 'a', '2026-11'), mk(3, 'b', '2026-10'), mk(4, 'a', '2026-11')];
    const [batch] = toBatches(events, 'now', () => 'b0');
    expect(batch!.events.map((e) => e.id)).toEqual(['2', '4', '3', '1']);
  });
});

describe('local HTTP API request targets', () => {
  it.each([
    ['/api/v1/customers/%2e%2e/usage?period=2026-11', '/api/v1/customers/%2e%2e/usage', 'period=2026-11'],
    ['/api/v1/customers/../usage', '/api/v1/customers/../usage', ''],
    ['/a/./b?x=1#frag', '/a/./b', 'x=1'],
    ['http://localhost:3000/api/v1/customers/%2E?cursor=a.b', '/api/v1/customers/%2E', 'cursor=a.b'],
    ['http://localhost:3000', '/', ''],
  ])('takes %s literally, as API Gateway does', (target, path, query) => {
    expect(splitTarget(target)).toEqual({ path, query });
  });
});

describe("a local stack's environment", () => {
  it("is put back when the stack stops, so that one stack's settings never reach the next", () => {
    process.env.LOCAL_RUNTIME_KEPT = 'before';
    delete process.env.LOCAL_RUNTIME_ADDED;
    const restore = setEnvironment({ LOCAL_RUNTIME_KEPT: 'stack', LOCAL_RUNTIME_ADDED: 'stack', LOCAL_RUNTIME_OVERWRITTEN: 'stack' });
    expect(process.env).toMatchObject({ LOCAL_RUNTIME_KEPT: 'stack', LOCAL_RUNTIME_ADDED: 'stack' });
    // Another stack set this one meanwhile: it keeps the other stack's value.
    process.env.LOCAL_RUNTIME_OVERWRITTEN = 'other stack';
    restore();
    expect(process.env.LOCAL_RUNTIME_KEPT).toBe('before');
    expect(process.env.LOCAL_RUNTIME_ADDED).toBeUndefined();
    expect(process.env.LOCAL_RUNTIME_OVERWRITTEN).toBe('other stack');
    delete process.env.LOCAL_RUNTIME_KEPT;
    delete process.env.LOCAL_RUNTIME_OVERWRITTEN;
  });
});
