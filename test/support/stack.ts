import { DeleteMessageCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { queueDepth, waitQuiet } from '../../local/runtime/queues';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { generateApiKey, hashSecret, type Scope } from '../../lib/domain/apikey';
import { startStack, type Stack, type StackOptions } from '../../local/runtime/stack';
import { contract } from './contract';

/** Starts the real local stack (DynamoDB Local + fauxqs + handlers) for one test file. */
export async function startTestStack(opts: StackOptions = {}): Promise<TestStack> {
  const stack = await startStack({
    port: 0,
    visibilityTimeoutSeconds: 5,
    maxReceiveCount: 3,
    ...opts,
    // Handlers log expected failures (crashes the tests inject); TEST_LOG_LEVEL=ERROR shows them.
    env: { CATALOG_FILE: join(__dirname, '..', 'fixtures', 'catalog.json'), POWERTOOLS_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'SILENT', ...opts.env },
  });
  return new TestStack(stack);
}

export const ADMIN = 'local-admin-key';
const rawAgent = new Agent({ keepAlive: true, maxSockets: 8 });

export interface Res<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * Every answer TestStack receives is checked against the OpenAPI document (./contract.ts): a request
 * whose answer the document does not allow throws, naming the route, the status and the mismatch.
 */
export class TestStack {
  constructor(readonly stack: Stack) {}

  get usageQueueUrl(): string {
    return this.stack.resources.queues.UsageQueue!.url;
  }
  get dlqUrl(): string {
    return this.stack.resources.queues.UsageDLQ!.url;
  }

  async request<T = any>(
    method: string,
    path: string,
    opts: { body?: unknown; raw?: string; key?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Res<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key !== null) headers.authorization = `Bearer ${opts.key ?? ADMIN}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.stack.url}${path}`, { method, headers, body });
    const text = await res.text();
    const json = (res.headers.get('content-type') ?? 'application/json').includes('json');
    const out = { status: res.status, body: text ? (json ? JSON.parse(text) : text) : undefined, headers: res.headers };
    contract().check({ method, target: path, ...out });
    return out;
  }

  /**
   * Sends the request line exactly as given (fetch would resolve dot segments such as `%2e%2e`,
   * and refuses a body on GET); the body may be any bytes.
   */
  raw(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Res<any> & { text: string }> {
    const { hostname, port } = new URL(this.stack.url);
    return new Promise((resolve, reject) => {
      // A Content-Length body, not chunked: Node's server refuses chunked bodies on GET with a bare 400.
      const headers = opts.body === undefined ? opts.headers : { 'content-length': String(Buffer.byteLength(opts.body)), ...opts.headers };
      const req = httpRequest({ host: hostname, port, method, path, headers, agent: rawAgent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          const out = { status: res.statusCode ?? 0, body, headers, text };
          try {
            contract().check({ method, target: path, ...out });
            resolve(out);
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  sendEvents(events: unknown, opts: { key?: string; idempotencyKey?: string; contentType?: string } = {}) {
    const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/cloudevents-batch+json' };
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    return this.request('POST', '/api/v1/events', { raw: JSON.stringify(events), key: opts.key, headers });
  }

  async usage(customerId: string, period?: string): Promise<{ values: Record<string, string>; duplicatesDropped: number; body: any }> {
    const res = await this.request('GET', `/api/v1/customers/${customerId}/usage${period ? `?period=${period}` : ''}`);
    if (res.status !== 200) throw new Error(`usage: ${res.status} ${JSON.stringify(res.body)}`);
    const values = Object.fromEntries((res.body.meters as { meter: string; value: string }[]).map((m) => [m.meter, m.value]));
    return { values, duplicatesDropped: res.body.duplicatesDropped, body: res.body };
  }

  queueDepth(url: string): Promise<number> {
    return queueDepth(this.stack.sqs, url);
  }

  /** Waits until the usage queue is empty and no aggregator invocation is running (twice in a row). */
  async drain(timeoutMs = 30_000): Promise<void> {
    await waitQuiet(this.stack.sqs, this.usageQueueUrl, () => this.stack.pollers.every((p) => p.idle), { everyMs: 150, timeoutMs, orThrow: true });
  }

  /**
   * An API key written straight to the table, past the rules of key creation: a key made before a
   * rule existed (a bound admin key, refused at creation since), to prove the checks at use still hold.
   */
  async storeKeyDirectly(record: { name: string; scopes: Scope[]; customerId?: string }): Promise<{ keyId: string; key: string }> {
    const { container } = require('../../lib/platform/container') as typeof import('../../lib/platform/container');
    const { keyId, secret, plain } = generateApiKey();
    await container().apiKeys.create({ keyId, secretHash: hashSecret(secret), ...record, createdAt: new Date().toISOString() });
    return { keyId, key: plain };
  }

  sendRawMessage(body: string) {
    return this.stack.sqs.send(new SendMessageCommand({ QueueUrl: this.usageQueueUrl, MessageBody: body }));
  }

  /** Takes every message off a queue (deleting them) and returns their bodies. */
  async receiveAll(url: string): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
      const out = await this.stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!out.Messages?.length) return bodies;
      for (const m of out.Messages) {
        bodies.push(m.Body ?? '');
        await this.stack.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
  }

  purge(url: string) {
    return this.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  }

  stop() {
    return this.stack.stop();
  }
}

let seq = 0;
/** A valid CloudEvent with sensible defaults; time defaults to one minute ago. */
export function cloudEvent(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return {
    specversion: '1.0',
    id: `evt-${process.pid}-${seq}`,
    source: 'test',
    type: 'api_calls',
    subject: 'cus_test',
    time: new Date(Date.now() - 60_000).toISOString(),
    data: { value: 1 },
    ...over,
  };
}
