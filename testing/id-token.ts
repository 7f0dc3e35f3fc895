/**
 * Checks an ID token from the token endpoint with node:crypto only (no JOSE library): the signature against the
 * issuer's JWKS (RS256 or ES256, the algorithms Gatehouse signs with), `iss`, `aud` and `nonce`. Times are not checked:
 * the harness may run the server on a ManualClock.
 */
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';

export type IdTokenClaims = Record<string, unknown> & {
  iss: string;
  sub: string;
  aud: string | string[];
  sid?: string;
  nonce?: string;
};

function decodePart(part: string | undefined): Record<string, unknown> {
  if (!part) throw new Error('ID token: not a JWT');
  const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('ID token: not a JWT');
  return value as Record<string, unknown>;
}

export function verifyIdToken(
  idToken: string,
  jwks: { keys: (JsonWebKey & { kid?: string })[] },
  expected: { issuer: string; clientId: string; nonce: string },
): IdTokenClaims {
  const [header, payload, signature] = idToken.split('.');
  const { alg, kid } = decodePart(header);
  const jwk = jwks.keys.find((key) => key.kid === kid);
  if (!jwk) throw new Error(`ID token: no key with kid ${String(kid)} in the issuer's JWKS`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${header}.${payload}`);
  const sig = Buffer.from(signature ?? '', 'base64url');
  let valid: boolean;
  if (alg === 'RS256') valid = verify('sha256', data, key, sig);
  else if (alg === 'ES256') valid = verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  else throw new Error(`ID token: unsupported alg ${String(alg)}`);
  if (!valid) throw new Error('ID token: bad signature');

  const claims = decodePart(payload) as IdTokenClaims;
  if (claims.iss !== expected.issuer) throw new Error(`ID token: iss is ${claims.iss}, expected ${expected.issuer}`);
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audience.includes(expected.clientId)) throw new Error(`ID token: aud does not include ${expected.clientId}`);
  if (claims.nonce !== expected.nonce) throw new Error('ID token: nonce mismatch');
  return claims;
}
