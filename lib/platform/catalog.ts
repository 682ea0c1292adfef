import { readFileSync } from 'node:fs';
import bundled from '../../catalog/catalog.json';
import bundledRetired from '../../catalog/retired.json';
import { CatalogIndex, parseCatalog, parseRetired } from '../domain/catalog';

let cached: CatalogIndex | undefined;

/**
 * The catalog is bundled into each function at build time with what was published before it and
 * is no longer in it (catalog/retired.json), and validated when loaded. That the catalog changes nothing published
 * is checked before it is bundled (`npm run catalog:check`, the first step of `npm run package`);
 * an invoice keeps a copy of the version it was priced with in any case. CATALOG_FILE points at
 * another catalog (tests, or a local experiment), with PUBLISHED_CATALOG_FILE its published catalog.
 */
export function loadCatalog(file = process.env.CATALOG_FILE, publishedFile = process.env.PUBLISHED_CATALOG_FILE): CatalogIndex {
  if (cached && !file) return cached;
  const read = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
  const current = parseCatalog(file ? read(file) : bundled);
  // Bundled: only what was published and is no longer in the catalog (catalog/retired.json).
  const published = file ? (publishedFile ? parseCatalog(read(publishedFile)) : undefined) : parseRetired(bundledRetired);
  const index = new CatalogIndex(current, published);
  if (!file) cached = index;
  return index;
}
