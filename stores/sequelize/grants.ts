/** Look-ups over the provider's Grant rows (consents) in the operational store, for revocation by subject. */
import type { Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { Database } from './database.js';
import { requestMemo } from './request-memo.js';

/** Every live grant of an account, with its client. */
export async function grantsOfAccount(
  sequelize: Sequelize,
  clock: Clock,
  accountId: string,
): Promise<{ grantId: string; clientId: string }[]> {
  const rows = await Database.of(sequelize).select<{ id: string; payload: string }>(
    `SELECT id, payload FROM oidc_payloads WHERE model = 'Grant' AND account_id = :accountId AND (expires_at IS NULL OR expires_at > :now)`,
    { accountId, now: clock.now() },
  );
  return rows.map((row) => ({
    grantId: row.id,
    clientId: String((JSON.parse(row.payload) as { clientId?: string }).clientId ?? ''),
  }));
}

/**
 * The account's most recently written live grant for this client (its remembered consent), or undefined. The row
 * comes along and is kept in the request's memo, so the provider's Grant.find of this id that follows reads nothing.
 */
export async function latestGrantOf(
  sequelize: Sequelize,
  clock: Clock,
  accountId: string,
  clientId: string,
): Promise<string | undefined> {
  const db = Database.of(sequelize);
  const memo = requestMemo(db);
  const generation = memo?.generation;
  const [row] = await db.select<{ id: string; payload: string; consumed_at: Date | string | null }>(
    `SELECT id, payload, consumed_at FROM oidc_payloads
     WHERE model = 'Grant' AND account_id = :accountId AND client_id = :clientId AND (expires_at IS NULL OR expires_at > :now)
     ORDER BY expires_at DESC LIMIT 1`,
    { accountId, clientId, now: clock.now() },
  );
  if (row && memo && memo.generation === generation && !memo.get('Grant', row.id)) {
    memo.set('Grant', row.id, Promise.resolve({ payload: row.payload, consumed_at: row.consumed_at }));
  }
  return row?.id;
}

/** The APIs (resource indicators) each of these grants covers, by grant id; grants that are gone are left out. */
export async function grantResources(
  sequelize: Sequelize,
  clock: Clock,
  grantIds: readonly string[],
): Promise<Map<string, string[]>> {
  const db = Database.of(sequelize);
  const resources = new Map<string, string[]>();
  for (let start = 0; start < grantIds.length; start += 500) {
    const rows = await db.select<{ id: string; payload: string }>(
      `SELECT id, payload FROM oidc_payloads WHERE model = 'Grant' AND id IN (:ids) AND (expires_at IS NULL OR expires_at > :now)`,
      { ids: grantIds.slice(start, start + 500), now: clock.now() },
    );
    for (const row of rows) {
      const granted = (JSON.parse(row.payload) as { resources?: Record<string, unknown> }).resources ?? {};
      resources.set(row.id, Object.keys(granted));
    }
  }
  return resources;
}
