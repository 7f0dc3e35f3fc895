/**
 * Validating a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6): signature against the
 * issuer's JWKS, `iss`, `aud`, `iat`, a `jti` not seen before, the back-channel logout event, a `sid` or `sub`, and no
 * `nonce`. The explicit type `logout+jwt`, when present, must be that.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
/** jti values already accepted (a replayed token is refused); forgotten after MAX_AGE. */
const seen = new Map<string, number>();
const MAX_AGE_SECONDS = 120;

export async function verifyLogoutToken(
  token: string,
  expected: { issuer: string; clientId: string; jwksUri: string },
): Promise<{ sub?: string; sid?: string }> {
  if (!token) throw new Error('missing logout_token');
  let keys = keySets.get(expected.jwksUri);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(expected.jwksUri));
    keySets.set(expected.jwksUri, keys);
  }
  const { payload, protectedHeader } = await jwtVerify(token, keys, {
    issuer: expected.issuer,
    audience: expected.clientId,
    algorithms: ['RS256', 'ES256', 'PS256', 'EdDSA'],
    requiredClaims: ['iat', 'jti'],
    maxTokenAge: MAX_AGE_SECONDS,
  });
  if (protectedHeader.typ !== undefined && protectedHeader.typ.toLowerCase() !== 'logout+jwt')
    throw new Error(`unexpected typ ${protectedHeader.typ}`);
  const events = (payload as JWTPayload & { events?: Record<string, unknown> }).events;
  if (typeof events !== 'object' || events === null || typeof events[EVENT] !== 'object')
    throw new Error('not a back-channel logout event');
  if ('nonce' in payload) throw new Error('a logout token must not carry a nonce');
  const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
  if (!sid && !payload.sub) throw new Error('neither sid nor sub');

  const now = Date.now();
  for (const [jti, at] of seen) if (at < now - MAX_AGE_SECONDS * 1000) seen.delete(jti);
  if (seen.has(payload.jti!)) throw new Error('logout token replayed');
  seen.set(payload.jti!, now);
  return { sub: payload.sub, sid };
}
