/**
 * The secret oidc-provider derives DPoP nonces from (`features.dPoP.nonceSecret`). Nonces are not stored, so every
 * instance must derive them from the same 32 bytes and keep them across restarts: generated once and kept in the
 * database (gatehouse_secrets), like the cookie keys. Never logged.
 */
import { randomBytes } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import { getOrCreateSecret } from '../../stores/sequelize/secrets.js';

export async function loadDpopNonceSecret(sequelize: Sequelize): Promise<Buffer> {
  const stored = await getOrCreateSecret(sequelize, 'dpop-nonce-secret', async () =>
    randomBytes(32).toString('base64url'),
  );
  const secret = Buffer.from(stored, 'base64url');
  if (secret.length !== 32)
    throw new Error('the stored DPoP nonce secret (gatehouse_secrets "dpop-nonce-secret") is not 32 bytes');
  return secret;
}
