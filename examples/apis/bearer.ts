/**
 * The HTTP side both example APIs share: reading `Authorization: Bearer|DPoP <token>`, answering with RFC 6750 /
 * RFC 9449 challenges, and checking a sender-constrained token's DPoP proof. What differs between the two APIs is
 * only how a token's claims are obtained: from the JWT itself (jwt-api.ts) or from Gatehouse (introspecting-api.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DpopProofError, type DpopReplayCache, verifyDpopProof } from './dpop-proof.js';

/** What an API needs to know about a token to decide. */
export interface TokenClaims {
  sub?: string;
  client_id?: string;
  scope?: string;
  /** The DPoP key thumbprint the token is bound to (RFC 9449 §6). */
  cnf?: { jkt?: string };
}

export class Unauthorized extends Error {
  constructor(
    readonly status: 401 | 403,
    readonly code: 'invalid_token' | 'insufficient_scope' | 'invalid_request' | 'invalid_dpop_proof',
    message: string,
    readonly scheme: 'Bearer' | 'DPoP' = 'Bearer',
  ) {
    super(message);
  }
}

export interface Presented {
  scheme: 'Bearer' | 'DPoP';
  token: string;
}

/** The token of `Authorization: Bearer …` or `Authorization: DPoP …`; a missing one is 401 without an error code. */
export function presentedToken(req: IncomingMessage): Presented | undefined {
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(req.headers.authorization ?? '');
  if (!match) return undefined;
  return { scheme: match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2] };
}

/**
 * A DPoP-bound token must come with `Authorization: DPoP` and a proof of its key for this very request; an unbound one
 * must come as Bearer (RFC 9449 §7.1–7.2).
 */
export async function checkSenderConstraint(
  req: IncomingMessage,
  presented: Presented,
  claims: TokenClaims,
  publicUrl: string,
  replay: DpopReplayCache,
): Promise<void> {
  const jkt = claims.cnf?.jkt;
  if (!jkt) {
    if (presented.scheme === 'DPoP')
      throw new Unauthorized(401, 'invalid_token', 'the token is not DPoP-bound', 'DPoP');
    return;
  }
  if (presented.scheme !== 'DPoP')
    throw new Unauthorized(
      401,
      'invalid_token',
      'the token is DPoP-bound: send it as Authorization: DPoP with a proof',
      'DPoP',
    );
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') throw new Unauthorized(401, 'invalid_dpop_proof', 'a DPoP proof is required', 'DPoP');
  const url = new URL(req.url ?? '/', publicUrl);
  try {
    await verifyDpopProof(proof, {
      method: req.method ?? 'GET',
      url: `${url.origin}${url.pathname}`,
      accessToken: presented.token,
      jkt,
      replay,
    });
  } catch (error) {
    if (error instanceof DpopProofError) throw new Unauthorized(401, 'invalid_dpop_proof', error.message, 'DPoP');
    throw error;
  }
}

/** 403 unless the token's scope holds `scope`. */
export function requireScope(claims: TokenClaims, scope: string, scheme: Presented['scheme']): void {
  if (!(claims.scope ?? '').split(' ').includes(scope))
    throw new Unauthorized(403, 'insufficient_scope', `the token lacks the ${scope} scope`, scheme);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** The challenge for a refused request (no error code when no token was sent at all, RFC 6750 §3.1). */
export function sendUnauthorized(
  res: ServerResponse,
  error: Unauthorized | undefined,
  realm: string,
  scope?: string,
): void {
  const scheme = error?.scheme ?? 'Bearer';
  const parts = [`realm="${realm}"`];
  if (error) parts.push(`error="${error.code}"`, `error_description="${error.message.replace(/["\\]/g, '')}"`);
  if (scope && error?.code === 'insufficient_scope') parts.push(`scope="${scope}"`);
  if (scheme === 'DPoP') parts.push('algs="ES256 Ed25519 EdDSA"');
  sendJson(
    res,
    error?.status ?? 401,
    { error: error?.code ?? 'unauthorized', error_description: error?.message ?? 'a bearer or DPoP token is required' },
    { 'www-authenticate': `${scheme} ${parts.join(', ')}` },
  );
}
