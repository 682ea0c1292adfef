import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { STACK_FILE } from './cli';
import { startStack } from './stack';

/** `npm start`: the whole system on emulators, ready for curl, until Ctrl-C. */
async function main() {
  const port = Number(process.env.PORT ?? 3000);
  console.log('starting DynamoDB Local, fauxqs, the HTTP API and the SQS pollers...');
  // The alert sweeper's "every minute" runs every 6 s locally.
  const stack = await startStack({ port, schedules: true, scheduleScale: 0.1, onPollerError: (err) => console.error('poller:', err) });
  const key = stack.env.LOCAL_ADMIN_KEY ?? 'local-admin-key';
  // The CLI (npm run cli) finds this running stack here.
  mkdirSync(dirname(STACK_FILE), { recursive: true });
  writeFileSync(STACK_FILE, JSON.stringify(stack.env, null, 2));
  const now = new Date().toISOString();
  console.log(`
Usage metering is running (stage local).
  HTTP API        ${stack.url}        (GET /health)
  DynamoDB Local  ${stack.env.DYNAMODB_ENDPOINT}
  SQS/SNS fauxqs  ${stack.env.SQS_ENDPOINT}
  usage queue     ${stack.resources.queues.UsageQueue?.url}
  usage DLQ       ${stack.resources.queues.UsageDLQ?.url}
  event archive   s3://${stack.env.ARCHIVE_BUCKET} on ${stack.env.S3_ENDPOINT}   (every counted event, gzipped NDJSON)
  Stripe (fake)   ${stack.stripe.url}   (GET /_fake/state shows what it was sent)
  alerts inbox    ${stack.alertsInbox.url}   (every alert is also printed below as it is sent)
  admin key       ${key}   (stage local only)
  real keys       npm run cli -- keys create --name my-app --scopes ingest,read [--customer cus_42]

Try:
  curl -s -X PUT ${stack.url}/api/v1/customers/cus_42 -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/json' -d '{"name":"Acme","planId":"default"}'
  curl -s -X POST ${stack.url}/api/v1/events -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/cloudevents+json' \\
    -d '{"specversion":"1.0","id":"req_1","source":"curl","type":"api_calls","subject":"cus_42","time":"${now}","data":{"value":1500}}'
  curl -s ${stack.url}/api/v1/customers/cus_42/usage -H 'Authorization: Bearer ${key}'
  curl -s ${stack.url}/api/v1/customers/cus_42/events -H 'Authorization: Bearer ${key}'
  curl -s -X POST ${stack.url}/api/v1/customers/cus_42/portal-links -H 'Authorization: Bearer ${key}'   # open its url in a browser
  curl -s -X POST ${stack.url}/api/v1/events/void -H 'Authorization: Bearer ${key}' \
    -H 'Content-Type: application/json' -d '{"source":"curl","id":"req_1","reason":"sent twice by mistake"}'
  npm run cli -- reconcile --period ${now.slice(0, 7)}

Ctrl-C stops everything.`);

  const printer = printAlerts(stack);

  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${reason}: stopping...`);
    rmSync(STACK_FILE, { force: true });
    // The printer and every function stop before the emulators they call (Stack.stop).
    await printer.stop();
    await stack.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
  // Whoever started us (npm, a shell, an IDE) was killed without passing a signal on: we are
  // re-parented. Stop, rather than keep the port and the emulators for nobody.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && void shutdown('parent process gone'), 1000).unref();
}

/** Shows each alert the topic delivers to the local inbox queue: subject and customer. */
function printAlerts(stack: Awaited<ReturnType<typeof startStack>>): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.alertsInbox.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        for (const m of out.Messages ?? []) {
          const envelope = JSON.parse(m.Body ?? '{}') as { Subject?: string; MessageAttributes?: Record<string, { Value: string }> };
          console.log(`ALERT  ${envelope.Subject ?? '(no subject)'}  [customer ${envelope.MessageAttributes?.customerId?.Value ?? '?'}]`);
          await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.alertsInbox.url, ReceiptHandle: m.ReceiptHandle! }));
        }
      } catch (err) {
        console.error(`alerts inbox: ${err instanceof Error ? err.message : String(err)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  return {
    stop: async () => {
      running = false; // the receive in flight waits at most 1 s
      await loop;
    },
  };
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
