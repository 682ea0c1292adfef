import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Tags } from 'yaml';

/**
 * Reads the deployment description (serverless.yml and resources/*.yml) so that the local stack
 * creates the same tables, queues and routes that CloudFormation would, instead of a second copy.
 */
export const ROOT = join(__dirname, '..', '..');

const cfnTags: Tags = [
  { tag: '!Ref', resolve: (v: string) => ({ Ref: v }) },
  { tag: '!GetAtt', resolve: (v: string) => ({ 'Fn::GetAtt': v.split('.') }) },
  { tag: '!Sub', resolve: (v: string) => ({ 'Fn::Sub': v }) },
  { tag: '!Join', collection: 'seq', resolve: (v: unknown) => ({ 'Fn::Join': v }) },
  { tag: '!Not', collection: 'seq', resolve: (v: unknown) => ({ 'Fn::Not': v }) },
  { tag: '!Equals', collection: 'seq', resolve: (v: unknown) => ({ 'Fn::Equals': v }) },
] as Tags;

export function readYaml<T>(relative: string): T {
  return parse(readFileSync(join(ROOT, relative), 'utf8'), { customTags: cfnTags }) as T;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

interface HttpApiEvent {
  httpApi: { method: string; path: string };
}
interface SqsEvent {
  sqs: { arn: { 'Fn::GetAtt': [string, string] }; batchSize?: number; maximumBatchingWindow?: number; functionResponseType?: string };
}
export interface FunctionDef {
  name: string;
  handler: string;
  timeout?: number;
  events?: (HttpApiEvent | SqsEvent | Record<string, unknown>)[];
}

export interface Deployment {
  /** provider.timeout: the functions' default timeout in seconds. */
  defaultTimeout: number;
  /** provider.environment, `${param:...}` replaced by params.default (other strings and `!Ref`s as written). */
  environment: Record<string, unknown>;
  resources: Record<string, CfnResource>;
  functions: FunctionDef[];
  routes: { method: string; path: string; fn: FunctionDef }[];
  queueTriggers: { queue: string; batchSize: number; reportBatchItemFailures: boolean; fn: FunctionDef }[];
  /** EventBridge schedules: `rate(...)` ones run locally on a timer; `cron(...)` ones do not. */
  schedules: { expression: string; fn: FunctionDef }[];
}

export function loadDeployment(): Deployment {
  const sls = readYaml<{
    params?: { default?: Record<string, unknown> };
    provider: { timeout?: number; environment?: Record<string, unknown> };
    functions: Record<string, Omit<FunctionDef, 'name'>>;
    resources: unknown[];
  }>('serverless.yml');
  // The deployment parameters' defaults, as `osls package` resolves them without --param.
  const params = sls.params?.default ?? {};
  const environment = Object.fromEntries(
    Object.entries(sls.provider.environment ?? {}).map(([name, value]) => {
      const param = typeof value === 'string' ? /^\$\{param:(\w+)\}$/.exec(value)?.[1] : undefined;
      return [name, param !== undefined && param in params ? String(params[param]) : value];
    }),
  );
  const resources: Record<string, CfnResource> = {};
  for (const part of sls.resources) {
    const file = typeof part === 'string' ? /^\$\{file\((.+)\)\}$/.exec(part)?.[1] : undefined;
    const doc = (file ? readYaml(file) : part) as { Resources?: Record<string, CfnResource> };
    Object.assign(resources, doc.Resources ?? {});
  }
  const functions = Object.entries(sls.functions).map(([name, f]) => ({ name, ...f }));
  const routes: Deployment['routes'] = [];
  const queueTriggers: Deployment['queueTriggers'] = [];
  const schedules: Deployment['schedules'] = [];
  for (const fn of functions) {
    for (const e of fn.events ?? []) {
      if ('httpApi' in e) {
        const h = (e as HttpApiEvent).httpApi;
        routes.push({ method: h.method.toUpperCase(), path: h.path, fn });
      }
      if ('schedule' in e) schedules.push({ expression: String((e as { schedule: { rate: string } }).schedule.rate), fn });
      if ('sqs' in e) {
        const s = (e as SqsEvent).sqs;
        queueTriggers.push({
          queue: s.arn['Fn::GetAtt'][0],
          batchSize: s.batchSize ?? 10,
          reportBatchItemFailures: s.functionResponseType === 'ReportBatchItemFailures',
          fn,
        });
      }
    }
  }
  return { defaultTimeout: sls.provider.timeout ?? 6, environment, resources, functions, routes, queueTriggers, schedules };
}

/** Milliseconds of an EventBridge `rate(N unit)` expression; undefined for cron expressions. */
export function rateMs(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) return undefined;
  const unit = m[2]!.startsWith('minute') ? 60_000 : m[2]!.startsWith('hour') ? 3_600_000 : 86_400_000;
  return Number(m[1]) * unit;
}

/** Loads a handler the way Lambda does: "functions/ingest/handler.handler" -> module export. */
export function loadHandler<T = (...args: unknown[]) => Promise<unknown>>(handler: string): T {
  const dot = handler.lastIndexOf('.');
  const mod = require(join(ROOT, handler.slice(0, dot))) as Record<string, unknown>;
  const fn = mod[handler.slice(dot + 1)];
  if (typeof fn !== 'function') throw new Error(`handler ${handler} is not exported`);
  return fn as T;
}
