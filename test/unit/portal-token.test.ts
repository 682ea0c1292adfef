import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { CursorCodec } from '../../lib/domain/cursor';
import { UnauthorizedError } from '../../lib/domain/errors';
import { PortalTokens } from '../../lib/domain/portal-token';

const SECRET = 'a-deployment-secret-of-at-least-32-characters';
const tokens = new PortalTokens(SECRET);
const issuedAt = new Date('2026-11-23T10:00:00Z');
const inAnHour = new Date(issuedAt.getTime() + 3_600_000);

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthorizedError);
    return (err as UnauthorizedError).code;
  }
  throw new Error('accepted');
};

describe('portal link tokens', () => {
  it('carry their customer until the second they expire, and not from then on', () => {
    const token = tokens.issue('cus_42', inAnHour);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify(token, issuedAt)).toEqual({ customerId: 'cus_42', expiresAt: inAnHour });
    expect(tokens.verify(token, new Date(inAnHour.getTime() - 1)).customerId).toBe('cus_42');
    expect(refusal(() => tokens.verify(token, inAnHour))).toBe('portal_link_expired');
  });

  it.each([
    ['missing', undefined, 'portal_link_missing'],
    ['empty', '', 'portal_link_missing'],
    ['garbage', 'not a token', 'portal_link_invalid'],
    ['a payload without its signature', tokens.issue('cus_42', inAnHour).split('.')[0]!, 'portal_link_invalid'],
    ['an API key', `mk_abcdefghijkl_${'Q'.repeat(43)}`, 'portal_link_invalid'],
  ])('refuse %s', (_, token, code) => {
    expect(refusal(() => tokens.verify(token, issuedAt))).toBe(code);
  });

  it('refuse another customer put in the payload, a later expiry, and another deployment`s token', () => {
    const [, mac] = tokens.issue('cus_42', inAnHour).split('.');
    const forge = (payload: object) => `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${mac}`;
    expect(refusal(() => tokens.verify(forge({ v: 1, c: 'cus_43', exp: inAnHour.getTime() / 1000 }), issuedAt))).toBe('portal_link_invalid');
    expect(refusal(() => tokens.verify(forge({ v: 1, c: 'cus_42', exp: inAnHour.getTime() / 1000 + 86_400 }), issuedAt))).toBe('portal_link_invalid');
    const elsewhere = new PortalTokens('another-deployment-secret-of-32-characters!').issue('cus_42', inAnHour);
    expect(refusal(() => tokens.verify(elsewhere, issuedAt))).toBe('portal_link_invalid');
  });

  it('are signed with a key of their own: neither a list cursor nor an HMAC under the raw secret passes', () => {
    const cursor = new CursorCodec(SECRET, 'portal').encode('cus_42');
    expect(refusal(() => tokens.verify(cursor, issuedAt))).toBe('portal_link_invalid');
    const payload = tokens.issue('cus_42', inAnHour).split('.')[0]!;
    const raw = `${payload}.${createHmac('sha256', SECRET).update(payload).digest('base64url')}`;
    expect(refusal(() => tokens.verify(raw, issuedAt))).toBe('portal_link_invalid');
  });

  it('refuse every token with one character changed (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/).filter((id) => id !== '.' && id !== '..'),
        fc.nat(),
        fc.integer({ min: 60, max: 86_400 }),
        (customerId, position, ttl) => {
          const token = tokens.issue(customerId, new Date(issuedAt.getTime() + ttl * 1000));
          expect(tokens.verify(token, issuedAt).customerId).toBe(customerId);
          const i = position % token.length;
          const changed = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
          expect(refusal(() => tokens.verify(changed, issuedAt))).toBe('portal_link_invalid');
        },
      ),
      { seed: 20261123, numRuns: 300 },
    );
  });

  it('refuse a correctly signed link that expires more than a day after it is shown, or at a time no clock can hold', () => {
    const sign = (payload: object) => {
      const text = Buffer.from(JSON.stringify(payload)).toString('base64url');
      const key = createHmac('sha256', SECRET).update('portal').digest();
      return `${text}.${createHmac('sha256', key).update(text).digest('base64url')}`;
    };
    const at = (seconds: number) => sign({ v: 1, c: 'cus_42', exp: issuedAt.getTime() / 1000 + seconds });
    expect(tokens.verify(at(86_400), issuedAt).customerId).toBe('cus_42');
    expect(refusal(() => tokens.verify(at(86_400 + 61), issuedAt))).toBe('portal_link_invalid');
    expect(refusal(() => tokens.verify(at(10 * 365 * 86_400), issuedAt))).toBe('portal_link_invalid');
    expect(refusal(() => tokens.verify(sign({ v: 1, c: 'cus_42', exp: Number.MAX_SAFE_INTEGER }), issuedAt))).toBe('portal_link_invalid');
    expect(refusal(() => tokens.verify(sign({ v: 1, c: 'cus_42', exp: -1 }), issuedAt))).toBe('portal_link_expired');
    expect(refusal(() => tokens.verify(sign([1, 'cus_42']), issuedAt))).toBe('portal_link_invalid');
    expect(refusal(() => tokens.verify(sign(null as unknown as object), issuedAt))).toBe('portal_link_invalid');
  });

  it('cannot be made without a secret', () => {
    expect(() => new PortalTokens(undefined).issue('cus_42', inAnHour)).toThrow(/CURSOR_SECRET/);
  });
});
