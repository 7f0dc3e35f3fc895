/**
 * Checking a DPoP proof at a resource server (RFC 9449 §4.3, §7.1) with jose: the proof is a JWT signed by the key in
 * its own header (`typ: dpop+jwt`), made for this request (`htm`, `htu`), recent (`iat`), used once (`jti`), for this
 * access token (`ath`), and its key is the one the token is bound to (the JWK thumbprint equals the token's `cnf.jkt`).
 *
 * This example takes no nonces of its own (RFC 9449 §9); an API that wants them answers `use_dpop_nonce` with a
 * `DPoP-Nonce` header and checks the `nonce` claim here.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';

const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'Ed25519', 'EdDSA'];
/** How far `iat` may be from now, in seconds, either way. */
const MAX_AGE = 60;

export class DpopProofError extends Error {}

/** The `jti`s seen within the last MAX_AGE seconds (one process; several instances need a shared store). */
export class DpopReplayCache {
  readonly #seen = new Map<string, number>();

  /** False when `jti` was already used. */
  remember(jti: string, now: number): boolean {
    for (const [id, at] of this.#seen) if (at < now - 2 * MAX_AGE) this.#seen.delete(id);
    if (this.#seen.has(jti)) return false;
    this.#seen.set(jti, now);
    return true;
  }
}

export async function verifyDpopProof(
  proof: string,
  expected: { method: string; url: string; accessToken: string; jkt: string; replay: DpopReplayCache; now?: number },
): Promise<void> {
  const options = { typ: 'dpop+jwt', algorithms: ALGORITHMS };
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, options).catch((error: Error) => {
    throw new DpopProofError(`the DPoP proof does not verify: ${error.message}`);
  });
  const now = expected.now ?? Math.floor(Date.now() / 1000);
  if (payload.htm !== expected.method) throw new DpopProofError('the DPoP proof is for another method');
  if (typeof payload.htu !== 'string' || stripQuery(payload.htu) !== expected.url)
    throw new DpopProofError('the DPoP proof is for another URL');
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > MAX_AGE)
    throw new DpopProofError('the DPoP proof is too old or from the future');
  if (payload.ath !== createHash('sha256').update(expected.accessToken).digest('base64url'))
    throw new DpopProofError('the DPoP proof is for another access token');
  if ((await calculateJwkThumbprint(protectedHeader.jwk!)) !== expected.jkt)
    throw new DpopProofError('the DPoP proof is signed with another key than the token is bound to');
  if (typeof payload.jti !== 'string' || !expected.replay.remember(payload.jti, now))
    throw new DpopProofError('the DPoP proof was already used');
}

function stripQuery(url: string): string {
  const parsed = URL.parse(url);
  return parsed ? `${parsed.origin}${parsed.pathname}` : url;
}
