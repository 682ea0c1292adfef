import { CursorCodec } from '../../lib/domain/cursor';
import { ValidationError } from '../../lib/domain/errors';

const codec = new CursorCodec('a-secret-of-at-least-32-characters!!', 'customers');
const any = () => true;

describe('CursorCodec', () => {
  it('decodes the cursors it issued back to their position', () => {
    for (const id of ['cus_1', 'a', 'x'.repeat(128)]) expect(codec.decode(codec.encode(id), any)).toBe(id);
  });

  it.each([
    ['another secret', new CursorCodec('another-secret-of-at-least-32-chars!', 'customers').encode('cus_1')],
    ['another list', new CursorCodec('a-secret-of-at-least-32-characters!!', 'api-keys').encode('cus_1')],
    ['no signature', Buffer.from(JSON.stringify({ v: 1, after: 'cus_1' })).toString('base64url')],
    ['a truncated signature', codec.encode('cus_1').slice(0, -1)],
    ['an edited payload', `f${codec.encode('cus_1').slice(1)}`],
  ])('refuses a cursor signed with %s (400 invalid_cursor)', (_name, cursor) => {
    expect(() => codec.decode(cursor, any)).toThrow(ValidationError);
    expect(() => codec.decode(cursor, any)).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
  });

  it('refuses a signed position the list does not accept', () => {
    expect(() => codec.decode(codec.encode('../etc'), (id) => /^[a-z_0-9]+$/.test(id))).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
  });

  it('refuses, as a 400, a signed position the list cannot even parse (its validator throws)', () => {
    const strict = (p: string) => Array.isArray(JSON.parse(p));
    expect(() => codec.decode(codec.encode('{not json'), strict)).toThrow(expect.objectContaining({ code: 'invalid_cursor' }));
  });

  it('fails loudly, not silently unsigned, when no secret is configured', () => {
    expect(() => new CursorCodec(undefined, 'customers').encode('cus_1')).toThrow(/CURSOR_SECRET/);
  });
});
