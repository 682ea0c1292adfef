import { Decimal } from 'decimal.js';
import { parse } from 'lossless-json';
import { ValidationError } from './errors';

/**
 * JSON in printable ASCII: every other code unit becomes a \u escape. SQS refuses message bodies
 * with characters outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (U+FFFE,
 * U+FFFF, lone surrogates; emulators refuse more), while a JSON string may hold any of them. Only
 * strings can hold such characters in JSON.stringify's output, so escaping them keeps the JSON equal.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A JSON number whose text a double cannot carry exactly (`123456789.123456789012`, `1e400`):
 * JSON.parse would round it silently. It is kept as its text so validation can refuse it by name.
 */
export class InexactNumber {
  constructor(readonly text: string) {}
}

/**
 * A number is exact when the double it parses to prints back as the same decimal value: `0.1`,
 * `1.50` and `1e-12` are; `0.30000000000000001` (prints as 0.3) is not.
 */
function parseNumber(text: string): number | InexactNumber {
  const n = Number(text);
  if (!Number.isFinite(n)) return new InexactNumber(text);
  return String(n) === text || new Decimal(String(n)).eq(text) ? n : new InexactNumber(text);
}

/**
 * Parses a request body without losing a digit (lossless-json): exact numbers become numbers,
 * others InexactNumber; text that is not JSON is a 400 `malformed_json`, and an object with the
 * same key twice (different values) a 400 `duplicate_key`, since which one would count is a guess.
 */
export function parseJson(text: string): unknown {
  try {
    return parse(text, null, {
      parseNumber,
      onDuplicateKey: ({ key, position }) => {
        throw new ValidationError('duplicate_key', `the body has the key "${key.slice(0, 64)}" twice in one object (at character ${position})`);
      },
    });
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError('malformed_json', 'the request body is not valid JSON');
  }
}

/** A JSON object as parsed here (not an array, not null, not an InexactNumber). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof InexactNumber);
}
