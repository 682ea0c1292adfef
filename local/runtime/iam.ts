import { AsyncLocalStorage } from 'node:async_hooks';
import type { Deployment, FunctionDef } from './deployment';
import type { Provisioned } from './provision';

/**
 * IAM on the local stack. Lambda runs each function with its own role (serverless.yml's
 * `iamRoleStatements`, least privilege); the emulators check nothing. So that a function calling
 * what its role does not allow fails here as it would on AWS (AccessDenied), every request a
 * handler sends through the function's AWS clients is checked against its role first: the function
 * is known from the invocation it runs in, the action and resource from the command.
 *
 * Resources are named as the template names them: `UsageTable`, `UsageTable/index/byPeriod`,
 * `ArchiveBucket/events/*`, `AlertsTopic`, `AlertsTopic:*` (its subscriptions).
 */
export interface Grant {
  action: string;
  resource: string;
}

const running = new AsyncLocalStorage<string>();

/** Runs `fn` as an invocation of the function `name`: the requests it sends are checked against that function's role. */
export function asFunction<A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args) => running.run(name, () => fn(...args));
}

/** `!GetAtt X.Arn` -> X, `!Ref X` -> X, `!Join ['/', [...]]` and `!Sub '${X.Arn}/events/*'` -> their text. */
export function resourceName(r: unknown): string {
  const v = r as Record<string, any>;
  if (typeof r === 'string') return r;
  if (v['Fn::GetAtt']?.[1] === 'Arn') return v['Fn::GetAtt'][0];
  if (v.Ref) return v.Ref;
  if (v['Fn::Join']?.[0] === '/') return (v['Fn::Join'][1] as unknown[]).map(resourceName).join('/');
  if (typeof v['Fn::Sub'] === 'string') return v['Fn::Sub'].replace(/\$\{(\w+)(\.Arn)?\}/g, '$1');
  return JSON.stringify(r);
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
const asList = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** A function's role as (action, resource pattern) pairs; `*` in a pattern matches anything. */
export function roleOf(fn: FunctionDef & { iamRoleStatements?: Statement[] }): Grant[] {
  return (
    (fn.iamRoleStatements ?? [])
      .filter((s) => s.Effect === 'Allow')
      // JSON first: the YAML parser leaves a tag's sequence (`!Join ['/', [...]]`) as its own node type.
      .flatMap((s) => asList(s.Action).flatMap((action) => asList(JSON.parse(JSON.stringify(s.Resource))).map((r) => ({ action, resource: resourceName(r) }))))
  );
}

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
export const allows = (role: Grant[], need: Grant) => role.some((g) => g.action === need.action && glob(g.resource).test(need.resource));

type Input = Record<string, any>;
/** PartiQL: the statement's verb decides the action (INSERT -> PartiQLInsert), its quoted table the resource. */
function partiql(statement: string): Grant {
  const m = /^\s*(INSERT\s+INTO|SELECT\b.*?\bFROM|UPDATE|DELETE\s+FROM)\s+"([^"]+)"/is.exec(statement);
  if (!m) return { action: 'dynamodb:PartiQL?', resource: statement.slice(0, 60) };
  const verb = m[1]!.split(/\s/)[0]!.toUpperCase();
  const action = { INSERT: 'PartiQLInsert', SELECT: 'PartiQLSelect', UPDATE: 'PartiQLUpdate', DELETE: 'PartiQLDelete' }[verb]!;
  return { action: `dynamodb:${action}`, resource: m[2]! };
}

