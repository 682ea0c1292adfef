import { DEFAULTS, formatReport, runSoak, type SoakConfig } from '../test/soak/soak';

/**
 * `npm run soak`: 1,000,000 events through the local stack under every fault at once, then an exact
 * account of usage, invoices and alerts (test/soak/soak.ts). Exits 1 if any check fails.
 *
 * Env: SOAK_EVENTS (1000000), SOAK_CUSTOMERS (300), SOAK_CLIENTS (4), SOAK_SEED, SOAK_POLLERS (2),
 * SOAK_LOG_LEVEL (the functions' log level, SILENT; ERROR shows every failure they log).
 */
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

async function main() {
  const config: Partial<SoakConfig> = {
    events: num('SOAK_EVENTS', DEFAULTS.events),
    customers: num('SOAK_CUSTOMERS', DEFAULTS.customers),
    clients: num('SOAK_CLIENTS', DEFAULTS.clients),
    seed: num('SOAK_SEED', DEFAULTS.seed),
    pollers: num('SOAK_POLLERS', DEFAULTS.pollers),
    logLevel: process.env.SOAK_LOG_LEVEL ?? DEFAULTS.logLevel,
    progress: (line) => console.log(`[soak] ${line}`),
  };
  console.log(
    `[soak] ${config.events} events, ${config.customers} customers, ${config.clients} clients, seed ${config.seed}; started ${new Date().toISOString()}`,
  );
  const report = await runSoak(config);
  console.log(`\nsoak finished ${new Date().toISOString()}\n${formatReport(report)}`);
  if (!report.ok) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
