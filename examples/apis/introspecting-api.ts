/**
 * An API (resource server) that accepts Gatehouse's opaque (reference) access tokens by asking Gatehouse about each
 * one at its introspection endpoint (RFC 7662), authenticated as its own confidential client — the API's
 * `introspectionClientId`, which may introspect tokens of this API's audience and nothing else. A token is accepted
 * only while Gatehouse says it is active, for this audience, with the scope the route needs; a DPoP-bound one (the
 * answer's `cnf.jkt`) also needs a proof of its key.
 *
 *   GET /ledger   needs ledger:read: the caller (`sub`, `client_id`) and a balance
 *
 * Reference tokens end with their grant, so a revoked session (or, for a coordinated client, an expired one) is
 * refused on the very next request. An API under load may keep answers for a few seconds (never past `exp`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oidc from 'openid-client';
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

const REALM = 'ledger';

export interface IntrospectingApiOptions {
  /** Gatehouse's issuer. */
  issuer: string;
  /** This API's identifier in Gatehouse's `apis[]`: the `aud` its tokens carry. */
  audience: string;
  /** The confidential client this API introspects as (the API's `introspectionClientId`). */
  clientId: string;
  clientSecret: string;
  /** This API's own public URL (DPoP proofs name it). */
  publicUrl: string;
}

export function createIntrospectingApi(options: IntrospectingApiOptions) {
  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = () =>
    (discovered ??= oidc
      .discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
        // Plain http is for an issuer on this machine only (development, tests).
        execute: options.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      }));
  const replay = new DpopReplayCache();

  async function claimsOf(req: IncomingMessage, presented: Presented): Promise<TokenClaims> {
    let answer: oidc.IntrospectionResponse;
    try {
      answer = await oidc.tokenIntrospection(await configuration(), presented.token);
    } catch (error) {
      // Gatehouse refused the token itself (a JWT: unsupported_token_type); anything else is an outage, not a 401.
      if (error instanceof oidc.ResponseBodyError && error.status === 400)
        throw new Unauthorized(
          401,
          'invalid_token',
          'the access token is not a reference token of this issuer',
          presented.scheme,
        );
      throw error;
    }
    const audiences = Array.isArray(answer.aud) ? answer.aud : answer.aud ? [answer.aud] : [];
    if (!answer.active || !audiences.includes(options.audience) || (answer.exp ?? 0) * 1000 <= Date.now()) {
      throw new Unauthorized(401, 'invalid_token', 'the access token is not active for this API', presented.scheme);
    }
    const claims = answer as TokenClaims;
    await checkSenderConstraint(req, presented, claims, options.publicUrl, replay);
    return claims;
  }

  return {
    async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
      if (req.method !== 'GET' || path !== '/ledger') return sendJson(res, 404, { error: 'not_found' });

      const presented = presentedToken(req);
      if (!presented) return sendUnauthorized(res, undefined, REALM);
      try {
        const claims = await claimsOf(req, presented);
        requireScope(claims, 'ledger:read', presented.scheme);
        sendJson(res, 200, { subject: claims.sub, client: claims.client_id, balance: '1024.00 EUR' });
      } catch (error) {
        if (!(error instanceof Unauthorized)) throw error;
        sendUnauthorized(res, error, REALM, 'ledger:read');
      }
    },
  };
}
