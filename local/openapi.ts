import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApiText } from '../lib/platform/openapi/document';
import { ROOT } from './deployment';

/** `npm run openapi`: writes docs/openapi.json from the route table and the zod schemas (lib/platform/openapi). */
const file = join(ROOT, 'docs', 'openapi.json');
writeFileSync(file, openApiText());
console.log(`wrote ${file}`);
