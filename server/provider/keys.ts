/**
 * Signing keys (RS256 + ES256) and cookie-signing keys. Unless the configuration supplies its own, they are generated
 * on first start and kept in the database (gatehouse_secrets), so restarts and other instances share them. Key
 * material is never logged: only key ids and algorithms are.
 *
 * Rotation is staged and needs no restart (`gatehouse keys rotate`; running servers follow the database, see
 * key-ring.ts). Each stored key has a stage that follows from two times and the clock alone, so every instance derives
 * the same stages at the same moment without anyone writing them:
 *
 *   pending   published, not signing yet: from the rotation until `activateAt` (now + keys.activationDelay), long
 *             enough for every instance to publish it and every relying party's JWKS cache to hold it
 *   active    the key of its algorithm with the latest `activateAt` that has passed: it signs
 *   retiring  superseded, still published until `retireAfter` (the successor's activateAt + the longest lifetime of
 *             what it signed), so every token it signed can still be verified
 *   retired   past `retireAfter`: no longer published; dropped from storage at the next rotation
 *
 * Stored value: `{ "keys": [...private JWKs, newest first], "activateAt": { "<kid>": <epoch s> },
 * "retireAfter": { "<kid>": <epoch s> } }`. A key without `activateAt` (stored before staged rotation) has been active
 * since it was stored; among keys of one algorithm with the same `activateAt` the first one signs, as before.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Sequelize } from 'sequelize';
import type { GatehouseConfig } from '../../config/schema.js';
import { getOrCreateSecret, getSecret, replaceSecret } from '../../stores/sequelize/secrets.js';
import type { Clock } from '../../stores/session-store.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export type Jwk = Record<string, unknown>;

export interface PrivateJwks {
  keys: Jwk[];
}

/** The stored form: the private JWKS plus when each key signs from and when it may go. */
export interface StoredJwks extends PrivateJwks {
  activateAt?: Record<string, number>;
  retireAfter?: Record<string, number>;
}

export interface KeyMaterial {
  /** The keys the provider starts with (signing keys first; see providerKeys). */
  jwks: PrivateJwks;
  cookieKeys: string[];
  /** Where the keys came from, for the start-up log line. */
  source: 'config' | 'database';
  /** The stored keys as read at start (undefined when the configuration supplies the keys). */
  stored?: StoredJwks;
}

export type KeyStatus = 'pending' | 'active' | 'retiring' | 'retired';

export interface StoredKeyInfo {
  kid: string;
  alg: string;
  status: KeyStatus;
  /** When it signs (pending) or signed (active, retiring) from; absent for keys stored before staged rotation. */
  activateAt?: Date;
  /** When it stops being published (retiring, retired). */
  retireAfter?: Date;
}

