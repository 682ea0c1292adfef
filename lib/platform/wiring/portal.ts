import { PortalTokens } from '../../domain/portal-token';
import { area } from './base';

/** Signs and checks the tokens of usage-page links (a key derived from the deployment secret). */
export const portalArea = area((r) => ({ portalTokens: new PortalTokens(r.cursorSecret) }));
