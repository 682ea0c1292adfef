import { readFileSync } from 'node:fs';
import bundled from '../../catalog/catalog.json';
import bundledPublished from '../../catalog/published.json';
import { CatalogIndex, parseCatalog, runtimeCatalog } from '../domain/catalog';

let cached: CatalogIndex | undefined;

/**
 * The catalog is bundled into each function at build time with everything published before it
 * (catalog/published.json), and validated when loaded: a catalog that changes a published version
 * or meter stops the function (catalog:check refuses it first). CATALOG_FILE points at another
 * catalog (tests, or a local experiment), with PUBLISHED_CATALOG_FILE its published catalog if any.
 */
export function loadCatalog(file = process.env.CATALOG_FILE, publishedFile = process.env.PUBLISHED_CATALOG_FILE): CatalogIndex {
  if (cached && !file) return cached;
  const read = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));
  const current = parseCatalog(file ? read(file) : bundled);
  const published = file ? (publishedFile ? parseCatalog(read(publishedFile)) : undefined) : parseCatalog(bundledPublished);
  const index = runtimeCatalog(current, published);
  if (!file) cached = index;
  return index;
}