function thumbprintKid(jwk: Jwk): string {
  const members =
    jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** Generates one RS256 and one ES256 private JWK. */
export async function generateSigningKeys(): Promise<PrivateJwks> {
  const rsa = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const ec = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const rsaJwk = rsa.privateKey.export({ format: 'jwk' }) as Jwk;
  const ecJwk = ec.privateKey.export({ format: 'jwk' }) as Jwk;
  return {
    keys: [
      { ...rsaJwk, kid: thumbprintKid(rsaJwk), alg: 'RS256', use: 'sig' },
      { ...ecJwk, kid: thumbprintKid(ecJwk), alg: 'ES256', use: 'sig' },
    ],
  };
}

export async function loadKeyMaterial(
  sequelize: Sequelize,
  config: GatehouseConfig,
  clock: Clock,
): Promise<KeyMaterial> {
  const cookieKeys =
    config.keys.cookieKeys ??
    (JSON.parse(
      await getOrCreateSecret(sequelize, 'cookie-keys', async () =>
        JSON.stringify([randomBytes(32).toString('base64url')]),
      ),
    ) as string[]);
  if (config.keys.jwks) return { jwks: config.keys.jwks as PrivateJwks, cookieKeys, source: 'config' };
  const stored = await readStoredKeys(sequelize);
  return { jwks: { keys: providerKeys(stored, clock.now()) }, cookieKeys, source: 'database', stored };
}

/** The stored signing keys, generated (as a first start does) when there are none. */
export async function readStoredKeys(sequelize: Sequelize): Promise<StoredJwks> {
  return JSON.parse(
    await getOrCreateSecret(sequelize, 'jwks', async () => JSON.stringify(await generateSigningKeys())),
  ) as StoredJwks;
}

/** Every stored key with its stage at `now`. */
export function keyStages(stored: StoredJwks, now: Date): StoredKeyInfo[] {
  const seconds = now.getTime() / 1000;
  const active = new Map<string, { kid: string; from: number }>();
  for (const key of stored.keys) {
    const kid = String(key.kid);
    const alg = String(key.alg);
    const from = stored.activateAt?.[kid] ?? 0;
    const until = stored.retireAfter?.[kid];
    if (from > seconds || (until !== undefined && until <= seconds)) continue;
    // The latest activation that has passed signs; on a tie the first key (newest stored) wins.
    const current = active.get(alg);
    if (!current || from > current.from) active.set(alg, { kid, from });
  }
  return stored.keys.map((key) => {
    const kid = String(key.kid);
    const alg = String(key.alg);
    const from = stored.activateAt?.[kid];
    const until = stored.retireAfter?.[kid];
    const status: KeyStatus =
      until !== undefined && until <= seconds
        ? 'retired'
        : from !== undefined && from > seconds
          ? 'pending'
          : active.get(alg)?.kid === kid
            ? 'active'
            : 'retiring';
    return {
      kid,
      alg,
      status,
      ...(from === undefined ? {} : { activateAt: new Date(from * 1000) }),
      ...(until === undefined ? {} : { retireAfter: new Date(until * 1000) }),
    };
  });
}

/**
 * The private JWKs the provider holds at `now`: every published key (pending, active, retiring), the active ones
 * first; the others marked `key_ops: ["verify"]`, so the provider never signs with them (it picks the first key of
 * the algorithm whose key_ops allow signing) but still verifies with them (an id_token_hint it signed earlier).
 */
export function providerKeys(stored: StoredJwks, now: Date): Jwk[] {
  const stages = new Map(keyStages(stored, now).map((info) => [info.kid, info.status]));
  const published = stored.keys.filter((key) => stages.get(String(key.kid)) !== 'retired');
  const active = published.filter((key) => stages.get(String(key.kid)) === 'active');
  const others = published
    .filter((key) => stages.get(String(key.kid)) !== 'active')
    .map((key) => ({ ...key, key_ops: ['verify'] }));
  return [...active, ...others];
}

/** The next moment a stage changes after `now` (a pending key activates, a retiring one retires), or undefined. */
export function nextStageChange(stored: StoredJwks, now: Date): Date | undefined {
  const seconds = now.getTime() / 1000;
  const times = [...Object.values(stored.activateAt ?? {}), ...Object.values(stored.retireAfter ?? {})].filter(
    (time) => time > seconds,
  );
  return times.length ? new Date(Math.min(...times) * 1000) : undefined;
}

/** The stored signing keys and their stages (null when none have been generated yet). */
export async function listSigningKeys(sequelize: Sequelize, clock: Clock): Promise<StoredKeyInfo[] | null> {
  const raw = await getSecret(sequelize, 'jwks');
  return raw === null ? null : keyStages(JSON.parse(raw) as StoredJwks, clock.now());
}

/**
 * How long a superseded key stays published, in seconds: the longest lifetime of anything the provider issues — the ttl
 * section and any API's own access-token lifetime (its JWT access tokens are signed with these keys). ID tokens and JWT
 * access tokens are what it signs; refresh tokens count too, because a relying party may keep an ID token as long as
 * its refresh token lives and send it back as an id_token_hint at logout.
 */
export function longestTokenLifetime(
  ttl: GatehouseConfig['ttl'],
  apis: Pick<GatehouseConfig['apis'][number], 'accessTokenTtl'>[] = [],
): number {
  return Math.max(
    ttl.accessToken,
    ttl.authorizationCode,
    ttl.clientCredentials,
    ttl.idToken,
    ttl.refreshToken,
    ...apis.map((api) => api.accessTokenTtl ?? 0),
  );
}

export interface RotationResult {
  /** The new keys: published now, signing from their activateAt. */
  added: StoredKeyInfo[];
  /** Keys that will stop signing when the new ones activate, with the time they stop being published. */
  retiring: StoredKeyInfo[];
  /** Keys past their retire time, removed from storage. */
  dropped: string[];
}

/**
 * Stages a new RS256 + ES256 pair: published at once, signing after `activationDelaySeconds`; every key that has no
 * retire time yet gets one (the new keys' activation + `retireAfterSeconds`); retired keys are dropped. Running
 * servers follow within keys.refreshMs. Safe against a concurrent rotation (compare-and-swap on the stored value).
 */
export async function rotateSigningKeys(
  sequelize: Sequelize,
  options: { activationDelaySeconds: number; retireAfterSeconds: number; clock: Clock },
): Promise<RotationResult> {
  if ((await getSecret(sequelize, 'jwks')) === null) {
    // Nothing to rotate yet: the first keys are generated (as a first start would) and sign at once.
    const first = await readStoredKeys(sequelize);
    return { added: keyStages(first, options.clock.now()), retiring: [], dropped: [] };
  }
  for (;;) {
    const raw = (await getSecret(sequelize, 'jwks'))!;
    const stored = JSON.parse(raw) as StoredJwks;
    const now = options.clock.now();
    const stages = new Map(keyStages(stored, now).map((info) => [info.kid, info]));
    const kept = stored.keys.filter((key) => stages.get(String(key.kid))!.status !== 'retired');
    const dropped = stored.keys.filter((key) => !kept.includes(key)).map((key) => String(key.kid));
    const activateAt = Math.ceil(now.getTime() / 1000 + options.activationDelaySeconds);
    const retireAt = activateAt + Math.ceil(options.retireAfterSeconds);
    const fresh = await generateSigningKeys();
    const next: StoredJwks = {
      keys: [...fresh.keys, ...kept],
      activateAt: {
        ...Object.fromEntries(Object.entries(stored.activateAt ?? {}).filter(([kid]) => !dropped.includes(kid))),
        ...Object.fromEntries(fresh.keys.map((key) => [String(key.kid), activateAt])),
      },
      retireAfter: {
        ...Object.fromEntries(Object.entries(stored.retireAfter ?? {}).filter(([kid]) => !dropped.includes(kid))),
        ...Object.fromEntries(
          kept
            .filter((key) => stored.retireAfter?.[String(key.kid)] === undefined)
            .map((key) => [String(key.kid), retireAt]),
        ),
      },
    };
    if (!(await replaceSecret(sequelize, 'jwks', raw, JSON.stringify(next)))) continue; // rotated meanwhile: again
    const after = keyStages(next, now);
    return {
      added: after.filter((info) => fresh.keys.some((key) => key.kid === info.kid)),
      retiring: after.filter(
        (info) => kept.some((key) => key.kid === info.kid) && info.retireAfter?.getTime() === retireAt * 1000,
      ),
      dropped,
    };
  }
}

/** The public summary that may appear in logs. */
export function describeKeys(jwks: PrivateJwks): { kid: unknown; alg: unknown }[] {
  return jwks.keys.map((key) => ({ kid: key.kid, alg: key.alg }));
}
