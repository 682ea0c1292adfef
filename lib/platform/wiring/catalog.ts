import { loadCatalog } from '../catalog';
import { area } from './base';

/** The meters and plans, bundled (or CATALOG_FILE). */
export const catalogArea = area(() => ({ catalog: loadCatalog() }));
