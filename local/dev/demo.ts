import '../../tools/node-support';
import Stripe from 'stripe';
import { SCOPES, type Principal } from '../../lib/domain/apikey';
import { formatMoney } from '../../lib/domain/money';
import { Period } from '../../lib/domain/period';
import { NoStackError, readRunningStack } from '../../tools/stack-file';
import type { LocalTarget } from './run-local';

/**
 * `npm run demo` (or `npm start -- --demo`): a realistic month in the running local stack.
 * Customers on every plan (default, pro, jp) linked to customers in the Stripe fake; last month's
 * usage sent through the HTTP API like any producer would (timed in the part of last month that
 * is still inside the 35-day late-event window); last month invoiced (a finished run: finalized
 * invoices in the fake); and this month's usage crossing a threshold or two, so alerts fire.
 * The customers are created "last month" by giving the customers use case a clock set then,
 * the same clock injection the tests use: a plan and its fixed fees apply from the period a
 * customer was created in. Running it again changes nothing: event ids repeat (duplicates), the
 * Stripe customers are found by e-mail, the run is resumed.
 */
interface DemoCustomer {
  id: string;
  name: string;
  planId: string;
  email: string;
  budget?: string;
  /** Last month: [event type, value] in the order sent (MAX meters: the peak is the largest). */
  lastMonth: [string, number | string][];
  /** This month, so far. */
  thisMonth: [string, number | string][];
}

const users = (n: number, prefix: string): [string, string][] => Array.from({ length: n }, (_, i) => ['user_activity', `${prefix}-user-${i + 1}`]);

export const DEMO_CUSTOMERS: DemoCustomer[] = [
  {
    id: 'cus_acme',
    name: 'Acme Analytics',
    planId: 'default',
    email: 'billing@acme.example',
    budget: '400.00',
    lastMonth: [
      ['api_calls', 42_000],
      ['api_calls', 61_500],
      ['api_calls', 80_500],
      ['storage_gb', 12],
      ['storage_gb', 42],
      ['compute_seconds', 5_400],
      ['compute_seconds', 3_600],
      ['seats', 6],
      ['seats', 8],
      ...users(5, 'acme'),
    ],
    thisMonth: [
      ['api_calls', 6_000],
      ['seats', 4], // 4 of 3 included seats: one alert, for 100% (80 and 90 recorded as passed)
    ],
  },
  {
    id: 'cus_globex',
    name: 'Globex',
    planId: 'default',
    email: 'ap@globex.example',
    lastMonth: [
      ['api_calls', 18_000],
      ['api_calls', 24_000],
      ['storage_gb', 6],
      ['compute_seconds', 2_000],
      ['seats', 3],
    ],
    thisMonth: [['api_calls', 3_000]],
  },
  {
    id: 'cus_initech',
    name: 'Initech',
    planId: 'pro',
    email: 'finance@initech.example',
    budget: '1500.00',
    lastMonth: [['api_calls', 250_000], ['api_calls', 370_000], ['storage_gb', 120], ['compute_seconds', 50_000], ['seats', 34], ...users(12, 'initech')],
    thisMonth: [
      ['api_calls', 46_000], // 92% of the 50,000 included: one alert, for 90%
      ['seats', 18],
    ],
  },
  {
    id: 'cus_umbrella',
    name: 'Umbrella Labs',
    planId: 'pro',
    email: 'accounts@umbrella.example',
    lastMonth: [
      ['api_calls', 35_000],
      ['storage_gb', 8],
      ['compute_seconds', 10_000],
      ['seats', 12],
    ],
    thisMonth: [['api_calls', 9_000]],
  },
  {
    id: 'cus_tanaka',
    name: 'Tanaka Shoji',
    planId: 'jp',
    email: 'keiri@tanaka.example',
    budget: '30000',
    lastMonth: [
      ['api_calls', 95_000],
      ['storage_gb', 9],
      ['seats', 5],
    ],
    thisMonth: [['api_calls', 4_000]],
  },
  {
    id: 'cus_sakura',
    name: 'Sakura Games',
    planId: 'jp',
    email: 'billing@sakura.example',
    lastMonth: [
      ['api_calls', 12_000],
      ['storage_gb', 3],
      ['seats', 2],
    ],
    thisMonth: [['api_calls', 1_500]],
  },
];

/** The running stack (its environment names the Stripe fake and the tables the use cases need). */
export interface DemoTarget extends LocalTarget {
  now?: () => Date;
}

export interface DemoSummary {
  lastMonth: string;
  invoices: { customerId: string; planId: string; status: string; total: string; currency: string; stripeInvoiceId: string | null }[];
  runStatus: string;
}

