/**
 * Plain driver calls for the statements every token use runs (the operational adapter's find, upsert, consume and
 * destroy), on the connections Sequelize already holds.
 *
 * `sequelize.query` costs 150–250 µs of CPU per statement before the database works: it rewrites the SQL to inline
 * the replacements, formats a stack trace for every SQLite query, and wraps each call in its retry and logging
 * layers. A find through the sqlite3 driver itself costs about 45 µs (bench/compare.ts profiles; on a token
 * endpoint that is most of the difference to an in-memory store).
 *
 * - SQLite: Sequelize's shared (non-transaction) sqlite3 connection, so the WAL mode and busy timeout set on it apply;
 *   prepared statements, run one at a time (sqlite-statements.ts). Writes also take their turn in the process's write
 *   queue, with the session store's transactions (sqlite-writes.ts).
 *   SQLITE_BUSY after the busy timeout is retried as Sequelize's own `retry` option says (attempts and backoff).
 * - PostgreSQL: a client from Sequelize's pool, released after the statement; each statement is prepared once per
 *   connection (a named pg query).
 * - MariaDB / MySQL: `sequelize.query` with positional replacements (not on the benchmarked paths).
 *
 * Dates are bound as each dialect stores them through Sequelize (SQLite: `YYYY-MM-DD HH:mm:ss.SSS +00:00` text), so
 * rows written here and rows Sequelize writes or compares elsewhere agree.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryTypes, type Sequelize } from 'sequelize';
import { dialectOf } from './connection.js';
import { sqliteStatements, type SqliteDatabase, type SqliteStatements } from './sqlite-statements.js';
import { queueSqliteWrite } from './sqlite-writes.js';

export interface DirectSql {
  /** The positional placeholder for parameter `n` (1-based). */
  param(n: number): string;
  /** A Date as this dialect binds it. */
  date(value: Date | null): unknown;
  /** The first row, or undefined. */
  get<T>(sql: string, params: unknown[]): Promise<T | undefined>;
  run(sql: string, params: unknown[]): Promise<void>;
}

export function directSql(sequelize: Sequelize): DirectSql {
  const dialect = dialectOf(sequelize);
  if (dialect !== 'sqlite' && dialect !== 'postgres') return new SequelizeFallback(sequelize);
  const direct = dialect === 'sqlite' ? new SqliteDirect(sequelize) : new PostgresDirect(sequelize);
  const log = (sequelize as unknown as { options: { logging?: unknown } }).options.logging;
  return typeof log === 'function' ? logged(direct, log as (sql: string) => void) : direct;
}

/** The connection's SQL log (database `logSql`) sees these statements too, as their text (values are not logged). */
function logged(direct: DirectSql, log: (sql: string) => void): DirectSql {
  return {
    param: (n) => direct.param(n),
    date: (value) => direct.date(value),
    get: (sql, params) => {
      log(`Executing (direct): ${sql}`);
      return direct.get(sql, params);
    },
    run: (sql, params) => {
      log(`Executing (direct): ${sql}`);
      return direct.run(sql, params);
    },
  };
}

interface ConnectionManager<C> {
  getConnection(options: object): Promise<C>;
  releaseConnection(connection: C): void;
}

function connectionManager<C>(sequelize: Sequelize): ConnectionManager<C> {
  return (sequelize as unknown as { connectionManager: ConnectionManager<C> }).connectionManager;
}

/** Sequelize's SQLite DATE(3) text in UTC. */
export function sqliteDate(value: Date): string {
  return `${value.toISOString().slice(0, 23).replace('T', ' ')} +00:00`;
}

class SqliteDirect implements DirectSql {
  readonly #sequelize: Sequelize;
  readonly #attempts: number;
  readonly #backoffBase: number;
  readonly #backoffExponent: number;
  readonly #statements: SqliteStatements;

  constructor(sequelize: Sequelize) {
    this.#sequelize = sequelize;
    this.#statements = sqliteStatements(sequelize);
    const retry = ((sequelize as unknown as { options: object }).options as { retry?: { max?: number; backoffBase?: number; backoffExponent?: number } }).retry ?? {};
    // retry-as-promised's defaults, as Sequelize applies them.
    this.#attempts = Math.max(1, retry.max ?? 1);
    this.#backoffBase = retry.backoffBase ?? 100;
    this.#backoffExponent = retry.backoffExponent ?? 1.1;
  }

  param(): string {
    return '?';
  }

  date(value: Date | null): unknown {
    return value && sqliteDate(value);
  }

  /** `all` (one row at most, LIMIT 1), not `get`: a reused statement must run to its end to leave no read open. */
  get<T>(sql: string, params: unknown[]): Promise<T | undefined> {
    return this.#retrying((db) =>
      this.#statements.run(db, sql, (statement) => new Promise<T | undefined>((resolve, reject) =>
        statement.all(params, (error, rows) => (error ? reject(error) : resolve(rows[0] as T | undefined))),
      )),
    );
  }

  /** Writes wait in the process's SQLite write queue (sqlite-writes.ts) before their turn on the connection. */
  async run(sql: string, params: unknown[]): Promise<void> {
    await queueSqliteWrite(this.#sequelize, () =>
      this.#retrying((db) =>
        this.#statements.run(db, sql, (statement) => new Promise<void>((resolve, reject) => statement.run(params, (error) => (error ? reject(error) : resolve())))),
      ),
    );
  }

  async #retrying<T>(statement: (db: SqliteDatabase) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const db = await connectionManager<SqliteDatabase>(this.#sequelize).getConnection({});
      try {
        return await statement(db);
      } catch (error) {
        if (attempt >= this.#attempts || (error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
        await sleep(this.#backoffBase * this.#backoffExponent ** (attempt - 1));
      }
    }
  }
}

interface PgClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** One name per statement text for the whole process: a pooled connection keeps what it prepared under a name. */
const PREPARED_NAMES = new Map<string, string>();

class PostgresDirect implements DirectSql {
  readonly #sequelize: Sequelize;

  constructor(sequelize: Sequelize) {
    this.#sequelize = sequelize;
  }

  param(n: number): string {
    return `$${n}`;
  }

  date(value: Date | null): unknown {
    return value;
  }

  async get<T>(sql: string, params: unknown[]): Promise<T | undefined> {
    return (await this.#query(sql, params))[0] as T | undefined;
  }

  async run(sql: string, params: unknown[]): Promise<void> {
    await this.#query(sql, params);
  }

  async #query(sql: string, params: unknown[]): Promise<unknown[]> {
    let name = PREPARED_NAMES.get(sql);
    if (!name) PREPARED_NAMES.set(sql, (name = `gatehouse_direct_${PREPARED_NAMES.size + 1}`));
    const manager = connectionManager<PgClient>(this.#sequelize);
    const client = await manager.getConnection({ type: 'write' });
    try {
      return (await client.query({ name, text: sql, values: params })).rows;
    } finally {
      manager.releaseConnection(client);
    }
  }
}

class SequelizeFallback implements DirectSql {
  readonly #sequelize: Sequelize;

  constructor(sequelize: Sequelize) {
    this.#sequelize = sequelize;
  }

  param(): string {
    return '?';
  }

  date(value: Date | null): unknown {
    return value;
  }

  async get<T>(sql: string, params: unknown[]): Promise<T | undefined> {
    const rows = await this.#sequelize.query(sql, { replacements: params, type: QueryTypes.SELECT });
    return rows[0] as T | undefined;
  }

  async run(sql: string, params: unknown[]): Promise<void> {
    await this.#sequelize.query(sql, { replacements: params, type: QueryTypes.RAW });
  }
}
