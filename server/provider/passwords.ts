/**
 * Password hashing with scrypt (memory-hard, built into Node), stored as PHC strings:
 *   $scrypt$ln=15,r=8,p=1$<salt, base64>$<hash, base64>
 * Verification is constant-time, and an unknown user is checked against a dummy hash of the same cost, so a wrong
 * password and an unknown user take similar time.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

const KEY_LENGTH = 32;
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const N = 2 ** params.log2N;
  const maxmem = 256 * N * params.r * params.p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, { N, r: params.r, p: params.p, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, params: ScryptParams): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, params, KEY_LENGTH);
  return `$scrypt$ln=${params.log2N},r=${params.r},p=${params.p}$${salt.toString('base64').replace(/=+$/, '')}$${hash
    .toString('base64')
    .replace(/=+$/, '')}`;
}

export function parsePasswordHash(phc: string): (ScryptParams & { salt: Buffer; hash: Buffer }) | null {
  const match = PHC.exec(phc);
  if (!match) return null;
  return {
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
  if (!parsed || parsed.hash.length < 16) return false;
  const candidate = await derive(password, parsed.salt, parsed, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

/** A hash of a random password at the given cost, used to spend the same time on unknown users. */
export function createDummyHash(params: ScryptParams): Promise<string> {
  return hashPassword(randomBytes(16).toString('hex'), params);
}

/** True when the stored hash was made with other parameters than the configured ones (re-hash on next login). */
export function needsRehash(phc: string, params: ScryptParams): boolean {
  const parsed = parsePasswordHash(phc);
  return !parsed || parsed.log2N !== params.log2N || parsed.r !== params.r || parsed.p !== params.p;
}
