/**
 * Opens the Gatehouse database from a database URL.
 *
 * Supported URLs: `sqlite:./relative/file.sqlite`, `sqlite:/absolute/file.sqlite`, `sqlite::memory:`,
 * `postgres://user:pass@host:5432/db` (or `postgresql://`), `mysql://...` (the mysql2 driver: MySQL, or MariaDB through
 * its MySQL protocol) and `mariadb://...` (the mariadb driver).
 * Sequelize is always built from options (never from the URL string) so Node prints no DEP0170 warning, and the
 * password never reaches a log line.
 *
 * Bounded waits (`timeoutMs`, from `database.timeoutMs`): a database that accepts connections and never answers (a
 * partition, a stopped VM, a full queue) must not hold a request for longer than that. Each driver gets its own
 * options, all from the one value:
 * - PostgreSQL: `connectionTimeoutMillis` (connect), `statement_timeout` (the server cancels a slow statement; inside
 *   a transaction that aborts it, so nothing is half-written) and `query_timeout` (the client stops waiting for a
 *   silent server; that connection is then marked invalid, so the pool drops it instead of queueing behind it).
 * - MariaDB driver: `connectTimeout`, `queryTimeout` (server side) and `socketTimeout` (a connection silent for that
 *   long is closed, its query failing).
 * - MySQL driver (mysql2): `connectTimeout`, and each query's `timeout`; a connection whose query timed out is closed.
 * - Every network dialect: the pool's `acquire` (waiting for a free connection).
 * - SQLite: the busy timeout (waiting for another process's write lock) and its retries fit in the bound, and so does
 *   the wait for a turn in the gateway's write queue (database.ts).
 * Without `timeoutMs` only connecting is bounded (by the default bound); with `boundStatements: false` (migrations, whose
 * statements and lock waits may take long) only connecting.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Sequelize, type Options } from 'sequelize';
import { defaults } from '../../config/defaults.js';
import { Database } from './database.js';
import { SQLITE_BUSY_RETRY, sqliteDriver } from './sqlite-driver.js';
import { loadDriver } from './drivers.js';

export type Dialect = 'sqlite' | 'postgres' | 'mysql' | 'mariadb';

export interface DatabaseOptions {
  url: string;
  /**
   * The longest wait for the database (connect, pool acquire, each statement), in ms. Unset: connecting is bounded by
   * database.timeoutMs's default, the rest is not (tests, tools).
   */
  timeoutMs?: number;
  /**
   * False: `timeoutMs` bounds connecting only, not statements nor the pool (migrations: an index build or another
   * instance's migration lock may take longer).
   */
  boundStatements?: boolean;
  /** SQLite only: how long one attempt waits for a lock before SQLITE_BUSY, in ms (default: derived from timeoutMs). */
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

/** SQLite's retry pauses in all (retry-as-promised's shape, sqlite-driver.ts): 100 ms, then 1.1 times longer each time. */
const SQLITE_BACKOFF_MS = Array.from(
  { length: SQLITE_BUSY_RETRY.attempts - 1 },
  (_, i) => SQLITE_BUSY_RETRY.backoffBase * SQLITE_BUSY_RETRY.backoffExponent ** i,
).reduce((sum, ms) => sum + ms, 0);

/**
 * The busy timeout of one SQLite attempt: as given, or the share of `timeoutMs` (default: database.timeoutMs) that lets
 * every attempt and the pauses between them fit in it (2,500 ms: 407 ms per attempt).
 */
export function sqliteBusyTimeout(options: Pick<DatabaseOptions, 'timeoutMs' | 'sqliteBusyTimeoutMs'>): number {
  if (options.sqliteBusyTimeoutMs !== undefined) return options.sqliteBusyTimeoutMs;
  const timeoutMs = options.timeoutMs ?? defaults.database.timeoutMs;
  return Math.max(10, Math.floor((timeoutMs - SQLITE_BACKOFF_MS) / SQLITE_BUSY_RETRY.attempts));
}

