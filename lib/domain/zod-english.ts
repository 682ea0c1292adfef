import { config } from 'zod/mini';
import { en } from 'zod/locales';

/**
 * zod/mini (the schemas a function loads at start-up: configuration, catalog, queue messages) sets
 * no locale; the full zod sets English on its first schema. Imported by every zod/mini module, so
 * messages are the same English either way.
 */
config(en());
