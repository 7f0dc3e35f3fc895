/**
 * The database gateway: every statement of the Sequelize stores (operational adapter, session store, directory,
 * sign-in counters, back-channel outbox, secrets, grants, the migrations' lock) goes through the one `Database` of
 * its Sequelize instance (`Database.of(sequelize)`). It owns:
 *
 * - **The dialect differences**: `dialect`, `mysqlFamily` (the one MariaDB/MySQL check), identifier quoting, the
 *   insert-or-update and insert-or-ignore clauses, how a Date is bound (`bindDate`).
 * - **SQLite's one writer at a time**: every write, every transaction and the fast path's writes of this process wait
 *   in one in-process queue, which only the gateway holds. SQLite has a single write lock; writers of one process that
 *   waited for it inside SQLite would each hold one of libuv's four pool threads, and the writer holding the lock
 *   could then find no thread left to commit on (everything stalls until a busy timeout ends). Queued here, they wait
 *   without a thread, and the busy timeout only ever waits for other processes. (Sequelize also runs in-memory
 *   transactions on the one shared connection, where SQLite cannot nest them.) Reads do not queue.
 * - **Busy handling**: every connection waits `database.sqliteBusyTimeoutMs` for a lock (set as it opens,
 *   sqlite-driver.ts); SQLITE_BUSY after that is retried here, a statement by itself or a transaction as a whole
 *   (SQLITE_BUSY_RETRY). Sequelize's own retry is switched off for the gateway's statements, so nothing retries twice.
 *   MariaDB/MySQL transactions that ask for it are run again after a deadlock.
 * - **The prepared fast path** (`prepared`, prepared-path.ts) for the statements every token use runs.
 * - **Counting** what went to the database: statements, commits, round trips (`activity()`, `observe()`).
 *
 * Statements take named replacements (`:name`, through Sequelize) or, on the fast path, positional parameters. A Date
 * value is bound as the dialect stores it; an array expands to a list (`IN (:ids)`).
 */
import {
  QueryTypes,
  Transaction,
  type QueryOptions,
  type Sequelize,
  type TransactionOptions as SequelizeTransactionOptions,
} from 'sequelize';
import type { Dialect } from './connection.js';
import { ActivityCounter, type DatabaseActivity, type StatementListener } from './database-activity.js';
import { postgresPrepared, sqlitePrepared, type PreparedStatements } from './prepared-path.js';
import { beforeClose, querySql } from './sequelize-internals.js';
import { retryBusy, SerialQueue, SqliteStatements } from './sqlite-driver.js';

export type { DatabaseActivity, StatementEvent, StatementListener } from './database-activity.js';
export type { PreparedStatements } from './prepared-path.js';

export type Row = Record<string, unknown>;
/** Named (`:name`) or positional (`?`) replacements. */
export type Replacements = Readonly<Record<string, unknown>> | readonly unknown[];

/** A lock across instances: a PostgreSQL advisory lock key and a MariaDB/MySQL lock name. */
export interface DatabaseLock {
  name: string;
  key: number;
}

export interface TransactionOptions {
  /** Isolation level (default: the database's own). */
  isolation?: 'read committed';
  /** MariaDB/MySQL: run the transaction again after a deadlock or lock wait timeout, up to this many attempts in all. */
  deadlockAttempts?: number;
  /** Called before each such new attempt. */
  onDeadlock?(attempt: number, error: unknown): void;
}

/** The statements of one transaction; they see its uncommitted writes, and commit or roll back with it. */
export interface DatabaseTransaction {
  select<T = Row>(sql: string, replacements?: Replacements): Promise<T[]>;
  /** Resolves to the number of rows changed. */
  write(sql: string, replacements?: Replacements): Promise<number>;
  /** A write whose rows come back (`UPDATE … RETURNING`). */
  writeReturning<T = Row>(sql: string, replacements?: Replacements): Promise<T[]>;
}

/** Sequelize's own retry, off for the gateway's statements: the gateway retries (above). */
const NO_RETRY = { max: 1 } as const;
const MYSQL_DEADLOCK = 1213;
const MYSQL_LOCK_WAIT_TIMEOUT = 1205;

