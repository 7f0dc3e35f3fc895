/**
 * The synchronous reader beside Sequelize's SQLite connection (stores/sequelize/sqlite-reader.ts): real SQLite files,
 * a second real connection holding the write lock.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { ManualClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { createOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { NOT_READ, sqliteReader } from '../stores/sequelize/sqlite-reader.js';

const NOW = Date.UTC(2031, 0, 1);

async function migratedFile(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reader-'));
  const file = join(dir, 'gatehouse.sqlite');
  const sequelize = await openDatabase({ url: `sqlite:${file}` });
  await migrate(sequelize);
  t.teardown(async () => {
    await sequelize.close().catch(() => undefined); // a test may have closed it already
    rmSync(dir, { recursive: true, force: true });
  });
  return { file, sequelize };
}

function exec(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (error) => (error ? reject(error) : resolve())));
}

test('finds on a SQLite file come from the reader, see committed writes at once, and never wait for a held write lock', async (t) => {
  const { file, sequelize } = await migratedFile(t);
  const adapter = new (createOperationalAdapter(sequelize, new ManualClock(NOW)))('AccessToken');
  await adapter.upsert('committed', { jti: 'committed' }, 60);
  t.deepEqual(await adapter.find('committed'), { jti: 'committed' }, 'a write is visible to the next find');
  t.truthy(sqliteReader(sequelize), 'a file database has a reader');

  // Another connection takes the write lock and writes without committing.
  const other = await new Promise<sqlite3.Database>((resolve, reject) => {
    const db: sqlite3.Database = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(db)));
  });
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  await exec(other, `BEGIN IMMEDIATE; INSERT INTO oidc_payloads (model, id, payload, expires_at) VALUES ('AccessToken', 'uncommitted', '{"jti":"uncommitted"}', '2099-01-01 00:00:00.000 +00:00')`);
  const started = performance.now();
  t.deepEqual(await adapter.find('committed'), { jti: 'committed' });
  t.is(await adapter.find('uncommitted'), undefined, 'an uncommitted row is not seen');
  t.true(performance.now() - started < 500, 'the finds did not wait for the lock');
  await exec(other, 'COMMIT');
  t.deepEqual(await adapter.find('uncommitted'), { jti: 'uncommitted' }, 'seen once committed');
});

test('the reader cannot write, and closes with Sequelize', async (t) => {
  const { sequelize } = await migratedFile(t);
  const reader = sqliteReader(sequelize)!;
  t.throws(() => reader.get(`DELETE FROM oidc_payloads`, []), { message: /readonly|query_only/i });
  t.is(reader.get(`SELECT 1 AS one`, []) !== NOT_READ, true);
  await sequelize.close();
  t.is(reader.get(`SELECT 1 AS one`, []), NOT_READ, 'closed with the Sequelize instance');
});

test('an in-memory SQLite database has no reader (another connection would be another database)', async (t) => {
  const sequelize = await openDatabase({ url: 'sqlite::memory:' });
  t.teardown(() => sequelize.close());
  await migrate(sequelize);
  t.is(sqliteReader(sequelize), null);
  const adapter = new (createOperationalAdapter(sequelize, new ManualClock(NOW)))('AccessToken');
  await adapter.upsert('x', { jti: 'x' }, 60);
  t.deepEqual(await adapter.find('x'), { jti: 'x' });
});
