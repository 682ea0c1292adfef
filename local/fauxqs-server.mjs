// Runs fauxqs (ESM only) as a child process of the local stack; prints READY <address> when up.
import { startFauxqs } from 'fauxqs';

const server = await startFauxqs({ port: Number(process.env.FAUXQS_PORT ?? 0), logger: false });
process.stdout.write(`READY ${server.address}\n`);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The stack that started us is gone: do not outlive it.
process.stdin.on('end', stop);
process.stdin.resume();
