/**
 * Coordinating client token lifetimes with the user's session (`coordinateClientLifetimesWithUserSession`, per-client
 * `coordinateLifetimeWithUserSession`).
 *
 * - Binding: a coordinated client's codes and tokens — offline_access refresh tokens included — are bound to the
 *   session (oidc-provider's `expiresWithSession`). The provider then checks the session on every use: once it is gone
 *   or expired, refresh fails with invalid_grant, userinfo with invalid_token, and introspection answers inactive.
 *   Bound grants are also revoked at logout (they do not "persist logout").
 * - Sliding: a successful refresh, userinfo or active introspection of a coordinated client's token keeps the session
 *   alive (renewed = now, expires = now + idle timeout, capped by the absolute lifetime).
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { ClientSettings } from '../provider/clients.js';
import type { SessionService } from './session-service.js';

export function expiresWithSession(clients: ClientSettings) {
  return async (_ctx: KoaContextWithOIDC, token: { clientId?: string; scopes: Set<string> }): Promise<boolean> =>
    (token.clientId !== undefined && clients.coordinated(token.clientId)) || !token.scopes.has('offline_access');
}

const SLIDING_ROUTES = new Set(['token', 'userinfo', 'introspection']);

/** Provider middleware: after a successful token use by a coordinated client, slide its session. */
export function slideOnClientActivity(clients: ClientSettings, sessions: SessionService) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    if (!sessions.enabled || ctx.status !== 200 || !ctx.oidc || !SLIDING_ROUTES.has(String(ctx.oidc.route))) return;
    if (ctx.oidc.route === 'introspection' && (ctx.body as { active?: boolean } | undefined)?.active !== true) return;
    const entities = ctx.oidc.entities as { RefreshToken?: TokenLike; AccessToken?: TokenLike };
    const token = entities.RefreshToken ?? entities.AccessToken;
    if (!token?.sessionUid || !token.clientId || !clients.coordinated(token.clientId)) return;
    await sessions.slide(token.sessionUid);
  };
}

interface TokenLike {
  sessionUid?: string;
  clientId?: string;
}