/** Parses a database URL into Sequelize options. Throws DatabaseUrlError naming what is wrong (never the password). */
export function sequelizeOptionsFromUrl(url: string, options: Omit<DatabaseOptions, 'url'> = {}): Options {
  const logging = options.logSql ? (sql: string) => options.logSql!(sql) : false;
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length);
    const storage = rest === ':memory:' || rest === '' ? ':memory:' : rest.replace(/^\/\/(?=\/)/, '');
    // Every connection (the shared one and each transaction's) waits this long for a lock (sqlite-driver.ts).
    const dialectModule = sqliteDriver(Math.trunc(sqliteBusyTimeout(options)));
    // SQLITE_BUSY after the busy timeout (another process holds the write lock) is retried a few times: by the gateway
    // for its statements (database.ts), by Sequelize with the same budget for the rest (the migrations).
    const { attempts, backoffBase, backoffExponent } = SQLITE_BUSY_RETRY;
    return {
      dialect: 'sqlite',
      dialectModule,
      storage,
      logging,
      pool: { max: 1, min: 0, idle: 60_000 },
      retry: { match: [/SQLITE_BUSY/], max: attempts, backoffBase, backoffExponent },
    };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseUrlError(`database.url: not a valid URL (expected sqlite:, postgres://, mysql:// or mariadb://)`);
  }
  const protocol = parsed.protocol.replace(/:$/, '');
  const dialect: Dialect | undefined =
    protocol === 'postgres' || protocol === 'postgresql'
      ? 'postgres'
      : protocol === 'mysql'
        ? 'mysql'
        : protocol === 'mariadb'
          ? 'mariadb'
          : undefined;
  if (!dialect) {
    throw new DatabaseUrlError(
      `database.url: unsupported scheme "${protocol}:" (expected sqlite:, postgres://, mysql:// or mariadb://)`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) {
    throw new DatabaseUrlError(`database.url: the ${dialect} URL names no database (add /name after the host)`);
  }
  const ssl = parsed.searchParams.get('ssl') ?? parsed.searchParams.get('sslmode');
  // Without a bound, connecting is still bounded (by the default one): the drivers' own defaults range from one second
  // (mariadb, too short on a busy machine) to never (pg).
  const timeoutMs = options.timeoutMs ?? defaults.database.timeoutMs;
  const boundStatements = options.timeoutMs !== undefined && options.boundStatements !== false;
  const dialectOptions = {
    ...(ssl && ssl !== 'disable' && ssl !== 'false' ? { ssl: { rejectUnauthorized: ssl !== 'no-verify' } } : {}),
    ...driverTimeouts(dialect, timeoutMs, boundStatements),
  };
  return {
    dialect,
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : undefined,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database,
    logging,
    pool: {
      max: options.poolMax ?? defaults.database.poolMax,
      min: 0,
      // The MariaDB driver closes a connection silent for socketTimeout: the pool lets idle ones go before that.
      idle: dialect === 'mariadb' && boundStatements ? Math.min(10_000, timeoutMs) : 10_000,
      acquire: boundStatements ? timeoutMs : 30_000,
    },
    dialectOptions,
  };
}

/** Each driver's own timeout options, all from one bound (see the top of this file). */
function driverTimeouts(
  dialect: Exclude<Dialect, 'sqlite'>,
  timeoutMs: number,
  statements: boolean,
): Record<string, number> {
  if (!statements)
    return dialect === 'postgres' ? { connectionTimeoutMillis: timeoutMs } : { connectTimeout: timeoutMs };
  switch (dialect) {
    case 'postgres':
      return { connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs, query_timeout: timeoutMs };
    case 'mariadb':
      // queryTimeout is enforced by the server (max_statement_time); socketTimeout is the client's own.
      return { connectTimeout: timeoutMs, queryTimeout: timeoutMs, socketTimeout: timeoutMs };
    case 'mysql':
      // mysql2 has no connection-wide query timeout: each query gets one (boundQueries below).
      return { connectTimeout: timeoutMs };
  }
}

