import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSRecord } from 'aws-lambda';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Stack } from '../../local/runtime/stack';
import { sequence } from './random';

/**
 * The faults a soak injects into the running stack, all through hooks the stack already has:
 * - a middleware on the functions' own DynamoDB client (lib/platform/clients) that throws
 *   `ProvisionedThroughputExceededException`, as the SDK does after its own retries;
 * - aggregator crashes: an invocation (given an async context by the poller's `around` hook)
 *   dies at a chosen step; from then on every DynamoDB and SNS call it makes fails, and the poller
 *   fails its whole batch, as Lambda does when an instance dies: SQS redelivers every message;
 * - at-least-once delivery: the pollers put a copy of some messages back on their queue.
 */

/** What a DynamoDB call of the functions does, read from its input. */
export type CallKind =
  'claim' | 'transaction' | 'unique' | 'max-latest' | 'epoch' | 'read' | 'alert-claim' | 'alert-mark-sent' | 'alert-mark-failed' | 'idempotency' | 'other';

/** Where an aggregator invocation dies. */
export const CRASH_STEPS = [
  'at its first call (before any claim)',
  'between claims',
  'before the counter transaction',
  'after the counter transaction',
  'before a MAX/LATEST/UNIQUE write',
  'during alert evaluation (a read)',
  'after an alert claim, before publishing',
  'after publishing, before mark-sent',
] as const;
export type CrashStep = (typeof CRASH_STEPS)[number];

/** Which aggregator call a throttle hits. */
export const AGGREGATOR_THROTTLE_STEPS = [
  'a claim',
  'the counter transaction',
  'a MAX/LATEST/UNIQUE write',
  'an alert evaluation read',
  'an alert claim',
  'an alert mark-sent',
  'a random call',
] as const;
export type AggregatorThrottleStep = (typeof AGGREGATOR_THROTTLE_STEPS)[number];

const CRASH_MATCH: Record<CrashStep, { kinds: CallKind[] | 'first'; when: 'before' | 'after'; skipUpTo?: number }> = {
  'at its first call (before any claim)': { kinds: 'first', when: 'before' },
  'between claims': { kinds: ['claim'], when: 'before', skipUpTo: 12 },
  'before the counter transaction': { kinds: ['transaction'], when: 'before' },
  'after the counter transaction': { kinds: ['transaction'], when: 'after' },
  'before a MAX/LATEST/UNIQUE write': { kinds: ['max-latest', 'unique'], when: 'before', skipUpTo: 5 },
  'during alert evaluation (a read)': { kinds: ['read'], when: 'before', skipUpTo: 5 },
  'after an alert claim, before publishing': { kinds: ['alert-claim'], when: 'after' },
  'after publishing, before mark-sent': { kinds: ['alert-mark-sent'], when: 'before' },
};
const THROTTLE_MATCH: Record<Exclude<AggregatorThrottleStep, 'a random call'>, { kinds: CallKind[]; skipUpTo?: number }> = {
  'a claim': { kinds: ['claim'], skipUpTo: 12 },
  'the counter transaction': { kinds: ['transaction'] },
  'a MAX/LATEST/UNIQUE write': { kinds: ['max-latest', 'unique'], skipUpTo: 5 },
  'an alert evaluation read': { kinds: ['read'], skipUpTo: 5 },
  'an alert claim': { kinds: ['alert-claim'] },
  'an alert mark-sent': { kinds: ['alert-mark-sent'] },
};

export interface FaultRates {
  /** Aggregator invocations that die at some step. */
  crashRate: number;
  /**
   * Message deliveries (aggregator and invoice worker) that meet one throttled DynamoDB call. Per
   * message, not per call: a message makes tens to hundreds of calls (a claim request per 25 events; one member per
   * customer for a run's fan-out), and any throttled one fails it, so a per-call rate of 1% would
   * fail nearly every attempt (reported as an observation, see README).
   */
  messageThrottleRate: number;
  /** Every DynamoDB call of the HTTP API and the alert sweeper (a handful per request). */
  throttleRate: number;
  /** Received messages (usage and invoice queues) delivered a second time. */
  deliverTwiceRate: number;
}

