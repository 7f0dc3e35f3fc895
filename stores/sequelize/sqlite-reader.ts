/**
 * A synchronous read-only connection (Node's `node:sqlite`) beside Sequelize's, for the operational adapter's finds
 * on a SQLite file.
 *
 * Through the asynchronous sqlite3 driver every statement is handed to a libuv pool thread and back; on a find that
 * hand-off costs several times the query (about 60 µs of CPU against 10 µs run in place, bench/compare.ts profiles:
 * the pool threads spent twice as long switching context as running SQLite). A WAL reader never waits for the write
 * lock, so running a point look-up in place holds the event loop for microseconds only. With `query_only` it can
 * never write, and with no busy timeout it never sleeps: the rare SQLITE_BUSY of a reader (WAL recovery) gives
 * `undefined` from `get` and the caller reads through Sequelize's connection instead.
 *
 * Not used for `:memory:` databases (a second connection would be another database) or where `node:sqlite` is not
 * available without a flag (Node before 22.13). Closed with the Sequelize instance.
 */
import type { Sequelize } from 'sequelize';

interface StatementSync {
  get(...params: unknown[]): unknown;
}

interface DatabaseSync {
  exec(sql: string): void;
  prepare(sql: string): StatementSync;
  close(): void;
}

type SqliteModule = { DatabaseSync: new (path: string) => DatabaseSync };

const BUSY_CODES = new Set([5, 6]); // SQLITE_BUSY, SQLITE_LOCKED

/** Marker for "not answered here: read through the other connection". */
export const NOT_READ = Symbol('not read');

export class SqliteReader {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  constructor(module: SqliteModule, file: string) {
    this.#db = new module.DatabaseSync(file);
    this.#db.exec('PRAGMA query_only = 1');
    this.#db.exec('PRAGMA busy_timeout = 0');
  }

  /** The first row (undefined when none), or NOT_READ when the database is busy or this reader is closed. */
  get(sql: string, params: unknown[]): unknown {
    if (this.#closed) return NOT_READ;
    let statement = this.#statements.get(sql);
    if (!statement) this.#statements.set(sql, (statement = this.#db.prepare(sql)));
    try {
      return statement.get(...params);
    } catch (error) {
      if (BUSY_CODES.has((error as { errcode?: number }).errcode ?? -1)) return NOT_READ;
      throw error;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

const readers = new WeakMap<Sequelize, SqliteReader | null>();

/** The reader of this Sequelize instance's SQLite file (opened on first use), or null where there is none. */
export function sqliteReader(sequelize: Sequelize): SqliteReader | null {
  const known = readers.get(sequelize);
  if (known !== undefined) return known;
  const storage = (sequelize as unknown as { options: { storage?: string } }).options.storage;
  const module = process.getBuiltinModule?.('node:sqlite') as SqliteModule | undefined;
  const reader = storage && storage !== ':memory:' && module ? new SqliteReader(module, storage) : null;
  readers.set(sequelize, reader);
  if (reader) {
    // Close it with Sequelize's own connections (Sequelize has no hook for that on SQLite).
    const close = sequelize.close.bind(sequelize);
    sequelize.close = async () => {
      reader.close();
      return close();
    };
  }
  return reader;
}
