/**
 * Generated secrets (signing keys, cookie keys) in `gatehouse_secrets` (migration 0001).
 *
 * Several instances may start at once against one database: `getOrCreateSecret` lets each propose a value, keeps
 * the first one stored and returns that one everywhere. Values are never logged.
 */
import type { Sequelize } from 'sequelize';
import { systemClock } from '../clock.js';
import { Database } from './database.js';

const MAX_NAME_LENGTH = 64;

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new RangeError(`secret name: expected 1 to ${MAX_NAME_LENGTH} characters`);
  }
}

const INSERT = 'INSERT INTO gatehouse_secrets (name, value, created_at, updated_at) VALUES (:name, :value, :now, :now)';

/** The stored value, or null when there is none. */
export async function getSecret(sequelize: Sequelize, name: string): Promise<string | null> {
  checkName(name);
  const rows = await Database.of(sequelize).select<{ value: string }>(
    'SELECT value FROM gatehouse_secrets WHERE name = :name',
    { name },
  );
  return rows.length > 0 ? rows[0].value : null;
}

/**
 * The stored value; when there is none, stores one from `generate`. Race-free across processes: the insert keeps
 * whichever value arrived first (a duplicate is ignored, any other error propagates), then the stored value is read.
 */
export async function getOrCreateSecret(
  sequelize: Sequelize,
  name: string,
  generate: () => Promise<string>,
): Promise<string> {
  const existing = await getSecret(sequelize, name);
  if (existing !== null) return existing;

  const value = await generate();
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`secret ${name}: the generator returned no string`);
  const db = Database.of(sequelize);
  await db.write(db.insertOrIgnore(INSERT, ['name']), { name, value, now: systemClock.now() });

  const stored = await getSecret(sequelize, name);
  if (stored === null) throw new Error(`secret ${name}: not found right after it was stored`);
  return stored;
}

/** Stores `value` under `name`, replacing any previous value (key rotation). */
export async function setSecret(sequelize: Sequelize, name: string, value: string): Promise<void> {
  checkName(name);
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`secret ${name}: expected a non-empty string`);
  const db = Database.of(sequelize);
  await db.write(db.insertOrUpdate(INSERT, ['name'], ['value', 'updated_at']), { name, value, now: systemClock.now() });
}

/**
 * Replaces the value stored under `name` only if it is still `expected` (compare-and-swap): two processes changing the
 * same secret at once (two `gatehouse keys rotate`) never lose one's change. Resolves to whether it was replaced.
 */
export async function replaceSecret(
  sequelize: Sequelize,
  name: string,
  expected: string,
  value: string,
): Promise<boolean> {
  checkName(name);
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`secret ${name}: expected a non-empty string`);
  const changed = await Database.of(sequelize).write(
    'UPDATE gatehouse_secrets SET value = :value, updated_at = :now WHERE name = :name AND value = :expected',
    {
      name,
      value,
      expected,
      now: systemClock.now(),
    },
  );
  return changed === 1;
}
