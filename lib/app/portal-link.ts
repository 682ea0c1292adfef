import { PORTAL_LINK_TTL, type PortalTokens } from '../domain/portal-token';
import { checkCustomerId } from './customer-id';
import type { Clock } from './ports/clock';

export interface LinkDeps {
  portalTokens: PortalTokens;
  clock: Clock;
}

/**
 * A link to a customer's usage page, valid `ttlSeconds`: `<baseUrl>/portal?token=...`. For whoever
 * hands links out (the portal-links API, the CLI, alert e-mails, without loading the page's use
 * cases); `baseUrl` is where customers reach the API (PUBLIC_URL, or the request's domain).
 */
export function portalLink(deps: LinkDeps, baseUrl: string, customerId: string, ttlSeconds: number = PORTAL_LINK_TTL.defaultSeconds) {
  checkCustomerId(customerId);
  const expiresAt = new Date(Math.floor(deps.clock.now().getTime() / 1000) * 1000 + ttlSeconds * 1000);
  const token = deps.portalTokens.issue(customerId, expiresAt);
  return { url: `${baseUrl.replace(/\/+$/, '')}/portal?token=${token}`, expiresAt: expiresAt.toISOString() };
}
