/**
 * A client's public key, as `clients[].jwks` takes it: checked here as oidc-provider checks it when it builds the
 * client (lib/models/client.js), so a key the provider would refuse at the first token request (a missing member, a
 * curve it does not know, a private key) is refused at load instead, by name. The key's values are never echoed.
 */
import { createPublicKey } from 'node:crypto';
import { z } from 'zod';

/** Per key type: the members it needs and, for EC and OKP, the curves oidc-provider accepts. */
const REQUIREMENTS: Record<string, { required: string[]; curves?: string[] }> = {
  RSA: { required: ['n', 'e'] },
  EC: { required: ['crv', 'x', 'y'], curves: ['P-256', 'P-384', 'P-521'] },
  OKP: { required: ['crv', 'x'], curves: ['Ed25519', 'X25519'] },
};

/** JWK members that only a private or symmetric key has (RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const member = z.string().min(1);

/** What is wrong with one public JWK, or undefined. */
function problemOf(key: Record<string, unknown>): string | undefined {
  const privateMembers = PRIVATE_MEMBERS.filter((name) => name in key);
  if (privateMembers.length > 0)
    return `a private key (it has ${privateMembers.join(', ')}): give the client's public key only`;
  const kty = key.kty as string;
  const { required, curves } = REQUIREMENTS[kty];
  const missing = required.filter((name) => typeof key[name] !== 'string' || key[name] === '');
  if (missing.length > 0) return `an ${kty} key needs ${missing.join(', ')} (non-empty strings)`;
  if (curves && !curves.includes(key.crv as string))
    return `crv: expected one of ${curves.join(', ')} for ${kty} keys (the provider ignores others)`;
  try {
    createPublicKey({ key: key as never, format: 'jwk' });
  } catch {
    return `its members do not form an ${kty} public key`;
  }
  return undefined;
}

export const clientJwk = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP']),
    kid: member.optional(),
    alg: member.optional(),
    use: member.optional(),
    x5c: z.array(member).optional(),
  })
  .check((ctx) => {
    const message = problemOf(ctx.value);
    if (message) ctx.issues.push({ code: 'custom', input: '(not shown)', message });
  });
