// Runs fauxqs (ESM only) as a child process of the local stack; prints READY <address> when up.
import { buildApp } from 'fauxqs';

const app = buildApp({ logger: false });
// S3 refuses a PutObject with `If-None-Match: *` where an object exists (412 PreconditionFailed);
// fauxqs writes it anyway. The event archive relies on the condition (no counted event is ever
// overwritten), so the local S3 honours it like S3 does.
app.addHook('onRequest', async (request, reply) => {
  if (request.method !== 'PUT' || request.headers['if-none-match'] !== '*' || request.headers['x-amz-copy-source']) return;
  const existing = await app.inject({ method: 'HEAD', url: request.url, headers: { host: request.headers.host ?? '127.0.0.1' } });
  if (existing.statusCode !== 200) return;
  reply
    .code(412)
    .header('content-type', 'application/xml')
    .send(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>',
    );
  return reply;
});
const address = await app.listen({ port: Number(process.env.FAUXQS_PORT ?? 0), host: '0.0.0.0' });
process.stdout.write(`READY ${address}\n`);
const stop = async () => {
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The stack that started us is gone: do not outlive it.
process.stdin.on('end', stop);
process.stdin.resume();
