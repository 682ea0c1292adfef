import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from './errors';
import { SUBJECT_PATTERN } from './events';

/**
 * The credential of a usage-page link (docs/portal.md): `<payload>.<mac>`, both base64url, where
 * the payload is `{"v":1,"c":<customer id>,"exp":<unix seconds>}` and the MAC an HMAC-SHA256 of the
 * payload's text under a key of its own, HMAC-SHA256(deployment secret, "portal"), so that nothing
 * else signed with the deployment secret (list cursors) can pass for a link. It names one customer
 * and an expiry and nothing else; it cannot be revoked one by one (rotating the secret ends them all),
 * which is why links live at most a day.
 */
export const PORTAL_LINK_TTL = { minSeconds: 60, maxSeconds: 86_400, defaultSeconds: 3_600 } as const;

const SHAPE = /^([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$/;

export interface PortalGrant {
  customerId: string;
  expiresAt: Date;
}

export class PortalTokens {
  private readonly key: Buffer | undefined;

  /** `secret`: the deployment's signing secret (CURSOR_SECRET); undefined refuses to sign or verify. */
  constructor(secret: string | undefined) {
    this.key = secret === undefined ? undefined : createHmac('sha256', secret).update('portal').digest();
  }

  private mac(payload: string): string {
    if (this.key === undefined) throw new Error('invalid configuration: CURSOR_SECRET is not set, so portal links cannot be signed');
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  issue(customerId: string, expiresAt: Date): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, c: customerId, exp: Math.floor(expiresAt.getTime() / 1000) }), 'utf8').toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /** The customer a token grants, checked at `now`: 401 for a missing, forged or expired one. */
  verify(token: string | undefined, now: Date): PortalGrant {
    if (token === undefined || token === '') throw new UnauthorizedError('this page needs the link it was given: the token is missing', 'portal_link_missing');
    const m = SHAPE.exec(token);
    // The MAC's text is compared, not its decoded bytes: base64url's last character carries unused
    // bits, and a token must have exactly one spelling.
    const given = Buffer.from(m?.[2] ?? '');
    const expected = Buffer.from(m ? this.mac(m[1]!) : '');
    const grant = m && given.length === expected.length && timingSafeEqual(given, expected) ? parsePayload(m[1]!) : undefined;
    // A link is issued for at most a day; one signed for longer (by an earlier version, or with a
    // leaked secret) is refused rather than honoured for its whole life. A minute of slack covers clocks.
    const tooLong = grant !== undefined && grant.expiresAt.getTime() - now.getTime() > (PORTAL_LINK_TTL.maxSeconds + 60) * 1000;
    if (grant === undefined || tooLong)
      throw new UnauthorizedError('this link is not valid: it was not issued by this service, or it was changed', 'portal_link_invalid');
    if (now.getTime() >= grant.expiresAt.getTime()) throw new UnauthorizedError('this link has expired', 'portal_link_expired');
    return grant;
  }
}

function parsePayload(payload: string): PortalGrant | undefined {
  try {
    const v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { v?: unknown; c?: unknown; exp?: unknown };
    if (v === null || typeof v !== 'object' || v.v !== 1 || typeof v.c !== 'string' || !SUBJECT_PATTERN.test(v.c)) return undefined;
    // Seconds a Date can hold (±8.64e12), so that no signed payload makes an Invalid Date downstream.
    if (!Number.isSafeInteger(v.exp) || Math.abs(v.exp as number) > 8.64e12) return undefined;
    return { customerId: v.c, expiresAt: new Date((v.exp as number) * 1000) };
  } catch {
    return undefined;
  }
}