/** What IAM checks for one request: an action on a resource, several for batches and transactions. */
export function requiredGrants(
  service: string,
  command: string,
  input: Input,
  names: { queue(url: string): string; topic(arn: string): string; bucket(name: string): string },
): Grant[] {
  const op = command.replace(/Command$/, '');
  if (service === 'dynamodb') {
    const on = (table: string, action = op, index?: string) => ({ action: `dynamodb:${action}`, resource: index ? `${table}/index/${index}` : table });
    if (op === 'BatchGetItem' || op === 'BatchWriteItem') return Object.keys(input.RequestItems ?? {}).map((t) => on(t));
    if (op === 'TransactWriteItems')
      return (input.TransactItems ?? []).map((item: Input) => {
        const [kind, body] = Object.entries(item)[0]!;
        return on((body as Input).TableName, { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind]);
      });
    if (op === 'TransactGetItems') return (input.TransactItems ?? []).map((item: Input) => on(item.Get.TableName, 'GetItem'));
    if (op === 'BatchExecuteStatement') return (input.Statements ?? []).map((s: Input) => partiql(s.Statement));
    if (op === 'ExecuteStatement') return [partiql(input.Statement)];
    return [on(input.TableName, op, input.IndexName)];
  }
  if (service === 's3') {
    if (op === 'ListObjectsV2' || op === 'ListObjects') return [{ action: 's3:ListBucket', resource: names.bucket(input.Bucket) }];
    return [{ action: `s3:${op}`, resource: `${names.bucket(input.Bucket)}/${input.Key}` }];
  }
  if (service === 'sqs') return [{ action: `sqs:${op.replace(/Batch$/, '')}`, resource: names.queue(input.QueueUrl) }];
  if (service === 'sns') {
    const arn: string = input.TopicArn ?? input.SubscriptionArn ?? input.TargetArn ?? '';
    return [{ action: `sns:${op}`, resource: names.topic(arn) }];
  }
  return [{ action: `${service}:${op}`, resource: '?' }];
}

interface Stackable {
  middlewareStack: {
    add(mw: (next: any, context: any) => (args: any) => Promise<any>, options: { step: 'initialize'; name: string }): void;
    remove(name: string): boolean;
  };
}

/**
 * Checks every request the functions send through `clients` (service name -> the functions' client)
 * against the role of the function whose invocation sent it. Requests sent outside an invocation
 * (provisioning, the tests' own reads) are not checked.
 */
export function enforceRoles(deployment: Deployment, resources: Provisioned, clients: Record<string, Stackable>): void {
  const roles = new Map(deployment.functions.map((fn) => [fn.name, roleOf(fn as FunctionDef & { iamRoleStatements?: Statement[] })]));
  const byValue = (map: Record<string, string>) => new Map(Object.entries(map).map(([logical, physical]) => [physical, logical]));
  const queues = new Map(Object.entries(resources.queues).map(([logical, q]) => [q.url, logical]));
  const topics = byValue(resources.topics);
  const buckets = byValue(resources.buckets);
  const names = {
    queue: (url: string) => queues.get(url) ?? url,
    bucket: (name: string) => buckets.get(name) ?? name,
    // A subscription's ARN is its topic's ARN and an id: `AlertsTopic:*` in the template.
    topic: (arn: string) => {
      const parent = [...topics].find(([t]) => arn === t || arn.startsWith(`${t}:`));
      return parent ? `${parent[1]}${arn.slice(parent[0].length)}` : arn;
    },
  };
  const reported = new Set<string>();
  for (const [service, client] of Object.entries(clients)) {
    client.middlewareStack.remove('localIam');
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const fn = running.getStore();
        if (fn !== undefined) {
          const role = roles.get(fn) ?? [];
          const denied = requiredGrants(service, context.commandName, args.input, names).find((need) => !allows(role, need));
          if (denied) {
            const message = `local IAM: the role of function ${fn} is not authorized to perform ${denied.action} on resource ${denied.resource} (serverless.yml, iamRoleStatements)`;
            // Said once per denial on stderr too: a handler may turn the error into a plain 500.
            if (!reported.has(message)) process.stderr.write(`${message}\n`);
            reported.add(message);
            throw Object.assign(new Error(message), { name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'localIam' },
    );
  }
}