const operator: Principal = { keyId: 'demo', scopes: [...SCOPES] };
const DAY = 86_400_000;

export async function loadDemo(target: DemoTarget): Promise<DemoSummary> {
  const now = target.now?.() ?? new Date();
  const current = Period.containing(now);
  const last = current.previous();
  const { say } = target;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as any) : undefined;
    return { status: res.status, body: json };
  };
  say(`demo: loading ${last.key} (last month, invoiced) and ${current.key} (this month) into ${target.url}`);

  // Stripe customers in the fake, found again by e-mail when the demo runs twice.
  const stripe = new Stripe(target.env.STRIPE_SECRET_KEY ?? 'sk_test_local', {
    host: target.env.STRIPE_API_HOST,
    port: Number(target.env.STRIPE_API_PORT),
    protocol: (target.env.STRIPE_API_PROTOCOL as 'http' | 'https' | undefined) ?? 'http',
    maxNetworkRetries: 2,
  });
  const stripeIds = new Map<string, string>();
  for (const c of DEMO_CUSTOMERS) {
    const found = (await stripe.customers.list({ email: c.email, limit: 1 })).data[0];
    stripeIds.set(c.id, (found ?? (await stripe.customers.create({ name: c.name, email: c.email, metadata: { customer_id: c.id } }))).id);
  }

  // The customers, created at the start of last month (clock injection): last month is then
  // priced on their plan with its fixed fees, as it would be for a customer of long standing.
  Object.assign(process.env, target.env);
  const { container } = await import('../../lib/platform/container');
  const { putCustomer } = await import('../../lib/app/customers');
  const c = container();
  const createdAt = last.start;
  for (const d of DEMO_CUSTOMERS) {
    await putCustomer({ ...c, clock: { now: () => new Date(createdAt) } }, operator, d.id, {
      name: d.name,
      planId: d.planId,
      stripeCustomerId: stripeIds.get(d.id),
      alertEmail: d.email,
      ...(d.budget ? { budget: { amount: d.budget } } : {}),
    });
  }
  say(
    `demo: ${DEMO_CUSTOMERS.length} customers (plans ${[...new Set(DEMO_CUSTOMERS.map((d) => d.planId))].join(', ')}), each linked to a Stripe customer in the fake`,
  );

  // Last month's events, spread over the part of it still inside the late-event window.
  const from = Math.max(last.start.getTime(), now.getTime() - 34 * DAY);
  const until = last.end.getTime() - 60_000;
  const event = (d: DemoCustomer, month: Period, i: number, n: number, type: string, value: number | string, start: number, end: number) => ({
    specversion: '1.0',
    id: `demo-${d.id}-${month.key}-${i}`,
    source: 'demo',
    type,
    subject: d.id,
    time: new Date(start + Math.floor(((end - start) * (i + 1)) / (n + 1))).toISOString(),
    data: type === 'user_activity' ? { userId: value } : { value },
  });
  const lastMonthEvents = DEMO_CUSTOMERS.flatMap((d) => d.lastMonth.map(([type, v], i) => event(d, last, i, d.lastMonth.length, type, v, from, until)));
  if (await loadedBefore(api, last)) say(`demo: the events of ${last.key} are there from an earlier run; not sent again`);
  else {
    const sent = await api('POST', '/api/v1/events', lastMonthEvents);
    if (sent.status !== 202) throw new Error(`sending last month's events: ${sent.status} ${JSON.stringify(sent.body)}`);
    say(
      `demo: ${lastMonthEvents.length} events of ${last.key} sent (${new Date(from).toISOString().slice(0, 10)} to ${new Date(until).toISOString().slice(0, 10)}, the part of it still inside the 35-day window)`,
    );
    await waitUntilCounted(api, last.key);
  }

  // Last month invoiced: a finished run, finalized invoices in the Stripe fake.
  let runStatus = 'not started';
  const run = await api('POST', '/api/v1/invoice-runs', { period: last.key });
  if (run.status === 202) {
    runStatus = await waitForRun(api, last.key);
    say(`demo: invoice run ${last.key} ${runStatus}`);
  } else {
    runStatus = `not started: ${run.body?.error?.code}`;
    say(`demo: invoice run ${last.key} not started: ${run.body?.error?.message ?? run.status}`);
  }

  // This month so far: usage that crosses a threshold or two (the ALERT lines below).
  const start = current.start.getTime();
  const stop = Math.max(start + 1, now.getTime() - 60_000);
  const thisMonthEvents = DEMO_CUSTOMERS.flatMap((d) => d.thisMonth.map(([type, v], i) => event(d, current, i, d.thisMonth.length, type, v, start, stop)));
  if (await loadedBefore(api, current)) say(`demo: the events of ${current.key} are there from an earlier run; not sent again`);
  else {
    const sentNow = await api('POST', '/api/v1/events', thisMonthEvents);
    if (sentNow.status !== 202) throw new Error(`sending this month's events: ${sentNow.status} ${JSON.stringify(sentNow.body)}`);
    say(`demo: ${thisMonthEvents.length} events of ${current.key} sent`);
  }

  const invoices: DemoSummary['invoices'] = [];
  for (const d of DEMO_CUSTOMERS) {
    const own = ((await api('GET', `/api/v1/customers/${d.id}/invoices`)).body?.invoices ?? []).find((i: any) => i.period === last.key && i.kind === 'period');
    invoices.push({
      customerId: d.id,
      planId: d.planId,
      status: own?.status ?? 'none',
      total: own?.total ?? '0',
      currency: own?.currency ?? 'usd',
      stripeInvoiceId: own?.stripeInvoiceId ?? null,
    });
  }
  const { table } = await import('../../tools/cli-output');
  say(
    table(
      ['customer', 'plan', `invoice ${last.key}`, 'total', 'stripe invoice'],
      invoices.map((i) => [i.customerId, i.planId, i.status, formatMoney(i.total, i.currency), i.stripeInvoiceId ?? '-']),
      [3],
    ),
  );
  say(
    [
      'demo: loaded. Next:',
      '  npm run cli -- customers list',
      `  npm run cli -- usage --customer cus_acme                  (this month: alerts, projection, budget)`,
      `  npm run cli -- usage --customer cus_initech --period ${last.key}`,
      '  npm run cli -- invoices list --customer cus_tanaka        (a yen invoice)',
      `  npm run cli -- invoices status --period ${last.key}`,
      `  curl -s ${target.url}/api/v1/customers/cus_acme/alerts -H 'Authorization: Bearer ${target.key}'`,
    ].join('\n'),
  );
  return { lastMonth: last.key, invoices, runStatus };
}

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

