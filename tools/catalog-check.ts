import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CatalogError, parseCatalog } from '../lib/domain/catalog';
import { publishCatalog, publishedIssues, retiredFrom, sameRetired } from '../lib/domain/published-catalog';
import { parseRetired } from '../lib/domain/catalog';

/**
 * `npm run catalog:check [file]`: the build-time validation of the catalog (also run by `npm run
 * package`). Without an argument it checks what the functions would load: CATALOG_FILE when set,
 * else the bundled catalog/catalog.json. The bundled catalog (or CATALOG_FILE with
 * PUBLISHED_CATALOG_FILE) is also held against its published catalog: a published plan version or
 * meter that changed is refused, and so is a version not published yet.
 *
 * `npm run catalog:publish` (`--publish`): adds the catalog's new versions and meters to its
 * published catalog (refusing to while a published one changed), and writes its part no longer in
 * the catalog (retired.json, beside it: what the functions bundle). Commit the three files.
 */
const ROOT = join(__dirname, '..');
const publish = process.argv.includes('--publish');
const args = process.argv.slice(2).filter((a) => a !== '--publish');
const file = args[0] || process.env.CATALOG_FILE || join(ROOT, 'catalog', 'catalog.json');
const publishedFile = args[0] || process.env.CATALOG_FILE ? process.env.PUBLISHED_CATALOG_FILE || undefined : join(ROOT, 'catalog', 'published.json');

const fail = (message: string): never => {
  console.error(`${file}: ${message}`);
  process.exit(1);
};
try {
  const catalog = parseCatalog(JSON.parse(readFileSync(file, 'utf8')));
  const plans = [...new Set(catalog.plans.map((p) => p.id))].map((id) => {
    const versions = catalog.plans.filter((p) => p.id === id).map((p) => p.version);
    return versions.length === 1 && versions[0] === 1 ? id : `${id} (v${versions.join(', v')})`;
  });
  if (publishedFile !== undefined) {
    const published = parseCatalog(JSON.parse(readFileSync(publishedFile, 'utf8')));
    const issues = publishedIssues(catalog, published).filter((i) => !publish || !i.unpublished);
    if (issues.length > 0) throw new CatalogError(issues.map((i) => `${i.path.join('.')}: ${i.message}`));
    // The bundled part of it: what is published and no longer in the catalog.
    const retiredFile = join(dirname(publishedFile), 'retired.json');
    if (publish) {
      const next = publishCatalog(catalog, published);
      writeFileSync(publishedFile, `${JSON.stringify(next, null, 2)}\n`);
      writeFileSync(retiredFile, `${JSON.stringify(retiredFrom(catalog, next), null, 2)}\n`);
      console.log(`${publishedFile}, ${retiredFile}: published`);
    } else if (!sameRetired(parseRetired(JSON.parse(readFileSync(retiredFile, 'utf8'))), retiredFrom(catalog, published))) {
      throw new CatalogError([`${retiredFile}: is not what was published and left the catalog: run npm run catalog:publish`]);
    }
  }
  console.log(`${file}: ${catalog.meters.length} meters, plans ${plans.join(', ')}: valid${publishedFile ? ', every version published' : ''}`);
} catch (err) {
  fail(err instanceof CatalogError ? err.message : (err as Error).message);
}
