/**
 * Test databases: every test file gets its own, so concurrent runs never collide.
 * PostgreSQL and MariaDB databases are created with a random name and dropped by `drop()`. `mysql` is a database on the
 * local MariaDB server reached through a `mysql://` URL: the mysql2 driver, speaking the MySQL protocol.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sequelize } from 'sequelize';

export type TestDialect = 'sqlite-memory' | 'sqlite-file' | 'postgres' | 'mariadb' | 'mysql';
export const ALL_DIALECTS: TestDialect[] = ['sqlite-memory', 'sqlite-file', 'postgres', 'mariadb', 'mysql'];

export const POSTGRES_ADMIN_URL = process.env.GATEHOUSE_TEST_POSTGRES ?? 'postgres://root@127.0.0.1:5432/postgres';
export const MARIADB_ADMIN_URL = process.env.GATEHOUSE_TEST_MARIADB ?? 'mariadb://root@127.0.0.1:3306/test';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

function uniqueName(): string {
  return `gh_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

async function admin(url: string, sql: string): Promise<void> {
  const parsed = new URL(url);
  const dialect = parsed.protocol.startsWith('postgres') ? 'postgres' : 'mariadb';
  const sequelize = new Sequelize({
    dialect,
    host: parsed.hostname,
    port: Number(parsed.port),
    username: decodeURIComponent(parsed.username),
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database: parsed.pathname.slice(1),
    logging: false,
    // A busy machine (several suites at once) may take more than the mariadb driver's default second to connect.
    dialectOptions: dialect === 'mariadb' ? { connectTimeout: 15_000 } : { connectionTimeoutMillis: 15_000 },
  });
  try {
    await sequelize.query(sql);
  } finally {
    await sequelize.close();
  }
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  switch (dialect) {
    case 'sqlite-memory':
      return { url: 'sqlite::memory:', drop: async () => undefined };
    case 'sqlite-file': {
      const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
      return {
        url: `sqlite:${join(dir, 'gatehouse.sqlite')}`,
        drop: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    case 'postgres': {
      const name = uniqueName();
      await admin(POSTGRES_ADMIN_URL, `CREATE DATABASE "${name}"`);
      return {
        url: withDatabase(POSTGRES_ADMIN_URL, name),
        drop: () => admin(POSTGRES_ADMIN_URL, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      };
    }
    case 'mariadb':
    case 'mysql': {
      const name = uniqueName();
      await admin(MARIADB_ADMIN_URL, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      const url = withDatabase(MARIADB_ADMIN_URL, name);
      return {
        url: dialect === 'mysql' ? url.replace(/^mariadb:/, 'mysql:') : url,
        drop: () => admin(MARIADB_ADMIN_URL, `DROP DATABASE IF EXISTS \`${name}\``),
      };
    }
  }
}