/**
 * Whether an earlier run of the demo sent its events of the month: sending them again would count
 * nothing (they are the same events) but show each one as a duplicate dropped on the customers'
 * pages. The archive of the first demo customer tells (its events are counted by then).
 */
async function loadedBefore(api: Api, month: Period): Promise<boolean> {
  const listed = await api('GET', `/api/v1/customers/${DEMO_CUSTOMERS[0]!.id}/events?period=${month.key}&limit=200`);
  return ((listed.body?.events ?? []) as { source: string }[]).some((e) => e.source === 'demo');
}

/** Until every demo customer's last-month API calls read back as sent (the aggregator is asynchronous). */
async function waitUntilCounted(api: Api, period: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const d of DEMO_CUSTOMERS) {
    const expected = d.lastMonth.filter(([t]) => t === 'api_calls').reduce((n, [, v]) => n + Number(v), 0);
    for (;;) {
      const usage = (await api('GET', `/api/v1/customers/${d.id}/usage?period=${period}`)).body;
      const value = usage?.meters?.find((m: any) => m.meter === 'api_calls')?.value;
      if (Number(value) === expected) break;
      if (Date.now() > deadline) throw new Error(`${d.id}'s events of ${period} were not counted within ${timeoutMs / 1000} s (is the usage DLQ empty?)`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function waitForRun(api: Api, period: string, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = (await api('GET', `/api/v1/invoice-runs/${period}`)).body;
    if (run?.status === 'completed') return `completed: ${run.done} invoiced, ${run.skipped} with nothing to bill, ${run.failed} failed`;
    if (Date.now() > deadline) return `still ${run?.status ?? 'unknown'} after ${timeoutMs / 1000} s (npm run cli -- invoices status --period ${period})`;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** `npm run demo`: into the running stack, or start one with the demo (as `npm start -- --demo`). */
async function main(): Promise<'loaded' | 'started'> {
  let env: Record<string, string>;
  try {
    env = await readRunningStack();
  } catch (err) {
    if (!(err instanceof NoStackError)) throw err;
    console.log('no local stack is running: starting one with the demo (as npm start -- --demo)');
    const { runLocal, parseStartOptions } = await import('./run-local');
    const opts = parseStartOptions(process.argv, 'npm run demo --');
    await runLocal({ ...opts, demo: true }, loadDemo);
    return 'started';
  }
  const key = env.LOCAL_ADMIN_KEY || 'local-admin-key';
  await loadDemo({ url: env.LOCAL_API_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`, key, env, say: (l) => console.log(l) });
  return 'loaded';
}

if (require.main === module) {
  main().then(
    // Loaded into another process's stack: done (the SDK clients would otherwise keep sockets open a while).
    (how) => how === 'loaded' && process.exit(0),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
