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
import { QueryTypes } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import { dialectOf } from './connection.js';

export type Migration = (params: { context: QueryInterface }) => Promise<void>;

const MIGRATIONS_TABLE = 'gatehouse_migrations';
const LOCK_NAME = 'gatehouse_migrations';
const LOCK_KEY = 7_402_110_331; // pg_advisory_lock key (any constant bigint unique to Gatehouse)

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

/** Applies every pending migration under a cross-instance lock; resolves to the names applied. */
export async function migrate(sequelize: Sequelize): Promise<string[]> {
  return withMigrationLock(sequelize, async () => {
    const applied = await createMigrator(sequelize).up();
    return applied.map((migration) => migration.name);
  });
}

async function withMigrationLock<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  const dialect = dialectOf(sequelize);
  if (dialect === 'sqlite') return work();
  // A session-level lock must be taken and released on the same connection: hold one for the whole run.
  return sequelize.transaction(async (transaction) => {
    if (dialect === 'postgres') {
      await sequelize.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`, { transaction, type: QueryTypes.SELECT });
    } else {
      await sequelize.query(`SELECT GET_LOCK('${LOCK_NAME}', 120) AS locked`, { transaction, type: QueryTypes.SELECT });
    }
    try {
      return await work();
    } finally {
      if (dialect !== 'postgres') {
        await sequelize.query(`SELECT RELEASE_LOCK('${LOCK_NAME}')`, { transaction, type: QueryTypes.SELECT });
      }
    }
  });
}
