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

/** Parses a request body; text that is not JSON is a 400 `malformed_json`. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError('malformed_json', 'the request body is not valid JSON');
  }
}
