import '../../tools/node-support';
import { parseStartOptions, runLocal } from './run-local';

/**
 * `npm start`: the whole system on emulators, ready for curl, until Ctrl-C (run-local.ts).
 * `npm start -- --demo` also loads a realistic month (demo.ts) once it is ready.
 */
async function main(): Promise<void> {
  const opts = parseStartOptions(process.argv);
  // The demo's module (the Stripe SDK among its imports) loads only when asked for.
  await runLocal(opts, opts.demo ? (await import('./demo')).loadDemo : undefined);
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
