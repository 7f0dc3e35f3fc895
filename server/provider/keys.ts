/**
 * Signing keys (RS256 + ES256) and cookie-signing keys. Unless the configuration supplies its own, they are generated
 * on first start and kept in the database (gatehouse_secrets), so restarts and other instances share them. Key
 * material is never logged: only key ids and algorithms are.
 *
 * Rotation (`gatehouse keys rotate`): a new RS256 + ES256 pair goes first in the stored JWKS, so the provider signs
 * with it (it takes the first key of an algorithm); the previous keys stay published, each with a retire-after time of
 * now + the longest token lifetime, so every token they signed can still be verified. Keys past that time are dropped
 * at start. Stored value: `{ "keys": [...], "retireAfter": { "<kid>": <epoch seconds> } }`.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { getOrCreateSecret, getSecret, setSecret } from '../../stores/sequelize/secrets.js';
import type { Clock } from '../../stores/session-store.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface PrivateJwks {
  keys: Record<string, unknown>[];
}

/** The stored form: the private JWKS plus when each retiring key may go. */
interface StoredJwks extends PrivateJwks {
  retireAfter?: Record<string, number>;
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

export async function loadKeyMaterial(sequelize: Sequelize, config: GatehouseConfig, clock: Clock): Promise<KeyMaterial> {
  const jwks = config.keys.jwks ? (config.keys.jwks as PrivateJwks) : await storedSigningKeys(sequelize, clock);
  const cookieKeys =
    config.keys.cookieKeys ??
    (JSON.parse(await getOrCreateSecret(sequelize, 'cookie-keys', async () => JSON.stringify([randomBytes(32).toString('base64url')]))) as string[]);
  return { jwks, cookieKeys, source: config.keys.jwks ? 'config' : 'database' };
}

/** The stored signing keys (generated on first use), without those past their retire-after time. */
async function storedSigningKeys(sequelize: Sequelize, clock: Clock): Promise<PrivateJwks> {
  const stored = JSON.parse(await getOrCreateSecret(sequelize, 'jwks', async () => JSON.stringify(await generateSigningKeys()))) as StoredJwks;
  const current = withoutRetired(stored, clock);
  if (current.keys.length !== stored.keys.length) await setSecret(sequelize, 'jwks', JSON.stringify(current));
  return { keys: current.keys };
}

function withoutRetired(stored: StoredJwks, clock: Clock): StoredJwks {
  const now = clock.now().getTime() / 1000;
  const retireAfter = { ...stored.retireAfter };
  const keys = stored.keys.filter((key) => {
    const until = retireAfter[String(key.kid)];
    if (until !== undefined && until <= now) {
      delete retireAfter[String(key.kid)];
      return false;
    }
    return true;
  });
  return Object.keys(retireAfter).length ? { keys, retireAfter } : { keys };
}

export interface StoredKeyInfo {
  kid: string;
  alg: string;
  /** `active` keys sign (the first of each algorithm); `retiring` ones only verify until `retireAfter`. */
  status: 'active' | 'retiring';
  retireAfter?: Date;
}

/** The stored signing keys and their state (null when none have been generated yet). */
export async function listSigningKeys(sequelize: Sequelize): Promise<StoredKeyInfo[] | null> {
  const raw = await getSecret(sequelize, 'jwks');
  if (raw === null) return null;
  const stored = JSON.parse(raw) as StoredJwks;
  return stored.keys.map((key) => {
    const until = stored.retireAfter?.[String(key.kid)];
    return { kid: String(key.kid), alg: String(key.alg), status: until === undefined ? 'active' : 'retiring', ...(until === undefined ? {} : { retireAfter: new Date(until * 1000) }) };
  });
}

/**
 * The longest lifetime of anything the provider issues (the retire-after delay of a rotated key), in seconds: the
 * ttl section and any API's own access-token lifetime (its JWT access tokens are signed with these keys).
 */
export function longestTokenLifetime(ttl: GatehouseConfig['ttl'], apis: Pick<GatehouseConfig['apis'][number], 'accessTokenTtl'>[] = []): number {
  return Math.max(ttl.accessToken, ttl.authorizationCode, ttl.clientCredentials, ttl.idToken, ttl.refreshToken, ...apis.map((api) => api.accessTokenTtl ?? 0));
}

/**
 * Puts a new RS256 + ES256 pair first in the stored JWKS; every key that was active is kept with a retire-after time of
 * now + `retireAfterSeconds`; keys already past theirs are dropped. Running servers sign with the new keys once
 * restarted (they read the keys at start).
 */
export async function rotateSigningKeys(
  sequelize: Sequelize,
  options: { retireAfterSeconds: number; clock: Clock },
): Promise<{ added: StoredKeyInfo[]; retiring: StoredKeyInfo[]; dropped: string[] }> {
  const info = (key: Record<string, unknown>): StoredKeyInfo => ({ kid: String(key.kid), alg: String(key.alg), status: 'active' });
  if ((await getSecret(sequelize, 'jwks')) === null) {
    // Nothing to rotate yet: the first keys are generated (as a first start would), with nothing to retire.
    const first = JSON.parse(await getOrCreateSecret(sequelize, 'jwks', async () => JSON.stringify(await generateSigningKeys()))) as StoredJwks;
    return { added: first.keys.map(info), retiring: [], dropped: [] };
  }
  const stored = JSON.parse((await getSecret(sequelize, 'jwks'))!) as StoredJwks;
  const kept = withoutRetired(stored, options.clock);
  const dropped = stored.keys.filter((key) => !kept.keys.includes(key)).map((key) => String(key.kid));
  const until = Math.ceil(options.clock.now().getTime() / 1000 + options.retireAfterSeconds);
  const retireAfter: Record<string, number> = { ...kept.retireAfter };
  for (const key of kept.keys) retireAfter[String(key.kid)] ??= until;
  const fresh = await generateSigningKeys();
  await setSecret(sequelize, 'jwks', JSON.stringify({ keys: [...fresh.keys, ...kept.keys], retireAfter }));
  return {
    added: fresh.keys.map(info),
    retiring: kept.keys.map((key) => ({ kid: String(key.kid), alg: String(key.alg), status: 'retiring', retireAfter: new Date(retireAfter[String(key.kid)] * 1000) })),
    dropped,
  };
}

/** The public summary that may appear in logs. */
export function describeKeys(jwks: PrivateJwks): { kid: unknown; alg: unknown }[] {
  return jwks.keys.map((key) => ({ kid: key.kid, alg: key.alg }));
}
