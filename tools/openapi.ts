import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApiText } from '../lib/platform/openapi/document';

/** `npm run openapi`: writes docs/openapi.json from the route table and the zod schemas (lib/platform/openapi). */
const file = join(__dirname, '..', 'docs', 'openapi.json');
writeFileSync(file, openApiText());
console.log(`wrote ${file}`);