/**
 * What a connection does when a statement has waited `timeoutMs`, for the drivers whose own timeout leaves the
 * connection busy with the unanswered statement (every later query would queue behind it):
 * - pg: `query_timeout` rejects the query but keeps the connection: it is marked invalid (Sequelize does the same for
 *   its own queries; this also covers the statements of the gateway's fast path, prepared-path.ts, on pooled clients),
 *   so the pool destroys it rather than handing it out again.
 * - mysql2: every query gets `timeout`; a connection whose query timed out is destroyed.
 */
function boundQueries(sequelize: Sequelize, dialect: Dialect, timeoutMs: number): void {
  if (dialect === 'postgres') {
    sequelize.addHook('afterConnect', (connection) => {
      const client = connection as { query: (...args: unknown[]) => unknown; _invalid?: boolean };
      const query = client.query.bind(client);
      client.query = (...args: unknown[]) => {
        const result = query(...args);
        if (result instanceof Promise) {
          result.catch((error: unknown) => {
            if ((error as Error)?.message === 'Query read timeout') client._invalid = true;
          });
        }
        return result;
      };
    });
  } else if (dialect === 'mysql') {
    sequelize.addHook('afterConnect', (connection) => {
      const client = connection as Record<'query' | 'execute', (...args: unknown[]) => unknown> & { destroy(): void };
      for (const method of ['query', 'execute'] as const) {
        const original = client[method].bind(client);
        client[method] = (sql: unknown, ...rest: unknown[]) => {
          const options = typeof sql === 'string' ? { sql } : (sql as object);
          const callback = rest.findIndex((arg) => typeof arg === 'function');
          if (callback >= 0) {
            const done = rest[callback] as (error: unknown, ...results: unknown[]) => void;
            rest[callback] = (error: unknown, ...results: unknown[]) => {
              if ((error as { code?: string } | null)?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') client.destroy();
              done(error, ...results);
            };
          }
          return original({ timeout: timeoutMs, ...options }, ...rest);
        };
      }
    });
  }
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
  const sequelize = new Sequelize({
    ...sequelizeOptions,
    dialectModule: sequelizeOptions.dialectModule ?? loadDriver(sequelizeOptions.dialect as Dialect),
  });
  if (options.timeoutMs !== undefined && options.boundStatements !== false) {
    boundQueries(sequelize, sequelizeOptions.dialect as Dialect, options.timeoutMs);
    // SQLite: a write waits for its turn in the gateway's queue at most this long.
    if (sequelizeOptions.dialect === 'sqlite') Database.of(sequelize).boundWriteQueue(options.timeoutMs);
  }
  try {
    await sequelize.authenticate({ logging: false });
    if (sequelizeOptions.dialect === 'sqlite' && sequelizeOptions.storage !== ':memory:') {
      await sequelize.query('PRAGMA journal_mode = WAL');
      await sequelize.query('PRAGMA synchronous = NORMAL');
    }
  } catch (error) {
    await sequelize.close().catch(() => undefined);
    throw new DatabaseUrlError(
      `database: cannot connect to the ${sequelizeOptions.dialect} database: ${describe(error)}`,
    );
  }
  return sequelize;
}

/**
 * Whether the database answers a trivial query within `timeoutMs` (readiness). Resolves to true, or rejects with the
 * driver's error or a timeout; a query still running when the bound passes is left to the database bound.
 */
export async function pingDatabase(sequelize: Sequelize, timeoutMs: number): Promise<true> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DatabaseTimeoutError(`no answer from the database within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    // Through the gateway: a typed SELECT (a raw query on the MariaDB driver fails in Sequelize 6, which deletes the
    // driver's read-only `meta`).
    await Promise.race([Database.of(sequelize).select('SELECT 1 AS ok'), timedOut]);
    return true;
  } finally {
    clearTimeout(timer);
  }
}

/** A wait for the database that passed its bound (counted as "unavailable" by errors.ts). */
export class DatabaseTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseTimeoutError';
  }
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\/\/[^@/\s]*@/g, '//***@');
}