interface Invocation {
  fn: 'aggregate' | 'invoice';
  calls: number;
  dead: boolean;
  /** A throttle bound to this invocation: its n-th call. */
  throttleAtCall?: number;
}

interface Armed<S> {
  step: S;
  skip: number;
}

export interface FaultStats {
  dynamoCalls: { aggregator: number; invoiceWorker: number; other: number };
  aggregatorInvocations: number;
  crashedInvocations: number;
  crashes: Record<CrashStep, number>;
  aggregatorThrottles: Record<AggregatorThrottleStep, number>;
  invoiceWorkerThrottles: number;
  otherThrottles: number;
  deliveredTwice: { usage: number; invoice: number };
  /** `customer|period|alertKey` of alerts whose mark-sent write a crash or a throttle prevented. */
  markSentCrashed: Set<string>;
  markSentThrottled: Set<string>;
  /** Every alert publish: `customer|period|alertKey` -> who published it, when (for the evidence of a repeat). */
  publishes: Map<string, string[]>;
  /** Errors the pollers saw that the soak did not inject, by name, and the first few in full. */
  unexpectedPollerErrors: Record<string, number>;
  unexpectedPollerErrorSamples: string[];
  /** Aggregator invocations by duration: the deployed function times out at 30 s. */
  aggregatorSlowest: number;
  /**
   * Invocations that ran into their function's timeout (middy's TimeoutError, as Lambda ends them):
   * a fault like a crash, their messages go back to SQS; on a loaded machine it happens.
   */
  timedOut: number;
}

const NAME = 'soakFaults';
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : ((v as { S?: string } | undefined)?.S ?? undefined));

