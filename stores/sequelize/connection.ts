/**
 * Opens the Gatehouse database from a database URL.
 *
 * Supported URLs: `sqlite:./relative/file.sqlite`, `sqlite:/absolute/file.sqlite`, `sqlite::memory:`,
 * `postgres://user:pass@host:5432/db` (or `postgresql://`), `mysql://...` and `mariadb://...`.
 * Sequelize is always built from options (never from the URL string) so Node prints no DEP0170 warning, and the
 * password never reaches a log line.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Sequelize, type Options } from 'sequelize';
import { defaults } from '../../config/defaults.js';
import { SQLITE_BUSY_RETRY, sqliteDriver } from './sqlite-driver.js';
import { loadDriver } from './drivers.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql' | 'mariadb';

export interface DatabaseOptions {
  url: string;
  /** SQLite only: how long a writer waits for a lock before SQLITE_BUSY, in ms. */
  sqliteBusyTimeoutMs?: number;
  /** Connection pool size for PostgreSQL / MariaDB / MySQL. */
  poolMax?: number;
  /** Log every SQL statement through this function (debug). */
  logSql?: (sql: string) => void;
}

export class DatabaseUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUrlError';
  }
}

/** Parses a database URL into Sequelize options. Throws DatabaseUrlError naming what is wrong (never the password). */
export function sequelizeOptionsFromUrl(url: string, options: Omit<DatabaseOptions, 'url'> = {}): Options {
  const logging = options.logSql ? (sql: string) => options.logSql!(sql) : false;
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length);
    const storage = rest === ':memory:' || rest === '' ? ':memory:' : rest.replace(/^\/\/(?=\/)/, '');
    // Every connection (the shared one and each transaction's) waits this long for a lock (sqlite-driver.ts).
    const dialectModule = sqliteDriver(Math.trunc(options.sqliteBusyTimeoutMs ?? defaults.database.sqliteBusyTimeoutMs));
    // SQLITE_BUSY after the busy timeout (another process holds the write lock) is retried a few times: by the gateway
    // for its statements (database.ts), by Sequelize with the same budget for the rest (the migrations).
    const { attempts, backoffBase, backoffExponent } = SQLITE_BUSY_RETRY;
    return { dialect: 'sqlite', dialectModule, storage, logging, pool: { max: 1, min: 0, idle: 60_000 }, retry: { match: [/SQLITE_BUSY/], max: attempts, backoffBase, backoffExponent } };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseUrlError(`database.url: not a valid URL (expected sqlite:, postgres://, mysql:// or mariadb://)`);
  }
  const protocol = parsed.protocol.replace(/:$/, '');
  const dialect: Dialect | undefined =
    protocol === 'postgres' || protocol === 'postgresql' ? 'postgres'
      : protocol === 'mysql' ? 'mysql'
        : protocol === 'mariadb' ? 'mariadb'
          : undefined;
  if (!dialect) {
    throw new DatabaseUrlError(`database.url: unsupported scheme "${protocol}:" (expected sqlite:, postgres://, mysql:// or mariadb://)`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) {
    throw new DatabaseUrlError(`database.url: the ${dialect} URL names no database (add /name after the host)`);
  }
  const ssl = parsed.searchParams.get('ssl') ?? parsed.searchParams.get('sslmode');
  return {
    dialect,
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : undefined,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database,
    logging,
    pool: { max: options.poolMax ?? defaults.database.poolMax, min: 0, idle: 10_000, acquire: 30_000 },
    dialectOptions: ssl && ssl !== 'disable' && ssl !== 'false' ? { ssl: { rejectUnauthorized: ssl !== 'no-verify' } } : undefined,
  };
}

/** Opens (and for SQLite, tunes) a connection. The caller runs migrations before serving. */
export async function openDatabase(options: DatabaseOptions): Promise<Sequelize> {
  const sequelizeOptions = sequelizeOptionsFromUrl(options.url, options);
  if (sequelizeOptions.dialect === 'sqlite' && sequelizeOptions.storage !== ':memory:') {
    const file = resolve(sequelizeOptions.storage!);
    mkdirSync(dirname(file), { recursive: true });
    sequelizeOptions.storage = file;
  }
  // The server databases' drivers come from Gatehouse's package (a missing optional one is refused by name, see
  // drivers.ts); SQLite's is sqlite-driver.ts's already.
  const sequelize = new Sequelize({ ...sequelizeOptions, dialectModule: sequelizeOptions.dialectModule ?? loadDriver(sequelizeOptions.dialect as Dialect) });
  try {
    await sequelize.authenticate({ logging: false });
    if (sequelizeOptions.dialect === 'sqlite' && sequelizeOptions.storage !== ':memory:') {
      await sequelize.query('PRAGMA journal_mode = WAL');
      await sequelize.query('PRAGMA synchronous = NORMAL');
    }
  } catch (error) {
    await sequelize.close().catch(() => undefined);
    throw new DatabaseUrlError(`database: cannot connect to the ${sequelizeOptions.dialect} database: ${describe(error)}`);
  }
  return sequelize;
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\/\/[^@/\s]*@/g, '//***@');
}
