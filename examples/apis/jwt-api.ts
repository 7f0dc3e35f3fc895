/**
 * An API (resource server) that accepts Gatehouse's JWT access tokens (RFC 9068) and checks them itself, with jose
 * and the keys Gatehouse publishes: no call to Gatehouse per request. A token is accepted only if its signature
 * verifies against the issuer's JWKS, `typ` is `at+jwt`, `iss` is the issuer, `aud` this API's identifier, it has not
 * expired, and its `scope` holds what the route needs; a DPoP-bound one also needs a proof of its key.
 *
 *   GET /orders   needs orders:read: the caller (`sub`, `client_id`) and some orders
 *
 * Such a token cannot be revoked: its lifetime (the API's `accessTokenTtl`) is what bounds it after a logout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import {
  checkSenderConstraint,
  presentedToken,
  requireScope,
  sendJson,
  sendUnauthorized,
  Unauthorized,
  type Presented,
  type TokenClaims,
} from './bearer.js';
import { DpopReplayCache } from './dpop-proof.js';

const REALM = 'orders';

export interface JwtApiOptions {
  /** Gatehouse's issuer. */
  issuer: string;
  /** This API's identifier in Gatehouse's `apis[]`: the `aud` its tokens carry. */
  audience: string;
  /** This API's own public URL (DPoP proofs name it). */
  publicUrl: string;
}

export function createJwtApi(options: JwtApiOptions) {
  let keys: Promise<JWTVerifyGetKey> | undefined;
  // The JWKS location from discovery; jose caches the keys and refetches on an unknown `kid` (key rotation).
  const jwks = () =>
    (keys ??= fetch(`${options.issuer}/.well-known/openid-configuration`)
      .then(async (response) => {
        if (!response.ok) throw new Error(`discovery: HTTP ${response.status}`);
        return createRemoteJWKSet(new URL(((await response.json()) as { jwks_uri: string }).jwks_uri));
      })
      .catch((error: unknown) => {
        keys = undefined;
        throw error;
      }));
  const replay = new DpopReplayCache();

  async function claimsOf(req: IncomingMessage, presented: Presented): Promise<TokenClaims> {
    const keySet = await jwks(); // Gatehouse unreachable: a 5xx, not the caller's fault
    let claims: TokenClaims;
    try {
      ({ payload: claims } = await jwtVerify<TokenClaims>(presented.token, keySet, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['exp', 'iat', 'jti', 'client_id'],
      }));
    } catch (error) {
      throw new Unauthorized(
        401,
        'invalid_token',
        `the access token is not valid here: ${(error as Error).message}`,
        presented.scheme,
      );
    }
    await checkSenderConstraint(req, presented, claims, options.publicUrl, replay);
    return claims;
  }

  return {
    async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
      if (req.method !== 'GET' || path !== '/orders') return sendJson(res, 404, { error: 'not_found' });

      const presented = presentedToken(req);
      if (!presented) return sendUnauthorized(res, undefined, REALM);
      try {
        const claims = await claimsOf(req, presented);
        requireScope(claims, 'orders:read', presented.scheme);
        sendJson(res, 200, {
          subject: claims.sub,
          client: claims.client_id,
          orders: [{ id: 'o-1001', total: '12.50 EUR' }],
        });
      } catch (error) {
        if (!(error instanceof Unauthorized)) throw error;
        sendUnauthorized(res, error, REALM, 'orders:read');
      }
    },
  };
}
