/**
 * Signing keys (RS256 + ES256) and cookie-signing keys. Unless the configuration supplies its own, they are generated
 * on first start and kept in the database (gatehouse_secrets), so restarts and other instances share them. Key
 * material is never logged: only key ids and algorithms are.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { getOrCreateSecret } from '../../stores/sequelize/secrets.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface PrivateJwks {
  keys: Record<string, unknown>[];
}

export interface KeyMaterial {
  jwks: PrivateJwks;
  cookieKeys: string[];
  /** Where the keys came from, for the start-up log line. */
  source: 'config' | 'database';
}

function thumbprintKid(jwk: Record<string, unknown>): string {
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Generates one RS256 and one ES256 private JWK. */
export async function generateSigningKeys(): Promise<PrivateJwks> {
  const rsa = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const ec = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const rsaJwk = rsa.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const ecJwk = ec.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  return {
    keys: [
      { ...rsaJwk, kid: thumbprintKid(rsaJwk), alg: 'RS256', use: 'sig' },
      { ...ecJwk, kid: thumbprintKid(ecJwk), alg: 'ES256', use: 'sig' },
    ],
  };
}

export async function loadKeyMaterial(sequelize: Sequelize, config: GatehouseConfig): Promise<KeyMaterial> {
  const jwks = config.keys.jwks
    ? (config.keys.jwks as PrivateJwks)
    : (JSON.parse(await getOrCreateSecret(sequelize, 'jwks', async () => JSON.stringify(await generateSigningKeys()))) as PrivateJwks);
  const cookieKeys =
    config.keys.cookieKeys ??
    (JSON.parse(await getOrCreateSecret(sequelize, 'cookie-keys', async () => JSON.stringify([randomBytes(32).toString('base64url')]))) as string[]);
  return { jwks, cookieKeys, source: config.keys.jwks ? 'config' : 'database' };
}

/** The public summary that may appear in logs. */
export function describeKeys(jwks: PrivateJwks): { kid: unknown; alg: unknown }[] {
  return jwks.keys.map((key) => ({ kid: key.kid, alg: key.alg }));
}