const gateways = new WeakMap<Sequelize, Database>();

export class Database {
  /** The gateway of this Sequelize instance (made on first use; one per instance). */
  static of(sequelize: Sequelize): Database {
    let database = gateways.get(sequelize);
    if (!database) {
      database = new Database(sequelize);
      gateways.set(sequelize, database);
    }
    return database;
  }

  readonly dialect: Dialect;
  /** MariaDB or MySQL: the one place that asks. */
  readonly mysqlFamily: boolean;
  /** Fixed statements with positional parameters (`prepared.param(n)`), through the drivers. */
  readonly prepared: PreparedStatements;
  readonly #sequelize: Sequelize;
  readonly #activity = new ActivityCounter();
  /** SQLite only: the in-process write queue. Never handed out; every writer reaches it through a method below. */
  readonly #writes: SerialQueue | undefined;
  /** SQLite only: how long a writer may wait for its turn (database.timeoutMs; see boundWriteQueue). */
  #writeQueueBound: number | undefined;

  private constructor(sequelize: Sequelize) {
    this.#sequelize = sequelize;
    this.dialect = sequelize.getDialect() as Dialect;
    this.mysqlFamily = this.dialect === 'mysql' || this.dialect === 'mariadb';
    this.#writes = this.dialect === 'sqlite' ? new SerialQueue() : undefined;
    sequelize.addHook('afterQuery', 'gatehouseActivity', (options, query) =>
      this.#activity.record(querySql(query), Boolean(options.transaction)),
    );
    const prepared = this.#preparedPath();
    this.prepared = {
      param: (n) => prepared.param(n),
      get: (sql, params) =>
        prepared.get(
          sql,
          params.map((value) => this.#bindValue(value)),
        ),
      all: (sql, params) =>
        prepared.all(
          sql,
          params.map((value) => this.#bindValue(value)),
        ),
      run: (sql, params) =>
        prepared.run(
          sql,
          params.map((value) => this.#bindValue(value)),
        ),
    };
  }

  #preparedPath(): PreparedStatements {
    if (this.dialect === 'sqlite') {
      const statements = new SqliteStatements();
      beforeClose(this.#sequelize, () => statements.close());
      return sqlitePrepared(this.#sequelize, this.#activity, {
        statements,
        queueWrite: (work) => this.#asWriter(work),
      });
    }
    if (this.dialect === 'postgres') return postgresPrepared(this.#sequelize, this.#activity);
    // MariaDB/MySQL: through Sequelize, with positional replacements.
    return {
      param: () => '?',
      get: async <T>(sql: string, params: readonly unknown[]) => (await this.select<T>(sql, params))[0],
      all: <T>(sql: string, params: readonly unknown[]) => this.select<T>(sql, params),
      run: (sql, params) => this.write(sql, params),
    };
  }

  // ---- dialect differences ----

  /** An identifier quoted for this dialect (for reserved words such as `key`). */
  quote(identifier: string): string {
    return this.mysqlFamily ? `\`${identifier}\`` : `"${identifier}"`;
  }

  /** `insert` that does nothing when a row with the same `conflict` columns exists (as written: quote as needed). */
  insertOrIgnore(insert: string, conflict: readonly string[]): string {
    // MariaDB/MySQL: a no-op update (INSERT IGNORE would also hide truncation and other errors).
    return this.mysqlFamily
      ? `${insert} ON DUPLICATE KEY UPDATE ${conflict[0]} = ${conflict[0]}`
      : `${insert} ON CONFLICT (${conflict.join(', ')}) DO NOTHING`;
  }

  /** `insert` that, when a row with the same `conflict` columns exists, sets its `columns` to the inserted values instead. */
  insertOrUpdate(insert: string, conflict: readonly string[], columns: readonly string[]): string {
    return this.mysqlFamily
      ? `${insert} ON DUPLICATE KEY UPDATE ${columns.map((column) => `${column} = VALUES(${column})`).join(', ')}`
      : `${insert} ON CONFLICT (${conflict.join(', ')}) DO UPDATE SET ${columns.map((column) => `${column} = excluded.${column}`).join(', ')}`;
  }

  /**
   * A Date as this dialect stores it: SQLite `YYYY-MM-DD HH:mm:ss.SSS +00:00` text (what Sequelize writes, so rows
   * written anywhere compare alike); MariaDB/MySQL a UTC DATETIME literal with milliseconds (Sequelize's own drops
   * them); PostgreSQL the Date itself.
   */
  bindDate(value: Date): Date | string {
    if (this.dialect === 'sqlite') return `${value.toISOString().slice(0, 23).replace('T', ' ')} +00:00`;
    if (this.mysqlFamily) return value.toISOString().slice(0, 23).replace('T', ' ');
    return value;
  }

  // ---- statements ----

  async select<T = Row>(sql: string, replacements?: Replacements): Promise<T[]> {
    return this.#retrying(() => this.#query(sql, QueryTypes.SELECT, replacements)) as Promise<T[]>;
  }

  /** A write on its own (it commits by itself); resolves to the number of rows changed. */
  async write(sql: string, replacements?: Replacements): Promise<number> {
    return Number(
      await this.#asWriter(() => this.#retrying(() => this.#query(sql, QueryTypes.BULKDELETE, replacements))),
    );
  }

  /** A write on its own whose rows come back (`UPDATE … RETURNING`). */
  async writeReturning<T = Row>(sql: string, replacements?: Replacements): Promise<T[]> {
    return this.#asWriter(() => this.#retrying(() => this.#query(sql, QueryTypes.SELECT, replacements))) as Promise<
      T[]
    >;
  }

  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws. `work` may run more than
   * once (after SQLITE_BUSY, or a deadlock when asked): keep it to database work. On SQLite it is this process's one
   * writer while it runs, so it must not call the gateway's own (non-transaction) writes, which would wait for it.
   */
  async transaction<T>(
    work: (transaction: DatabaseTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const settings = {
      isolationLevel: options.isolation === 'read committed' ? Transaction.ISOLATION_LEVELS.READ_COMMITTED : undefined,
      // SQLite: take the write lock at the first write (waiting up to the busy timeout there), not at BEGIN: a BEGIN
      // IMMEDIATE that times out leaves Sequelize a failed rollback to report. A read-then-write transaction that
      // another process overtook fails with SQLITE_BUSY and is run again as a whole.
      type: this.dialect === 'sqlite' ? Transaction.TYPES.DEFERRED : undefined,
      // Passed on to BEGIN/COMMIT/ROLLBACK: Sequelize's own retry off, as for every gateway statement.
      retry: NO_RETRY,
    } as SequelizeTransactionOptions;
    const once = () => this.#sequelize.transaction(settings, (transaction) => work(this.#inTransaction(transaction)));
    if (this.#writes) return this.#queued(() => retryBusy(once));
    const attempts = this.mysqlFamily ? Math.max(1, options.deadlockAttempts ?? 1) : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await once();
      } catch (error) {
        if (attempt >= attempts || !isDeadlock(error)) throw error;
        options.onDeadlock?.(attempt, error);
      }
    }
  }

  /**
   * Runs `work` under a lock across instances, held on a connection of its own until `work` has finished: a
   * transaction-scoped advisory lock on PostgreSQL, a named lock on MariaDB/MySQL. On SQLite, whose single write lock
   * already lets one writer in at a time, `work` runs at once (its own transactions queue as usual).
   */
  async withLock<T>(lock: DatabaseLock, work: () => Promise<T>): Promise<T> {
    if (this.dialect === 'sqlite') return work();
    return this.transaction(async (transaction) => {
      if (this.dialect === 'postgres') {
        await transaction.select(`SELECT pg_advisory_xact_lock(${Math.trunc(lock.key)})`);
        return work();
      }
      await transaction.select('SELECT GET_LOCK(:name, 120) AS locked', { name: lock.name });
      try {
        return await work();
      } finally {
        await transaction.select('SELECT RELEASE_LOCK(:name)', { name: lock.name });
      }
    });
  }

  // ---- counting ----

  /** Statements, commits and round trips sent so far through this connection (totals since it opened). */
  activity(): DatabaseActivity {
    return this.#activity.snapshot();
  }

  /** Calls `listener` for every statement sent from now on (tests, debugging); returns the function that stops it. */
  observe(listener: StatementListener): () => void {
    return this.#activity.observe(listener);
  }

  // ---- inside ----

  #inTransaction(transaction: Transaction): DatabaseTransaction {
    return {
      select: async <T>(sql: string, replacements?: Replacements) =>
        (await this.#query(sql, QueryTypes.SELECT, replacements, transaction)) as T[],
      write: async (sql: string, replacements?: Replacements) =>
        Number(await this.#query(sql, QueryTypes.BULKDELETE, replacements, transaction)),
      writeReturning: async <T>(sql: string, replacements?: Replacements) =>
        (await this.#query(sql, QueryTypes.SELECT, replacements, transaction)) as T[],
    };
  }

  /**
   * One statement through Sequelize. SELECT gives the rows; BULKDELETE (for any write) gives the number of rows changed
   * on every dialect.
   */
  #query(
    sql: string,
    type: QueryTypes.SELECT | QueryTypes.BULKDELETE,
    replacements?: Replacements,
    transaction?: Transaction,
  ): Promise<unknown> {
    const options = { type, replacements: this.#bind(replacements), transaction, retry: NO_RETRY };
    return this.#sequelize.query(sql, options as QueryOptions);
  }

  /**
   * SQLite: a writer still waiting for its turn after `timeoutMs` fails as "unavailable" (a 503) and never runs
   * (connection.ts sets it from database.timeoutMs). Without it, writers queued behind one that waits out another
   * process's lock would each wait in turn, the last one many times the bound.
   */
  boundWriteQueue(timeoutMs: number): void {
    this.#writeQueueBound = timeoutMs;
  }

  /** On SQLite, after every write queued before it in this process; elsewhere at once. */
  #asWriter<T>(work: () => Promise<T>): Promise<T> {
    return this.#writes ? this.#queued(work) : work();
  }

  /** A turn in the SQLite write queue, given up after the queue's bound (then `work` never runs). */
  #queued<T>(work: () => Promise<T>): Promise<T> {
    const bound = this.#writeQueueBound;
    if (bound === undefined) return this.#writes!.run(work);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new WriteQueueTimeoutError(bound));
      }, bound);
    });
    const turn = this.#writes!.run(async () => {
      clearTimeout(timer);
      if (timedOut) return undefined as T; // its caller has had its answer: dropped, never run
      return work();
    });
    return Promise.race([turn, expired]);
  }

  #retrying<T>(attempt: () => Promise<T>): Promise<T> {
    return this.dialect === 'sqlite' ? retryBusy(attempt) : attempt();
  }

  #bind(replacements: Replacements | undefined): Replacements | undefined {
    if (replacements === undefined) return undefined;
    if (Array.isArray(replacements)) return replacements.map((value) => this.#bindValue(value));
    const bound: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(replacements)) bound[name] = this.#bindValue(value);
    return bound;
  }

  #bindValue(value: unknown): unknown {
    if (value instanceof Date) return this.bindDate(value);
    if (Array.isArray(value)) return value.map((item) => this.#bindValue(item));
    return value;
  }
}

/** A SQLite write that waited its whole bound for its turn (matched as "unavailable" by errors.ts: code ETIMEDOUT). */
export class WriteQueueTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`waited ${ms} ms for earlier SQLite writes of this process to finish`);
    this.name = 'WriteQueueTimeoutError';
  }
}

function isDeadlock(error: unknown): boolean {
  const errno = (error as { parent?: { errno?: number } } | null)?.parent?.errno;
  return errno === MYSQL_DEADLOCK || errno === MYSQL_LOCK_WAIT_TIMEOUT;
}
