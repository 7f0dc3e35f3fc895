/**
 * Password hashing, stored as PHC strings. New hashes are argon2id (node:crypto's `argon2`, Node.js ≥ 24.7; the
 * asynchronous call derives on the thread pool since 24.16) at OWASP's first recommendation by default:
 *   $argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
 * scrypt stays available (`passwordHashing.algorithm: scrypt`, OWASP's N = 2^17, r = 8, p = 1 by default) and scrypt
 * hashes made by earlier versions keep verifying:
 *   $scrypt$ln=17,r=8,p=1$<salt, base64>$<hash, base64>
 * A hash made with another algorithm or cost than the configured one is replaced at the next successful sign-in
 * (`needsRehash`). Passwords are NFKC-normalised before hashing (NIST SP 800-63B 5.1.1.2), so the same password typed
 * with composed or decomposed characters matches. Verification is constant-time; an unknown user is checked against a
 * dummy hash made at the configured cost, so a wrong password and an unknown user take the same time.
 */
import * as nodeCrypto from 'node:crypto';
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { passwordHashCostProblem } from '../../config/schema.js';

export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

export interface Argon2idParams {
  /** Memory in KiB (PHC `m`). */
  memory: number;
  /** Passes over the memory (PHC `t`). */
  passes: number;
  /** Lanes (PHC `p`). */
  parallelism: number;
}

/**
 * What to make new hashes with: the configuration's `passwordHashing` (which carries the parameters of both
 * algorithms and picks one), or the parameters of one algorithm alone (without `algorithm`: scrypt).
 */
export type PasswordHashing = ({ algorithm: 'argon2id' } & Argon2idParams) | ({ algorithm?: 'scrypt' } & ScryptParams);

export type ParsedPasswordHash =
  | ({ algorithm: 'scrypt'; salt: Buffer; hash: Buffer } & ScryptParams)
  | ({ algorithm: 'argon2id'; salt: Buffer; hash: Buffer } & Argon2idParams);

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const B64 = '([A-Za-z0-9+/]+={0,2})';
const SCRYPT_PHC = new RegExp(`^\\$scrypt\\$ln=(\\d{1,2}),r=(\\d{1,3}),p=(\\d{1,3})\\$${B64}\\$${B64}$`);
// Version 19 (0x13) is the only one node:crypto implements, and the only one in use.
const ARGON2ID_PHC = new RegExp(`^\\$argon2id\\$v=19\\$m=(\\d{1,8}),t=(\\d{1,3}),p=(\\d{1,2})\\$${B64}\\$${B64}$`);

const unpadded = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

function deriveScrypt(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const N = 2 ** params.log2N;
  const maxmem = 256 * N * params.r * params.p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, { N, r: params.r, p: params.p, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

function deriveArgon2id(password: string, salt: Buffer, params: Argon2idParams, keyLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Through the namespace, not a named import: on a Node without argon2 a named import fails when the module graph
    // links, before the entry points' version check (server/node-version.ts) can say what is wrong.
    nodeCrypto.argon2(
      'argon2id',
      {
        message: password.normalize('NFKC'),
        nonce: salt,
        parallelism: params.parallelism,
        tagLength: keyLength,
        memory: params.memory,
        passes: params.passes,
      },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** A PHC string of `password` with the given algorithm and cost, and a fresh random salt. */
export async function hashPassword(password: string, hashing: PasswordHashing): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  if (hashing.algorithm === 'argon2id') {
    const hash = await deriveArgon2id(password, salt, hashing, KEY_LENGTH);
    return `$argon2id$v=19$m=${hashing.memory},t=${hashing.passes},p=${hashing.parallelism}$${unpadded(salt)}$${unpadded(hash)}`;
  }
  const hash = await deriveScrypt(password, salt, hashing, KEY_LENGTH);
  return `$scrypt$ln=${hashing.log2N},r=${hashing.r},p=${hashing.p}$${unpadded(salt)}$${unpadded(hash)}`;
}

/** The algorithm, parameters, salt and hash of a PHC string this module can verify, or null. */
export function parsePasswordHash(phc: string): ParsedPasswordHash | null {
  // A cost beyond PASSWORD_HASH_LIMITS is never tried: a hostile or corrupt stored value must not stall the server.
  if (passwordHashCostProblem(phc)) return null;
  const argon = ARGON2ID_PHC.exec(phc);
  if (argon) {
    const params = { memory: Number(argon[1]), passes: Number(argon[2]), parallelism: Number(argon[3]) };
    return {
      algorithm: 'argon2id',
      ...params,
      salt: Buffer.from(argon[4], 'base64'),
      hash: Buffer.from(argon[5], 'base64'),
    };
  }
  const match = SCRYPT_PHC.exec(phc);
  if (!match) return null;
  return {
    algorithm: 'scrypt',
    log2N: Number(match[1]),
    r: Number(match[2]),
    p: Number(match[3]),
    salt: Buffer.from(match[4], 'base64'),
    hash: Buffer.from(match[5], 'base64'),
  };
}

/** True when `password` matches the PHC string. A malformed hash never matches. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const parsed = parsePasswordHash(phc);
  if (!parsed || parsed.hash.length < 16 || parsed.salt.length < 8) return false;
  const candidate =
    parsed.algorithm === 'argon2id'
      ? await deriveArgon2id(password, parsed.salt, parsed, parsed.hash.length)
      : await deriveScrypt(password, parsed.salt, parsed, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

/** A hash of a random password at the given cost, used to spend the same time on unknown users. */
export function createDummyHash(hashing: PasswordHashing): Promise<string> {
  return hashPassword(randomBytes(16).toString('hex'), hashing);
}

/** True when the stored hash was made with another algorithm or cost than the configured ones (re-hash on next login). */
export function needsRehash(phc: string, hashing: PasswordHashing): boolean {
  const parsed = parsePasswordHash(phc);
  if (!parsed) return true;
  if (hashing.algorithm === 'argon2id') {
    return (
      parsed.algorithm !== 'argon2id' ||
      parsed.memory !== hashing.memory ||
      parsed.passes !== hashing.passes ||
      parsed.parallelism !== hashing.parallelism
    );
  }
  return (
    parsed.algorithm !== 'scrypt' || parsed.log2N !== hashing.log2N || parsed.r !== hashing.r || parsed.p !== hashing.p
  );
}

/** The configured algorithm and cost in PHC notation, for log lines and errors (`argon2id m=19456,t=2,p=1`). */
export function describeHashing(hashing: PasswordHashing): string {
  return hashing.algorithm === 'argon2id'
    ? `argon2id m=${hashing.memory},t=${hashing.passes},p=${hashing.parallelism}`
    : `scrypt ln=${hashing.log2N},r=${hashing.r},p=${hashing.p}`;
}
