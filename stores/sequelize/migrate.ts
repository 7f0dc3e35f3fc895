/**
 * Versioned schema migrations (umzug). Applied at start-up and by `npm run migrate`; never `sync()`.
 *
 * Every file in ./migrations named `NNNN-description.ts` exports `up` (and `down`) taking `{ context: queryInterface }`.
 * Simultaneous starts of several instances are safe: on PostgreSQL and MariaDB/MySQL the run holds a database lock.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readdirSync } from 'node:fs';
import type { QueryInterface, Sequelize } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import { openDatabase, type DatabaseOptions } from './connection.js';
import { Database } from './database.js';

export type Migration = (params: { context: QueryInterface }) => Promise<void>;

const MIGRATIONS_TABLE = 'gatehouse_migrations';
/** Held across instances while migrating (PostgreSQL advisory lock key: any constant bigint unique to Gatehouse). */
const MIGRATIONS_LOCK = { name: 'gatehouse_migrations', key: 7_402_110_331 };

const here = dirname(fileURLToPath(import.meta.url));

function migrationFiles(): { name: string; path: string }[] {
  const dir = join(here, 'migrations');
  return readdirSync(dir)
    .filter((file) => /^\d{4}-.*\.(ts|js)$/.test(file) && !file.endsWith('.d.ts'))
    .sort()
    .map((file) => ({ name: file.replace(/\.(ts|js)$/, ''), path: join(dir, file) }));
}

export function createMigrator(sequelize: Sequelize) {
  return new Umzug<QueryInterface>({
    migrations: migrationFiles().map(({ name, path }) => ({
      name,
      up: async (params) => (await import(path)).up(params),
      down: async (params) => (await import(path)).down(params),
    })),
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize, tableName: MIGRATIONS_TABLE }),
    logger: undefined,
  });
}

/**
 * Applies every pending migration under a cross-instance lock (Database.withLock: PostgreSQL, MariaDB/MySQL; on SQLite
 * none beyond SQLite's own); resolves to the names applied. The migrations themselves run through Sequelize's
 * QueryInterface, before anything else of this process uses the database.
 */
export async function migrate(sequelize: Sequelize): Promise<string[]> {
  return Database.of(sequelize).withLock(MIGRATIONS_LOCK, async () => {
    const applied = await createMigrator(sequelize).up();
    return applied.map((migration) => migration.name);
  });
}

/**
 * Opens the database with its bounded waits after applying every pending migration. On PostgreSQL and MariaDB/MySQL the
 * migrations run on a connection of their own whose statements are not bounded by `timeoutMs` (an index build, or
 * waiting for another instance's migration lock, may take longer); SQLite has one connection (an in-memory database
 * exists only in it).
 */
export async function openMigratedDatabase(
  options: DatabaseOptions,
): Promise<{ sequelize: Sequelize; applied: string[] }> {
  if (options.url.startsWith('sqlite:')) {
    const sequelize = await openDatabase(options);
    try {
      return { sequelize, applied: await migrate(sequelize) };
    } catch (error) {
      await sequelize.close().catch(() => undefined);
      throw error;
    }
  }
  const migrator = await openDatabase({ ...options, boundStatements: false });
  let applied: string[];
  try {
    applied = await migrate(migrator);
  } finally {
    await migrator.close();
  }
  return { sequelize: await openDatabase(options), applied };
}
