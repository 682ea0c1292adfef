import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { STACK_FILE } from './cli';
import { startStack } from './stack';

/** `npm start`: the whole system on emulators, ready for curl, until Ctrl-C. */
async function main() {
  const port = Number(process.env.PORT ?? 3000);
  console.log('starting DynamoDB Local, fauxqs, the HTTP API and the SQS pollers...');
  const stack = await startStack({ port, onPollerError: (err) => console.error('poller:', err) });
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
  Stripe (fake)   ${stack.stripe.url}   (GET /_fake/state shows what it was sent)
  admin key       ${key}   (stage local only)
  real keys       npm run cli -- keys create --name my-app --scopes ingest,read [--customer cus_42]

Try:
  curl -s -X PUT ${stack.url}/api/v1/customers/cus_42 -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/json' -d '{"name":"Acme","planId":"default"}'
  curl -s -X POST ${stack.url}/api/v1/events -H 'Authorization: Bearer ${key}' \\
    -H 'Content-Type: application/cloudevents+json' \\
    -d '{"specversion":"1.0","id":"req_1","source":"curl","type":"api_calls","subject":"cus_42","time":"${now}","data":{"value":1500}}'
  curl -s ${stack.url}/api/v1/customers/cus_42/usage -H 'Authorization: Bearer ${key}'

Ctrl-C stops everything.`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping...`);
    rmSync(STACK_FILE, { force: true });
    await stack.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
