/**
 * The gateway's fast path (`Database.prepared`, database.ts): fixed statements with positional parameters, run through
 * the database drivers on the connections Sequelize already holds. Built only by the gateway, which passes in its
 * SQLite write queue and its activity counter.
 *
 * `sequelize.query` costs several times the CPU of the driver's own call per statement, before the database works: it
 * rewrites the SQL to inline the replacements, formats a stack trace for every SQLite query, and wraps each call in
 * its retry and logging layers. On a token endpoint that is most of the difference to an in-memory store (the figures,
 * from bench/compare.ts profiles: docs/benchmarks.md, "Costs the code is built around"). Every token use runs on this
 * path.
 *
 * - SQLite: Sequelize's shared (non-transaction) connection, so the WAL mode and busy timeout set on it apply;
 *   prepared statements, run one at a time (SqliteStatements). Writes take their turn in the gateway's write queue
 *   first. SQLITE_BUSY after the busy timeout is retried as everywhere in the gateway (retryBusy).
 * - PostgreSQL: a client from Sequelize's pool, released after the statement; each statement is prepared once per
 *   connection (a named pg query).
 * - MariaDB / MySQL: the gateway's own `select` / `write` with positional replacements (not on the benchmarked paths).
 */
import type { Sequelize } from 'sequelize';
import type { ActivityCounter } from './database-activity.js';
import { acquireConnection, releaseConnection, sqlLog } from './sequelize-internals.js';
import { retryBusy, type SqliteConnection, type SqliteStatement, type SqliteStatements } from './sqlite-driver.js';

export interface PreparedStatements {
  /** The positional placeholder for parameter `n` (1-based). */
  param(n: number): string;
  /** The first row, or undefined. */
  get<T>(sql: string, params: readonly unknown[]): Promise<T | undefined>;
  /** Every row (a statement with a small, bounded result). */
  all<T>(sql: string, params: readonly unknown[]): Promise<T[]>;
  /** A write; resolves to the number of rows it changed. */
  run(sql: string, params: readonly unknown[]): Promise<number>;
}

/** What the gateway lends the SQLite fast path. */
export interface SqliteParts {
  statements: SqliteStatements;
  /** Runs a write after every write queued before it in this process (the gateway's write queue). */
  queueWrite<T>(work: () => Promise<T>): Promise<T>;
}

export function sqlitePrepared(
  sequelize: Sequelize,
  activity: ActivityCounter,
  parts: SqliteParts,
): PreparedStatements {
  return logged(sequelize, new SqlitePrepared(sequelize, activity, parts));
}

export function postgresPrepared(sequelize: Sequelize, activity: ActivityCounter): PreparedStatements {
  return logged(sequelize, new PostgresPrepared(sequelize, activity));
}

/** The connection's SQL log (database `logSql`) sees these statements too, as their text (values are not logged). */
function logged(sequelize: Sequelize, prepared: PreparedStatements): PreparedStatements {
  const log = sqlLog(sequelize);
  if (!log) return prepared;
  return {
    param: (n) => prepared.param(n),
    get: (sql, params) => {
      log(`Executing (direct): ${sql}`);
      return prepared.get(sql, params);
    },
    all: (sql, params) => {
      log(`Executing (direct): ${sql}`);
      return prepared.all(sql, params);
    },
    run: (sql, params) => {
      log(`Executing (direct): ${sql}`);
      return prepared.run(sql, params);
    },
  };
}

class SqlitePrepared implements PreparedStatements {
  readonly #sequelize: Sequelize;
  readonly #activity: ActivityCounter;
  readonly #parts: SqliteParts;

  constructor(sequelize: Sequelize, activity: ActivityCounter, parts: SqliteParts) {
    this.#sequelize = sequelize;
    this.#activity = activity;
    this.#parts = parts;
  }

  param(): string {
    return '?';
  }

  /** `all` (one row at most, LIMIT 1), not `get`: a reused statement must run to its end to leave no read open. */
  async get<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    return retryBusy(() =>
      this.#onStatement(
        sql,
        params,
        (statement) =>
          new Promise<T[]>((resolve, reject) =>
            statement.all([...params], (error, rows) => (error ? reject(error) : resolve(rows as T[]))),
          ),
      ),
    );
  }

  run(sql: string, params: readonly unknown[]): Promise<number> {
    return this.#parts.queueWrite(() =>
      retryBusy(() =>
        this.#onStatement(
          sql,
          params,
          (statement) =>
            new Promise<number>((resolve, reject) =>
              statement.run([...params], function (error) {
                if (error) reject(error);
                else resolve(this.changes);
              }),
            ),
        ),
      ),
    );
  }

  /** Runs `step` on the shared connection's statement for `sql`, in its turn; counted as it starts. */
  async #onStatement<T>(
    sql: string,
    params: readonly unknown[],
    step: (statement: SqliteStatement) => Promise<T>,
  ): Promise<T> {
    const connection = await acquireConnection<SqliteConnection>(this.#sequelize, 'write');
    return this.#parts.statements.run(connection, sql, (statement) => {
      this.#activity.record(sql, false, params);
      return step(statement);
    });
  }
}

interface PgClient {
  query(config: {
    name: string;
    text: string;
    values: unknown[];
  }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** One name per statement text for the whole process: a pooled connection keeps what it prepared under a name. */
const PREPARED_NAMES = new Map<string, string>();

class PostgresPrepared implements PreparedStatements {
  readonly #sequelize: Sequelize;
  readonly #activity: ActivityCounter;

  constructor(sequelize: Sequelize, activity: ActivityCounter) {
    this.#sequelize = sequelize;
    this.#activity = activity;
  }

  param(n: number): string {
    return `$${n}`;
  }

  async get<T>(sql: string, params: readonly unknown[]): Promise<T | undefined> {
    return (await this.#query(sql, params)).rows[0] as T | undefined;
  }

  async all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    return (await this.#query(sql, params)).rows as T[];
  }

  async run(sql: string, params: readonly unknown[]): Promise<number> {
    return (await this.#query(sql, params)).rowCount ?? 0;
  }

  async #query(sql: string, params: readonly unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }> {
    let name = PREPARED_NAMES.get(sql);
    if (!name) {
      name = `gatehouse_direct_${PREPARED_NAMES.size + 1}`;
      PREPARED_NAMES.set(sql, name);
    }
    const client = await acquireConnection<PgClient>(this.#sequelize, 'write');
    try {
      this.#activity.record(sql, false, params);
      return await client.query({ name, text: sql, values: [...params] });
    } finally {
      releaseConnection(this.#sequelize, client);
    }
  }
}
