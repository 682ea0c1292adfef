import fc from 'fast-check';
import { InexactNumber, parseJson } from '../../lib/domain/json';

/** Request bodies are parsed losslessly: what JSON.parse would round is kept as text and refused by name. */
describe('parseJson', () => {
  it('reads what JSON.stringify wrote exactly as JSON.parse does (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(parseJson(text)).toEqual(JSON.parse(text));
      }),
      { seed: 20261126, numRuns: 500 },
    );
  });

  it('accepts and refuses the same texts as JSON.parse, apart from duplicate keys (property)', () => {
    const jsonish = fc.stringMatching(/^[\s{}[\]",:0-9.eE+\-tfrunlsa\\]*$/, { maxLength: 30 });
    fc.assert(
      fc.property(
        fc.oneof(
          jsonish,
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          let native = true;
          try {
            JSON.parse(text);
          } catch {
            native = false;
          }
          let ours = true;
          try {
            parseJson(text);
          } catch (err) {
            ours = (err as { code?: string }).code === 'duplicate_key';
          }
          expect(ours).toBe(native);
        },
      ),
      { seed: 20261126, numRuns: 3000 },
    );
  });

  it.each([
    ['123456789.123456789012', '123456789.123456789012'],
    ['12345678901234567890', '12345678901234567890'],
    ['1e400', '1e400'],
    ['-1e400', '-1e400'],
  ])('keeps %s, which a double would round, as InexactNumber', (text, kept) => {
    expect(parseJson(`{"v":${text}}`)).toEqual({ v: new InexactNumber(kept) });
  });

  it.each(['0.1', '1.50', '1e-12', '1E2', '-0', '5e-324', '999999999999999'])('reads %s as the number it is', (text) => {
    expect(parseJson(`[${text}]`)).toEqual([Number(text)]);
  });

  it('refuses an object with a key twice (different values), naming the key', () => {
    expect(() => parseJson('{"a":1,"a":2}')).toThrow(expect.objectContaining({ code: 'duplicate_key', message: expect.stringContaining('"a"') }));
    expect(() => parseJson('{"a":{"b":1,"b":[]}}')).toThrow(expect.objectContaining({ code: 'duplicate_key' }));
  });

  it('keeps "__proto__" as an ordinary key', () => {
    const v = parseJson('{"__proto__":{"value":5}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
  });
});
