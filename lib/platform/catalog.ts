import { readFileSync } from 'node:fs';
import bundled from '../../catalog/catalog.json';
import { CatalogIndex, parseCatalog } from '../domain/catalog';

let cached: CatalogIndex | undefined;

/**
 * The catalog is bundled into each function at build time and validated when loaded; CATALOG_FILE
 * points at another file (tests, or a local experiment).
 */
export function loadCatalog(file = process.env.CATALOG_FILE): CatalogIndex {
  if (cached && !file) return cached;
  const raw: unknown = file ? JSON.parse(readFileSync(file, 'utf8')) : bundled;
  const index = new CatalogIndex(parseCatalog(raw));
  if (!file) cached = index;
  return index;
}
