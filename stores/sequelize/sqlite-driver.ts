/**
 * SQLite pieces of the database gateway (database.ts); apart from connection.ts, which hands the driver to Sequelize,
 * only the gateway imports them.
 *
 * - `sqliteDriver(busyTimeoutMs)`: the sqlite3 module given to Sequelize (its `dialectModule` option), whose
 *   connections get the busy timeout as they open. Sequelize opens a connection of its own for every transaction on a
 *   SQLite file; without this they would wait node-sqlite3's built-in 1 s for a lock instead of
 *   `database.sqliteBusyTimeoutMs`, or need a PRAGMA in every transaction (one more round trip).
 * - `SQLITE_BUSY_RETRY` / `retryBusy`: a statement or transaction that still meets SQLITE_BUSY after the busy timeout
 *   (another process holds the write lock) is tried again, a few times, after a short pause.
 * - `SerialQueue`: the gateway's in-process write queue and its one-statement-at-a-time queue.
 * - `SqliteStatements`: the fast path's prepared statements on the shared connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import sqlite3 from 'sqlite3';

/** Attempts in all, and the pause before attempt n+1: backoffBase × backoffExponent^(n-1) ms (retry-as-promised's shape). */
export const SQLITE_BUSY_RETRY = { attempts: 5, backoffBase: 100, backoffExponent: 1.1 } as const;

/** Whether a failure is SQLite's "database is locked" (also when Sequelize wrapped the driver's error). */
export function isSqliteBusy(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const { code, message, parent, original } = current as {
      code?: unknown;
      message?: unknown;
      parent?: unknown;
      original?: unknown;
    };
    if (code === 'SQLITE_BUSY' || (typeof message === 'string' && message.startsWith('SQLITE_BUSY'))) return true;
    current = parent ?? original;
  }
  return false;
}

/** Runs `attempt`; after SQLITE_BUSY, again (up to SQLITE_BUSY_RETRY.attempts in all). Other failures at once. */
export async function retryBusy<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (n >= SQLITE_BUSY_RETRY.attempts || !isSqliteBusy(error)) throw error;
      await sleep(SQLITE_BUSY_RETRY.backoffBase * SQLITE_BUSY_RETRY.backoffExponent ** (n - 1));
    }
  }
}

/** The sqlite3 module with one change: every connection it opens waits up to `busyTimeoutMs` for a lock. */
export function sqliteDriver(busyTimeoutMs: number): typeof sqlite3 {
  class Database extends sqlite3.Database {
    constructor(filename: string, mode?: number, callback?: (error: Error | null) => void) {
      super(filename, mode, callback);
      // Queued by sqlite3 until the connection is open, ahead of any statement.
      this.configure('busyTimeout', busyTimeoutMs);
    }
  }
  // Everything else (the OPEN_* flags Sequelize reads, Statement, ...) from the module itself.
  return Object.create(sqlite3, { Database: { value: Database, enumerable: true } }) as typeof sqlite3;
}

/** Runs tasks one at a time, in the order given; a failed task does not stop the ones after it. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Settles once every task queued so far has finished. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}

export interface SqliteStatement {
  all(params: unknown[], callback: (error: Error | null, rows: unknown[]) => void): void;
  run(params: unknown[], callback: (this: { changes: number }, error: Error | null) => void): void;
  finalize(callback: () => void): void;
}

export interface SqliteConnection {
  prepare(sql: string, callback: (error: Error | null) => void): SqliteStatement;
}

/** What a statement meets once its database is closing (matched as "unavailable" by errors.ts). */
export class SqliteClosingError extends Error {
  constructor() {
    super('the SQLite connection is closed');
    this.name = 'SqliteClosingError';
  }
}

/**
 * The fast path's statements on Sequelize's shared SQLite connection.
 *
 * - Prepared once per connection and reused: `db.run(sql)` prepares, runs and finalizes a new statement each time,
 *   one more trip through libuv's pool on every token grant (the figure: docs/benchmarks.md).
 * - One at a time: a statement waiting in the pool holds one of its four threads, even while it only waits for the
 *   connection's mutex. Several at once could take every thread while the one ahead of them waits for the write lock
 *   of a transaction, which then finds no thread to commit on, and everything stalls for the busy timeout (scrypt,
 *   file access and DNS too). SQLite runs one statement at a time on a connection anyway; Sequelize queues its own
 *   statements on this connection the same way (serialize mode).
 * - `close()` waits for the statement running, refuses the ones that would start after it (an unavailable database,
 *   a 503), and finalizes every statement (sqlite3 refuses to close a connection with unfinalized statements).
 */
export class SqliteStatements {
  readonly #byConnection = new Map<SqliteConnection, Map<string, Promise<SqliteStatement>>>();
  readonly #queue = new SerialQueue();
  #closing = false;

  /** Runs `step` with this connection's statement for `sql`, after every statement queued before it. */
  run<T>(connection: SqliteConnection, sql: string, step: (statement: SqliteStatement) => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      if (this.#closing) throw new SqliteClosingError();
      return step(await this.#statement(connection, sql));
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#queue.idle();
    const pending = [...this.#byConnection.values()].flatMap((byText) => [...byText.values()]);
    this.#byConnection.clear();
    const statements = (await Promise.allSettled(pending)).flatMap((outcome) =>
      outcome.status === 'fulfilled' ? [outcome.value] : [],
    );
    await Promise.all(
      statements.map((statement) => new Promise<void>((resolve) => statement.finalize(() => resolve()))),
    );
  }

  /** Prepared on first use; a failed prepare (a missing table) is not kept. */
  #statement(connection: SqliteConnection, sql: string): Promise<SqliteStatement> {
    let statements = this.#byConnection.get(connection);
    if (!statements) {
      statements = new Map();
      this.#byConnection.set(connection, statements);
    }
    let statement = statements.get(sql);
    if (!statement) {
      const preparing = new Promise<SqliteStatement>((resolve, reject) => {
        const prepared = connection.prepare(sql, (error) => (error ? reject(error) : resolve(prepared)));
      });
      statement = preparing;
      statements.set(sql, preparing);
      const byText = statements;
      preparing.catch(() => {
        if (byText.get(sql) === preparing) byText.delete(sql);
      });
    }
    return statement;
  }
}
