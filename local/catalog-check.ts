import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatalogError, parseCatalog } from '../lib/domain/catalog';
import { ROOT } from './deployment';

/**
 * `npm run catalog:check [file]`: the build-time validation of the catalog (also run by `npm run
 * package`). Without an argument it checks what the functions would load: CATALOG_FILE when set,
 * else the bundled catalog/catalog.json.
 */
const file = process.argv[2] || process.env.CATALOG_FILE || join(ROOT, 'catalog', 'catalog.json');
try {
  const catalog = parseCatalog(JSON.parse(readFileSync(file, 'utf8')));
  console.log(`${file}: ${catalog.meters.length} meters, plans ${catalog.plans.map((p) => p.id).join(', ')}: valid`);
} catch (err) {
  console.error(err instanceof CatalogError ? `${file}: ${err.message}` : `${file}: ${(err as Error).message}`);
  process.exit(1);
}
