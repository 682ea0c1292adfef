import Table from 'cli-table3';
import { CommanderError } from 'commander';
import { DomainError, ValidationError, type ErrorDetail } from '../lib/domain/errors';
import { NoStackError, isStackGone } from './stack-file';

/**
 * How the operator CLI talks to people (tables, one-line errors) and to scripts (`--json`, exit
 * codes). Exit codes: 0 done; 1 the command could not run as given (a usage error, no stack to
 * talk to, an unexpected failure); 2 the service refused it (its error code is printed); 3 is
 * reconcile's own: counters drift from the archive.
 */
export const EXIT = { ok: 0, usage: 1, refused: 2, drift: 3 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  usage error: a wrong command, option or argument, or no running stack to talk to
  2  refused by the service: printed as "error: <code>: <message>", then "  field: message" lines
  3  reconcile only: counters drift from the event archive (also after --fix)

Every command prints a table; add --json for the full result as JSON (for scripts).`;

export type Cell = string | number | null | undefined;

/** A table with a header row; right-aligned columns by index. Plain text: no colours, so pipes and logs stay readable. */
export function table(head: string[], rows: Cell[][], rightAligned: number[] = []): string {
  const t = new Table({
    head,
    style: { head: [], border: [] },
    colAligns: head.map((_, i) => (rightAligned.includes(i) ? 'right' : 'left')),
  });
  for (const r of rows) t.push(r.map(cell));
  return t.toString();
}

/**
 * Text from the service (a customer's name, an error message) shown on an operator's terminal: every
 * control character, and the ones that reorder text, is shown as its escape (`\x1b`, `\u202e`)
 * instead of acting, so no stored value can clear the screen, retitle the window or hide text.
 */
export function printable(text: string, keep: '' | '\n' = ''): string {
  return text.replace(CONTROLS, (ch) => (ch === keep ? ch : escapeOf(ch)));
}
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NOT_JSON_ESCAPED = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const escapeOf = (ch: string) => {
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};
const cell = (c: Cell) => (c === null || c === undefined ? '' : printable(String(c)));

/** A two-column table of fields and values, for one record. */
export function record(fields: [string, Cell][]): string {
  const t = new Table({ style: { head: [], border: [] } });
  for (const [k, v] of fields) t.push({ [k]: cell(v) });
  return t.toString();
}

/** Prints the result: JSON for scripts, else what `render` makes of it for people. */
export function output<T>(json: boolean | undefined, result: T, render: (r: T) => string): void {
  // JSON escapes C0 controls itself; DEL, C1 and the reordering marks are escaped the same way (still valid JSON).
  console.log(
    json
      ? JSON.stringify(result, null, 2).replace(NOT_JSON_ESCAPED, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
      : printable(render(result), '\n'),
  );
}

/** A zod failure as the service's own ValidationError (what the API would answer), not raw issue JSON. */
export function invalidInput(issues: { path: PropertyKey[]; message: string; code: string }[], what = 'the input is invalid'): ValidationError {
  const details: ErrorDetail[] = issues.map((i) => ({ field: i.path.map(String).join('.') || undefined, code: i.code, message: i.message }));
  return new ValidationError('invalid_input', what, details);
}

/** The command cannot run as given (exit code 1), said in one line. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One readable line per failure, never a stack trace: the lines to print and the exit code. */
export function describeFailure(err: unknown): { lines: string[]; exitCode: number } {
  if (err instanceof CommanderError) return { lines: [], exitCode: err.exitCode === 0 ? EXIT.ok : EXIT.usage }; // commander printed it already
  if (err instanceof NoStackError || err instanceof UsageError) return { lines: [`error: ${err.message}`], exitCode: EXIT.usage };
  if (err instanceof DomainError) {
    // A detail that only repeats the message adds nothing.
    const details = err.details
      .filter((d) => d.message !== err.message)
      .map((d) => {
        const field = d.field ?? (d.index !== undefined ? `[${d.index}]` : undefined);
        // The service's messages often start with their field already ("name: Required").
        const message = field && d.message.startsWith(`${field}: `) ? d.message.slice(field.length + 2) : d.message;
        return `  ${field ?? d.code}: ${message}`;
      });
    return { lines: [`error: ${err.code}: ${oneLine(err.message)}`, ...details.map(oneLine)], exitCode: EXIT.refused };
  }
  if (isStackGone(err)) {
    return { lines: ['error: the local stack stopped answering (connection refused): is `npm start` still running?'], exitCode: EXIT.usage };
  }
  const message = err instanceof Error ? `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}` : String(err);
  return { lines: [`error: ${oneLine(message)}`], exitCode: EXIT.usage };
}

function oneLine(s: string): string {
  return printable(s.replace(/\s*\n\s*/g, ' ').trimEnd());
}
