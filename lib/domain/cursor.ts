import { createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError } from './errors';

/**
 * Page cursors are opaque to clients and tamper-evident: `<payload>.<mac>`, both base64url, the MAC
 * an HMAC-SHA256 over the list's name and the payload with a secret from configuration. A cursor
 * that is garbage, truncated, edited or made for another list is refused before anything is read,
 * so a client can never steer a read to a position we did not hand out.
 */
const SHAPE = /^([A-Za-z0-9_-]{1,700})\.([A-Za-z0-9_-]{43})$/;

export class CursorCodec {
  constructor(
    /** Undefined when the deployment has no secret: listing then fails loudly instead of signing with nothing. */
    private readonly secret: string | undefined,
    private readonly list: string,
  ) {}

  private mac(payload: string): Buffer {
    if (this.secret === undefined) throw new Error('invalid configuration: CURSOR_SECRET is not set');
    return createHmac('sha256', this.secret).update(`${this.list}\n${payload}`).digest();
  }

  encode(position: string): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, after: position }), 'utf8').toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /** The position a cursor we issued stands for; 400 invalid_cursor for anything else. */
  decode(cursor: string, isValidPosition: (position: string) => boolean): string {
    const m = SHAPE.exec(cursor);
    const given = m ? Buffer.from(m[2]!, 'base64url') : undefined;
    const expected = m ? this.mac(m[1]!) : undefined;
    if (given && expected && given.length === expected.length && timingSafeEqual(given, expected)) {
      const position = parsePosition(Buffer.from(m![1]!, 'base64url').toString('utf8'));
      if (position !== undefined && validPosition(isValidPosition, position)) return position;
    }
    throw new ValidationError('invalid_cursor', 'cursor is not one this API returned; start again without it', [
      { field: 'cursor', code: 'invalid_cursor', message: 'cursor is not one this API returned' },
    ]);
  }
}

function parsePosition(json: string): string | undefined {
  try {
    const v = JSON.parse(json) as { v?: unknown; after?: unknown };
    return v.v === 1 && typeof v.after === 'string' ? v.after : undefined;
  } catch {
    return undefined;
  }
}

/** A validator that throws on what it cannot parse says no: a signed cursor with a malformed position is a 400, not a 500. */
function validPosition(isValid: (position: string) => boolean, position: string): boolean {
  try {
    return isValid(position);
  } catch {
    return false;
  }
}