export function injectedThrottle(): Error {
  return Object.assign(new Error('injected: throughput exceeded (after the SDK retries)'), {
    name: 'ProvisionedThroughputExceededException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  });
}
function injectedCrash(step: string): Error {
  return Object.assign(new Error(`injected crash ${step}: the function instance died`), { name: 'InjectedCrash' });
}
/** An error the soak injected, or one made only of injected ones (a cause, or every record of a failed batch). */
function isInjected(err: unknown): boolean {
  const e = err as { name?: string; message?: string; cause?: unknown; recordErrors?: unknown[] } | null;
  if (!e) return false;
  if (e.name === 'InjectedCrash' || e.name === 'ProvisionedThroughputExceededException') return true;
  if (Array.isArray(e.recordErrors) && e.recordErrors.length > 0) return e.recordErrors.every(isInjected);
  return e.cause !== undefined && isInjected(e.cause);
}

export class Faults {
  readonly stats: FaultStats = {
    dynamoCalls: { aggregator: 0, invoiceWorker: 0, other: 0 },
    aggregatorInvocations: 0,
    crashedInvocations: 0,
    crashes: Object.fromEntries(CRASH_STEPS.map((s) => [s, 0])) as Record<CrashStep, number>,
    aggregatorThrottles: Object.fromEntries(AGGREGATOR_THROTTLE_STEPS.map((s) => [s, 0])) as Record<AggregatorThrottleStep, number>,
    invoiceWorkerThrottles: 0,
    otherThrottles: 0,
    deliveredTwice: { usage: 0, invoice: 0 },
    markSentCrashed: new Set(),
    markSentThrottled: new Set(),
    publishes: new Map(),
    unexpectedPollerErrors: {},
    unexpectedPollerErrorSamples: [],
    aggregatorSlowest: 0,
    timedOut: 0,
  };
  private readonly context = new AsyncLocalStorage<Invocation>();
  private readonly random: () => number;
  private crashes: Armed<CrashStep>[] = [];
  private throttles: Armed<Exclude<AggregatorThrottleStep, 'a random call'>>[] = [];
  /** Steps still to be armed once each, one per invocation so that they spread over the run. */
  private crashesToArm: CrashStep[] = [];
  private throttlesToArm: Exclude<AggregatorThrottleStep, 'a random call'>[] = [];
  private nextCrash = 0;
  private nextThrottle = 0;
  private active = false;
  private readonly dynamo: DynamoDBClient;
  private readonly sns: SNSClient;

  private readonly customers: number;
  constructor(
    private readonly stack: Stack,
    private readonly rates: FaultRates,
    seed: number,
    customers: number,
  ) {
    this.random = sequence(seed, 101);
    // The functions' own clients: the handlers the stack loaded share this module instance.
    const clients = require('../../lib/platform/clients') as typeof import('../../lib/platform/clients');
    this.dynamo = clients.dynamoClient();
    this.customers = customers;
    this.sns = clients.snsClient();
  }

  private get tables() {
    const env = this.stack.env;
    return { usage: env.USAGE_TABLE, dedupe: env.DEDUPE_TABLE, alerts: env.ALERTS_TABLE, customers: env.CUSTOMERS_TABLE, invoices: env.INVOICES_TABLE };
  }

  /** Reads what a call is about from its input (document-client inputs, or marshalled ones). */
  classify(command: string, input: Record<string, any>): CallKind {
    const t = this.tables;
    const table = input.TableName as string | undefined;
    switch (command) {
      case 'PutItemCommand': {
        const pk = str(input.Item?.pk) ?? '';
        if (table === t.dedupe && pk.startsWith('idem|')) return 'idempotency';
        if (table === t.alerts) return 'alert-claim';
        return 'other';
      }
      // Event claims: PartiQL INSERTs, 25 to a request, and the read of whose claims were found.
      case 'BatchExecuteStatementCommand':
        return /^INSERT INTO "([^"]+)"/.exec(String(input.Statements?.[0]?.Statement))?.[1] === t.dedupe ? 'claim' : 'other';
      case 'TransactWriteItemsCommand': {
        const first = input.TransactItems?.[0]?.Put;
        if (first?.TableName === t.dedupe && (str(first.Item?.pk) ?? '').startsWith('ap|')) return 'transaction';
        if (first?.TableName === t.usage && (str(first.Item?.sk) ?? '').startsWith('u#')) return 'unique';
        return 'other';
      }
      case 'UpdateItemCommand':
        if (table === t.usage) return input.ConditionExpression ? 'max-latest' : 'epoch';
        if (table === t.alerts) return /:sent\b/.test(String(input.UpdateExpression)) ? 'alert-mark-sent' : 'alert-mark-failed';
        if (table === t.dedupe) return 'idempotency';
        return 'other';
      case 'BatchGetItemCommand':
        return t.dedupe !== undefined && t.dedupe in (input.RequestItems ?? {}) ? 'claim' : 'read';
      case 'QueryCommand':
      case 'GetItemCommand':
        return 'read';
      default:
        return 'other';
    }
  }

  private alertOf(input: Record<string, any>): string {
    return `${str(input.Key?.pk)}|${str(input.Key?.sk)}`;
  }

  /**
   * Arms a crash at `step` (or the next step in turn): it fires at the next matching call of any
   * aggregator invocation, after skipping a random number of them. One pending per step at most.
   */
  private armCrash(step: CrashStep = CRASH_STEPS[this.nextCrash++ % CRASH_STEPS.length]!): void {
    if (this.crashes.some((c) => c.step === step)) return;
    this.crashes.push({ step, skip: Math.floor(this.random() * (CRASH_MATCH[step].skipUpTo ?? 1)) });
  }
  private armThrottle(inv: Invocation, records: SQSRecord[], step = AGGREGATOR_THROTTLE_STEPS[this.nextThrottle++ % AGGREGATOR_THROTTLE_STEPS.length]!): void {
    if (step === 'a random call') {
      // Somewhere in this invocation: about one DynamoDB call per event plus a few per message.
      const estimate = records.reduce((n, r) => n + r.body.split('"source":').length + 5, 0);
      inv.throttleAtCall ??= 1 + Math.floor(this.random() * estimate);
      return;
    }
    if (this.throttles.some((c) => c.step === step)) return;
    this.throttles.push({ step, skip: Math.floor(this.random() * (THROTTLE_MATCH[step].skipUpTo ?? 1)) });
  }

  /**
   * Makes sure every crash step and every throttle step happens at least once more, spread over the
   * invocations to come. Alert steps first: most thresholds are crossed early in a period.
   */
  armEveryStep(): void {
    const isAlert = (s: string) => /alert|publish/.test(s);
    // Alert steps are armed at once: most thresholds are crossed early in a period, and only in an
    // open one (an ended period sends no alerts), so they stay armed until alerts come.
    for (const step of CRASH_STEPS.filter(isAlert)) this.armCrash(step);
    for (const step of (Object.keys(THROTTLE_MATCH) as (keyof typeof THROTTLE_MATCH)[]).filter(isAlert)) {
      if (!this.throttles.some((t) => t.step === step)) this.throttles.push({ step, skip: 0 });
    }
    this.crashesToArm = CRASH_STEPS.filter((s) => !isAlert(s));
    this.throttlesToArm = (Object.keys(THROTTLE_MATCH) as (keyof typeof THROTTLE_MATCH)[]).filter((s) => !isAlert(s));
  }

  /** Steps armed but not reached yet (reported: a step that never fired proves nothing). */
  pending(): { crashes: CrashStep[]; throttles: string[] } {
    return { crashes: [...this.crashes.map((c) => c.step), ...this.crashesToArm], throttles: [...this.throttles.map((t) => t.step), ...this.throttlesToArm] };
  }

  private onAggregatorCall(inv: Invocation, kind: CallKind, input: Record<string, any>): { fail?: Error; after?: Error } {
    if (inv.dead) {
      // An alert this instance published but could not mark sent: the documented crash window.
      if (kind === 'alert-mark-sent') this.stats.markSentCrashed.add(this.alertOf(input));
      return { fail: injectedCrash('(already dead)') };
    }
    inv.calls++;
    const crashIndex = this.crashes.findIndex((c) => {
      const m = CRASH_MATCH[c.step];
      return m.kinds === 'first' ? inv.calls === 1 : m.kinds.includes(kind);
    });
    if (crashIndex >= 0) {
      const armed = this.crashes[crashIndex]!;
      if (armed.skip > 0) armed.skip--;
      else {
        this.crashes.splice(crashIndex, 1);
        inv.dead = true;
        this.stats.crashes[armed.step]++;
        if (kind === 'alert-mark-sent') this.stats.markSentCrashed.add(this.alertOf(input));
        const err = injectedCrash(armed.step);
        return CRASH_MATCH[armed.step].when === 'before' ? { fail: err } : { after: err };
      }
    }
    if (inv.throttleAtCall === inv.calls) {
      this.stats.aggregatorThrottles['a random call']++;
      if (kind === 'alert-mark-sent') this.stats.markSentThrottled.add(this.alertOf(input));
      return { fail: injectedThrottle() };
    }
    const throttleIndex = this.throttles.findIndex((t) => THROTTLE_MATCH[t.step].kinds.includes(kind));
    if (throttleIndex >= 0) {
      const armed = this.throttles[throttleIndex]!;
      if (armed.skip > 0) armed.skip--;
      else {
        this.throttles.splice(throttleIndex, 1);
        this.stats.aggregatorThrottles[armed.step]++;
        if (kind === 'alert-mark-sent') this.stats.markSentThrottled.add(this.alertOf(input));
        return { fail: injectedThrottle() };
      }
    }
    return {};
  }

  install(): void {
    if (this.active) return;
    this.active = true;
    this.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (!this.active) return next(args);
        const inv = this.context.getStore();
        const input = (args as { input: Record<string, any> }).input;
        const kind = this.classify(context.commandName ?? '', input);
        if (inv?.fn === 'aggregate') {
          this.stats.dynamoCalls.aggregator++;
          const decision = this.onAggregatorCall(inv, kind, input);
          if (decision.fail) throw decision.fail;
          const out = await next(args);
          if (decision.after) throw decision.after;
          return out;
        }
        if (inv?.fn === 'invoice') {
          this.stats.dynamoCalls.invoiceWorker++;
          if (++inv.calls === inv.throttleAtCall) {
            this.stats.invoiceWorkerThrottles++;
            throw injectedThrottle();
          }
          return next(args);
        }
        this.stats.dynamoCalls.other++;
        if (this.random() < this.rates.throttleRate) {
          this.stats.otherThrottles++;
          throw injectedThrottle();
        }
        return next(args);
      },
      { step: 'initialize', name: NAME },
    );
    // A dead instance publishes nothing either.
    this.sns.middlewareStack.add(
      (next, context) => async (args) => {
        const inv = this.context.getStore();
        if (inv?.dead) throw injectedCrash('(already dead)');
        const out = await next(args);
        if (context.commandName === 'PublishCommand') this.notePublish(inv ? 'aggregator' : 'sweeper', (args as { input: Record<string, any> }).input);
        return out;
      },
      { step: 'initialize', name: NAME },
    );

    const usage = this.poller(this.stack.resources.queues.UsageQueue!.url);
    const invoice = this.poller(this.stack.resources.queues.InvoiceQueue!.url);
    usage.hooks = {
      around: async (records, invoke) => {
        const inv: Invocation = { fn: 'aggregate', calls: 0, dead: false };
        this.stats.aggregatorInvocations++;
        if (this.random() < this.rates.crashRate) this.armCrash();
        else if (this.crashesToArm.length > 0 && this.crashes.length < 2) this.armCrash(this.crashesToArm.shift());
        for (const _ of records) if (this.random() < this.rates.messageThrottleRate) this.armThrottle(inv, records);
        if (this.throttlesToArm.length > 0 && this.throttles.length < 2) this.armThrottle(inv, records, this.throttlesToArm.shift());
        const from = Date.now();
        let out: Awaited<ReturnType<typeof invoke>>;
        try {
          out = await this.context.run(inv, invoke);
        } finally {
          this.stats.aggregatorSlowest = Math.max(this.stats.aggregatorSlowest, Date.now() - from);
          if (inv.dead) this.stats.crashedInvocations++;
        }
        if (inv.dead) throw injectedCrash('(the invocation ends without answering)');
        return out;
      },
      deliverTwice: () => {
        const again = this.random() < this.rates.deliverTwiceRate;
        if (again) this.stats.deliveredTwice.usage++;
        return again;
      },
    };
    invoice.hooks = {
      around: (records, invoke) => {
        const inv: Invocation = { fn: 'invoice', calls: 0, dead: false };
        if (this.random() < this.rates.messageThrottleRate) {
          // A call somewhere in the job: a run's fan-out makes about one per customer, an invoice job about eight.
          const calls = records.some((r) => r.body.includes('start_run')) ? this.customers + 10 : 8;
          inv.throttleAtCall = 1 + Math.floor(this.random() * calls);
        }
        return this.context.run(inv, invoke);
      },
      deliverTwice: () => {
        const again = this.random() < this.rates.deliverTwiceRate;
        if (again) this.stats.deliveredTwice.invoice++;
        return again;
      },
    };
  }

  private readonly t0 = Date.now();
  private notePublish(by: string, input: Record<string, any>): void {
    const a = input.MessageAttributes ?? {};
    let period = '?';
    try {
      period = (JSON.parse(String(input.Message)) as { period: string }).period;
    } catch {
      // not an alert message
    }
    const key = `${a.customerId?.StringValue}|${period}|${a.kind?.StringValue}#${a.meter?.StringValue}#${a.threshold?.StringValue}`;
    const list = this.stats.publishes.get(key) ?? [];
    list.push(`${by} at +${((Date.now() - this.t0) / 1000).toFixed(1)} s`);
    this.stats.publishes.set(key, list);
  }

  private poller(url: string) {
    const p = this.stack.pollers.find((x) => x.queueUrl === url);
    if (!p) throw new Error(`no poller for ${url}`);
    return p;
  }

  /** Stops injecting (the verification reads are not part of the test). */
  uninstall(): void {
    this.active = false;
    this.dynamo.middlewareStack.remove(NAME);
    this.sns.middlewareStack.remove(NAME);
    for (const p of this.stack.pollers) p.hooks = {};
  }

  /** For the stack's onPollerError: the soak's own faults are expected, anything else is reported. */
  pollerError(err: unknown): void {
    if (isInjected(err)) return;
    const name = (err as { name?: string } | null)?.name ?? 'Error';
    if (name === 'TimeoutError') {
      this.stats.timedOut++;
      return;
    }
    this.stats.unexpectedPollerErrors[name] = (this.stats.unexpectedPollerErrors[name] ?? 0) + 1;
    const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (this.stats.unexpectedPollerErrorSamples.length < 10) this.stats.unexpectedPollerErrorSamples.push(text.slice(0, 500));
  }
}
