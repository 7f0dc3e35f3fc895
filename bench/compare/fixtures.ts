/**
 * What the servers under comparison share: the bench users, the equivalent clients, one RS256 signing key and the
 * cookie keys. Gatehouse gets them as a config file; the oidc-provider peers as a JSON file of the same values
 * (PeerSettings).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { hashPassword, type PasswordHashing } from '../../server/provider/passwords.js';

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const WEB_CLIENT = { id: 'bench-web', secret: 'bench-web-secret-0123456789' };
export const SERVICE_CLIENT = { id: 'bench-service', secret: 'bench-service-secret-0123456789' };
export const ADMIN_CLIENT = {
  id: 'gatehouse-admin',
  secret: 'bench-admin-secret-0123456789',
  scope: 'gatehouse:admin',
};
export const LOGIN_SCOPE = 'openid profile email';
/** An API whose client-credentials tokens are JWTs (RFC 9068): the same request to Gatehouse (apis[]) and the baseline. */
export const BENCH_API = { identifier: 'https://bench-api.example/', scope: 'bench:read' };
export const OFFLINE_SCOPE = 'openid profile email offline_access';

/**
 * Cheap scrypt for the login flows (the ratio measures the server, not the KDF; the baseline checks the same scrypt
 * hashes) and the production default, argon2id at OWASP's m = 19 MiB, t = 2, p = 1.
 */
export const CHEAP_HASHING: PasswordHashing = { algorithm: 'scrypt', log2N: 10, r: 8, p: 1 };
export const PRODUCTION_HASHING: PasswordHashing = { algorithm: 'argon2id', memory: 19456, passes: 2, parallelism: 1 };

export interface BenchUser {
  subject: string;
  username: string;
  password: string;
  passwordHash: string;
  claims: Record<string, unknown>;
}

export interface SharedFixtures {
  /** `bench`: the login flows (cheap hash); `bench-prod`: logins at the production cost; `bench-w<i>`: one per worker's token chain. */
  users: BenchUser[];
  jwk: Record<string, unknown>;
  cookieKeys: string[];
}

export async function createFixtures(workers: number): Promise<SharedFixtures> {
  const user = async (subject: string, hashing: PasswordHashing): Promise<BenchUser> => {
    const password = `${subject}-password`;
    return {
      subject,
      username: subject,
      password,
      passwordHash: await hashPassword(password, hashing),
      claims: { name: `Bench ${subject}`, email: `${subject}@example.com`, email_verified: true },
    };
  };
  const users = [await user('bench', CHEAP_HASHING), await user('bench-prod', PRODUCTION_HASHING)];
  for (let i = 1; i <= workers; i++) users.push(await user(`bench-w${i}`, CHEAP_HASHING));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const exported = privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: exported.e, kty: exported.kty, n: exported.n }))
    .digest('base64url');
  return {
    users,
    jwk: { ...exported, kid, alg: 'RS256', use: 'sig' },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
}

/** The OAuth clients, as Gatehouse's config file and oidc-provider's `clients` both accept them. */
export function clientMetadata() {
  return [
    {
      client_id: WEB_CLIENT.id,
      client_secret: WEB_CLIENT.secret,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: OFFLINE_SCOPE,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: SERVICE_CLIENT.id,
      client_secret: SERVICE_CLIENT.secret,
      redirect_uris: [],
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ];
}

/** The storage of an oidc-provider peer: its in-memory adapter, or the bench's Redis or Sequelize adapter (bench/compare/peers/). */
export type PeerStorage =
  | { adapter: 'memory' }
  | { adapter: 'redis'; url: string }
  | { adapter: 'sequelize'; url: string };

/** What peer-server.ts reads (BENCH_PEER_SETTINGS, a JSON file). */
export interface PeerSettings {
  storage: PeerStorage;
  issuer: string;
  port: number;
  jwk: Record<string, unknown>;
  cookieKeys: string[];
  users: Omit<BenchUser, 'password'>[];
  clients: ReturnType<typeof clientMetadata>;
}
