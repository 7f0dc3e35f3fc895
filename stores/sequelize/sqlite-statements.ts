/**
 * The operational adapter's statements on Sequelize's shared SQLite connection (used by direct-sql.ts).
 *
 * - Prepared once per connection and reused: `db.run(sql)` prepares, runs and finalizes a new statement each time,
 *   one more trip through libuv's pool (client_credentials on SQLite: 0.68 → 0.46 ms of server CPU per grant).
 * - One at a time per Sequelize instance, queued here: a statement waiting in the pool holds one of its four threads,
 *   even while it only waits for the connection's mutex. Several at once could take every thread while the one ahead
 *   of them waits for the write lock of a session-store transaction, which then finds no thread to commit on, and
 *   everything stalls for the busy timeout (scrypt, file access and DNS too). SQLite runs one statement at a time on a
 *   connection anyway. Sequelize queues its own statements on this connection the same way (serialize mode).
 * - Finalized before the Sequelize instance closes its connections (sqlite3 refuses to close a connection with
 *   unfinalized statements; Sequelize has no hook for that on SQLite, so `close` is wrapped): closing waits for the
 *   statement running, and refuses the ones that would start after it (an unavailable database, a 503).
 */
import type { Sequelize } from 'sequelize';
import { SerialQueue } from './sqlite-writes.js';

export interface SqliteStatement {
  all(params: unknown[], callback: (error: Error | null, rows: unknown[]) => void): void;
  run(params: unknown[], callback: (error: Error | null) => void): void;
  finalize(callback: () => void): void;
}

export interface SqliteDatabase {
  prepare(sql: string, callback: (error: Error | null) => void): SqliteStatement;
}

/** What a statement meets once its Sequelize instance is closing (matched as "unavailable" by errors.ts). */
export class SqliteClosingError extends Error {
  constructor() {
    super('the SQLite connection is closed');
    this.name = 'SqliteClosingError';
  }
}

export class SqliteStatements {
  readonly #byConnection = new Map<SqliteDatabase, Map<string, Promise<SqliteStatement>>>();
  readonly #queue = new SerialQueue();
  #closing = false;

  constructor(sequelize: Sequelize) {
    const close = sequelize.close.bind(sequelize);
    sequelize.close = async () => {
      this.#closing = true;
      await this.#queue.idle();
      await this.#finalize();
      return close();
    };
  }

  /** Runs `step` with this connection's statement for `sql`, after every statement queued before it. */
  run<T>(db: SqliteDatabase, sql: string, step: (statement: SqliteStatement) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (this.#closing) throw new SqliteClosingError();
      return step(await this.#statement(db, sql));
    });
  }

  /** Prepared on first use; a failed prepare (a missing table) is not kept. */
  #statement(db: SqliteDatabase, sql: string): Promise<SqliteStatement> {
    let statements = this.#byConnection.get(db);
    if (!statements) this.#byConnection.set(db, (statements = new Map()));
    let statement = statements.get(sql);
    if (!statement) {
      const preparing = new Promise<SqliteStatement>((resolve, reject) => {
        const prepared = db.prepare(sql, (error) => (error ? reject(error) : resolve(prepared)));
      });
      statements.set(sql, (statement = preparing));
      const byText = statements;
      preparing.catch(() => {
        if (byText.get(sql) === preparing) byText.delete(sql);
      });
    }
    return statement;
  }

  async #finalize(): Promise<void> {
    const pending = [...this.#byConnection.values()].flatMap((byText) => [...byText.values()]);
    this.#byConnection.clear();
    const statements = (await Promise.allSettled(pending)).flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    await Promise.all(statements.map((statement) => new Promise<void>((resolve) => statement.finalize(() => resolve()))));
  }
}

const instances = new WeakMap<Sequelize, SqliteStatements>();

/** The statements of this Sequelize instance's shared SQLite connection. */
export function sqliteStatements(sequelize: Sequelize): SqliteStatements {
  let statements = instances.get(sequelize);
  if (!statements) instances.set(sequelize, (statements = new SqliteStatements(sequelize)));
  return statements;
}
