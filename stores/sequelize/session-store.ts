/**
 * The built-in database session store: SQLite, PostgreSQL, MariaDB (and MySQL 8) through the Gatehouse connection.
 *
 * Tables come from migration 0002 (`server_side_sessions` + `server_side_session_clients`). Plain SQL with
 * replacements rather than models, so every statement is visible and each dialect gets the statement it needs:
 * - getAndRemoveExpired claims rows atomically without blocking other instances: PostgreSQL `FOR UPDATE SKIP LOCKED`
 *   inside one `DELETE ... RETURNING`; MariaDB/MySQL `SELECT ... FOR UPDATE SKIP LOCKED` then `DELETE` in one
 *   READ COMMITTED transaction; SQLite one `DELETE ... RETURNING` (SQLite has a single writer).
 * - On SQLite this store's writes are queued per connection, because Sequelize runs in-memory transactions on the one
 *   shared connection and SQLite cannot nest them.
 * Every database failure rejects with SessionStoreError (`duplicate` for a unique violation, else `storage`), keeping
 * the driver error as `cause`. Values longer than their column are refused up front (`invalid_argument`) so every
 * database behaves alike (SQLite would store them).
 */
import { QueryTypes, Transaction, UniqueConstraintError, type Sequelize } from 'sequelize';
import { dialectOf, type Dialect } from './connection.js';
import { decodePagingToken, pageResult, resolvePageSize, type PagingPosition } from '../paging-token.js';
import {
  SessionStoreError,
  assertFilter,
  type Clock,
  type ServerSideSession,
  type SessionClient,
  type SessionFilter,
  type SessionQuery,
  type SessionQueryResult,
  type SessionStore,
  type SessionStoreContext,
  type StoreLogger,
} from '../session-store.js';

const SESSIONS = 'server_side_sessions';
const CLIENTS = 'server_side_session_clients';

/** Column lengths from migration 0002. */
const LIMITS = {
  key: 128,
  sessionId: 128,
  subjectId: 255,
  displayName: 255,
  clientId: 255,
  loginIp: 64,
  lastIp: 64,
  loginUserAgent: 512,
  lastUserAgent: 512,
} as const;

const SQLITE_BUSY_TIMEOUT_MS = 5000;
const DEADLOCK_RETRIES = 3;

type Row = Record<string, unknown>;
type Replacements = Record<string, unknown>;

/** Writes on one SQLite connection, one at a time (see the file comment). */
const sqliteQueues = new WeakMap<Sequelize, Promise<unknown>>();

export class SequelizeSessionStore implements SessionStore {
  readonly #sequelize: Sequelize;
  readonly #clock: Clock;
  readonly #logger: StoreLogger;
  readonly #dialect: Dialect;
  /** `key` is a reserved word on MySQL/MariaDB: always quoted. */
  readonly #keyColumn: string;

  constructor(context: SessionStoreContext) {
    if (!context?.sequelize) {
      throw new TypeError('SequelizeSessionStore needs context.sequelize: the Gatehouse database connection, already migrated');
    }
    this.#sequelize = context.sequelize;
    this.#clock = context.clock;
    this.#logger = context.logger;
    this.#dialect = dialectOf(context.sequelize);
    this.#keyColumn = this.#mysqlFamily ? '`key`' : '"key"';
  }

  get #mysqlFamily(): boolean {
    return this.#dialect === 'mysql' || this.#dialect === 'mariadb';
  }

  #columns(alias = ''): string {
    const p = alias ? `${alias}.` : '';
    return [
      'session_id', this.#keyColumn, 'subject_id', 'display_name', 'clients', 'created', 'renewed', 'expires',
      'auth_time', 'login_ip', 'login_user_agent', 'last_ip', 'last_user_agent', 'data',
    ].map((column) => p + column).join(', ');
  }

  async get(key: string): Promise<ServerSideSession | null> {
    return this.#run('get', async () => {
      const rows = await this.#select(`SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${this.#keyColumn} = :key`, { key });
      return rows.length ? fromRow(rows[0]) : null;
    });
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | null> {
    return this.#run('getBySessionId', async () => {
      const rows = await this.#select(`SELECT ${this.#columns()} FROM ${SESSIONS} WHERE session_id = :sessionId`, { sessionId });
      return rows.length ? fromRow(rows[0]) : null;
    });
  }

  async create(session: ServerSideSession): Promise<void> {
    const params = this.#toParams(session);
    await this.#run('create', () =>
      this.#write(() =>
        this.#transaction(async (transaction) => {
          await this.#sequelize.query(
            `INSERT INTO ${SESSIONS} (session_id, ${this.#keyColumn}, subject_id, display_name, display_name_lower, clients,
               created, renewed, expires, auth_time, login_ip, login_user_agent, last_ip, last_user_agent, data)
             VALUES (:sessionId, :key, :subjectId, :displayName, :displayNameLower, :clients,
               :created, :renewed, :expires, :authTime, :loginIp, :loginUserAgent, :lastIp, :lastUserAgent, :data)`,
            { type: QueryTypes.INSERT, replacements: params, transaction },
          );
          await this.#insertClients(session.sessionId, session.clients, transaction);
        }),
      ),
    );
  }

  async update(session: ServerSideSession): Promise<void> {
    const params = this.#toParams(session);
    const assignments = `${this.#keyColumn} = :key, subject_id = :subjectId, display_name = :displayName,
      display_name_lower = :displayNameLower, clients = :clients, created = :created, renewed = :renewed,
      expires = :expires, auth_time = :authTime, login_ip = :loginIp, login_user_agent = :loginUserAgent,
      last_ip = :lastIp, last_user_agent = :lastUserAgent, data = :data`;
    await this.#run('update', () =>
      this.#write(() =>
        this.#transaction(async (transaction) => {
          let found: Row[];
          if (this.#mysqlFamily) {
            // No UPDATE ... RETURNING, and affectedRows is 0 for an unchanged row: lock the row to know it exists.
            found = await this.#select(`SELECT session_id FROM ${SESSIONS} WHERE session_id = :sessionId FOR UPDATE`, params, transaction);
            if (found.length) {
              await this.#sequelize.query(`UPDATE ${SESSIONS} SET ${assignments} WHERE session_id = :sessionId`, {
                type: QueryTypes.UPDATE,
                replacements: params,
                transaction,
              });
            }
          } else {
            found = await this.#select(
              `UPDATE ${SESSIONS} SET ${assignments} WHERE session_id = :sessionId RETURNING session_id`,
              params,
              transaction,
            );
          }
          if (!found.length) throw new SessionStoreError('not_found', 'update: no session with this session id');
          await this.#sequelize.query(`DELETE FROM ${CLIENTS} WHERE session_id = :sessionId`, {
            type: QueryTypes.BULKDELETE,
            replacements: params,
            transaction,
          });
          await this.#insertClients(session.sessionId, session.clients, transaction);
        }),
      ),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#run('delete', () =>
      this.#write(() =>
        this.#sequelize.query(`DELETE FROM ${SESSIONS} WHERE ${this.#keyColumn} = :key`, {
          type: QueryTypes.BULKDELETE,
          replacements: { key },
        }),
      ),
    );
  }

  async getSessions(filter: SessionFilter): Promise<ServerSideSession[]> {
    assertFilter(filter);
    const { where, replacements } = filterClause(filter);
    return this.#run('getSessions', async () => {
      const rows = await this.#select(
        `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${where} ORDER BY created DESC, session_id DESC`,
        replacements,
      );
      return rows.map(fromRow);
    });
  }

  async deleteSessions(filter: SessionFilter): Promise<number> {
    assertFilter(filter);
    const { where, replacements } = filterClause(filter);
    return this.#run('deleteSessions', () =>
      this.#write(async () => {
        const deleted = await this.#sequelize.query(`DELETE FROM ${SESSIONS} WHERE ${where}`, {
          type: QueryTypes.BULKDELETE,
          replacements,
        });
        return Number(deleted);
      }),
    );
  }

  async getAndRemoveExpired(count: number): Promise<ServerSideSession[]> {
    if (!Number.isInteger(count) || count < 1) {
      throw new SessionStoreError('invalid_argument', `count must be a positive integer, got ${String(count)}`);
    }
    const replacements = { now: this.#date(this.#clock.now()), count };
    return this.#run('getAndRemoveExpired', async () => {
      let rows: Row[];
      if (this.#dialect === 'postgres') {
        rows = await this.#select(
          `WITH claimed AS (
             SELECT session_id FROM ${SESSIONS} WHERE expires < :now ORDER BY expires LIMIT :count FOR UPDATE SKIP LOCKED
           )
           DELETE FROM ${SESSIONS} s USING claimed WHERE s.session_id = claimed.session_id
           RETURNING ${this.#columns('s')}`,
          replacements,
        );
      } else if (this.#mysqlFamily) {
        rows = await this.#claimWithSkipLocked(replacements);
      } else {
        rows = await this.#write(() =>
          this.#select(
            `DELETE FROM ${SESSIONS} WHERE session_id IN (
               SELECT session_id FROM ${SESSIONS} WHERE expires < :now ORDER BY expires LIMIT :count
             ) RETURNING ${this.#columns()}`,
            replacements,
          ),
        );
      }
      return rows.map(fromRow).sort((a, b) => a.expires!.getTime() - b.expires!.getTime());
    });
  }

  /** MariaDB/MySQL: lock up to `count` due rows others have not locked, delete them, commit. Retries a deadlock. */
  async #claimWithSkipLocked(replacements: Replacements): Promise<Row[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#transaction(async (transaction) => {
          const rows = await this.#select(
            `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE expires < :now ORDER BY expires LIMIT :count
             FOR UPDATE SKIP LOCKED`,
            replacements,
            transaction,
          );
          if (rows.length) {
            await this.#sequelize.query(`DELETE FROM ${SESSIONS} WHERE session_id IN (:ids)`, {
              type: QueryTypes.BULKDELETE,
              replacements: { ids: rows.map((row) => row.session_id) },
              transaction,
            });
          }
          return rows;
        }, Transaction.ISOLATION_LEVELS.READ_COMMITTED);
      } catch (error) {
        if (attempt >= DEADLOCK_RETRIES || !isDeadlock(error)) throw error;
        this.#logger.warn({ attempt, err: error }, 'expired session claim deadlocked; retrying');
      }
    }
  }

  async querySessions(query: SessionQuery): Promise<SessionQueryResult> {
    const pageSize = resolvePageSize(query.pageSize);
    const { where, replacements } = this.#queryClause(query);
    const position = decodePagingToken(query.token);
    return this.#run('querySessions', async () => {
      let page = await this.#page(where, replacements, position, pageSize);
      // A token whose page is now empty (its rows were deleted meanwhile) falls back to the first page.
      if (position && page.results.length === 0) page = await this.#page(where, replacements, null, pageSize);
      if (!query.countTotal) return page;
      const [{ total }] = await this.#select(`SELECT COUNT(*) AS total FROM ${SESSIONS} WHERE ${where}`, replacements);
      return { ...page, totalCount: Number(total) };
    });
  }

  async #page(where: string, replacements: Replacements, position: PagingPosition | null, size: number) {
    const select = `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${where}`;
    const forward = 'ORDER BY created DESC, session_id DESC';
    const backward = 'ORDER BY created ASC, session_id ASC';
    // Keyset conditions with a plain range on `created` first, so every database can seek the (created, session_id) index.
    const after = 'created <= :anchorCreated AND (created < :anchorCreated OR session_id < :anchorId)';
    const before = 'created >= :anchorCreated AND (created > :anchorCreated OR session_id > :anchorId)';
    const limit = { ...replacements, limit: size + 1 };
    if (!position) {
      const rows = (await this.#select(`${select} ${forward} LIMIT :limit`, limit)).map(fromRow);
      return pageResult(rows.slice(0, size), false, rows.length > size);
    }
    const anchored = { ...limit, anchorCreated: this.#date(new Date(position.created)), anchorId: position.sessionId };
    if (position.direction === 'next') {
      const rows = (await this.#select(`${select} AND ${after} ${forward} LIMIT :limit`, anchored)).map(fromRow);
      const results = rows.slice(0, size);
      const hasPrevious = results.length > 0 && (await this.#exists(where, before, replacements, results[0]));
      return pageResult(results, hasPrevious, rows.length > size);
    }
    const rows = (await this.#select(`${select} AND ${before} ${backward} LIMIT :limit`, anchored)).map(fromRow);
    const results = rows.slice(0, size).reverse();
    const hasNext = results.length > 0 && (await this.#exists(where, after, replacements, results[results.length - 1]));
    return pageResult(results, rows.length > size, hasNext);
  }

  /** Whether a matching row lies on the given side of `anchor`. */
  async #exists(where: string, side: string, replacements: Replacements, anchor: ServerSideSession): Promise<boolean> {
    const rows = await this.#select(`SELECT 1 AS found FROM ${SESSIONS} WHERE ${where} AND ${side} LIMIT 1`, {
      ...replacements,
      anchorCreated: this.#date(anchor.created),
      anchorId: anchor.sessionId,
    });
    return rows.length > 0;
  }

  /** WHERE clause of an admin query. Anonymous sessions (no subject) are never listed. */
  #queryClause(query: SessionQuery): { where: string; replacements: Replacements } {
    const conditions = ['subject_id IS NOT NULL'];
    const replacements: Replacements = {};
    if (query.subjectId) {
      conditions.push('subject_id = :subjectId');
      replacements.subjectId = query.subjectId;
    }
    if (query.sessionId) {
      conditions.push('session_id = :sessionId');
      replacements.sessionId = query.sessionId;
    }
    if (query.displayNamePrefix) {
      // A range on the lower-cased column uses its index on every database; the LIKE (with `%`, `_` and the escape
      // character escaped) is the exact check, for collations that pad or fold.
      const prefix = query.displayNamePrefix.toLowerCase();
      conditions.push('display_name_lower >= :prefixLow');
      replacements.prefixLow = prefix;
      const high = prefixUpperBound(prefix);
      if (high !== null) {
        conditions.push('display_name_lower < :prefixHigh');
        replacements.prefixHigh = high;
      }
      conditions.push(`display_name_lower LIKE :prefixPattern ESCAPE '!'`);
      replacements.prefixPattern = `${prefix.replace(/[!%_]/g, '!$&')}%`;
    }
    if (query.clientId) {
      conditions.push(
        `EXISTS (SELECT 1 FROM ${CLIENTS} c WHERE c.session_id = ${SESSIONS}.session_id AND c.client_id = :clientId)`,
      );
      replacements.clientId = query.clientId;
    }
    return { where: conditions.join(' AND '), replacements };
  }

  async #insertClients(sessionId: string, clients: SessionClient[], transaction: Transaction): Promise<void> {
    const clientIds = [...new Set(clients.map((client) => client.clientId))];
    if (clientIds.length === 0) return;
    const replacements: Replacements = { sessionId };
    const values = clientIds.map((clientId, index) => {
      replacements[`client${index}`] = clientId;
      return `(:sessionId, :client${index})`;
    });
    await this.#sequelize.query(`INSERT INTO ${CLIENTS} (session_id, client_id) VALUES ${values.join(', ')}`, {
      type: QueryTypes.INSERT,
      replacements,
      transaction,
    });
  }

  async #select(sql: string, replacements: Replacements, transaction?: Transaction): Promise<Row[]> {
    return this.#sequelize.query<Row>(sql, { type: QueryTypes.SELECT, replacements, transaction });
  }

  #transaction<T>(work: (transaction: Transaction) => Promise<T>, isolationLevel?: Transaction.ISOLATION_LEVELS): Promise<T> {
    return this.#sequelize.transaction({ isolationLevel }, async (transaction) => {
      if (this.#dialect === 'sqlite') {
        // A SQLite file transaction gets its own connection, without the pool's busy timeout.
        await this.#select(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`, {}, transaction);
      }
      return work(transaction);
    });
  }

  /** On SQLite, queue this store's writes on the connection; elsewhere run at once. */
  #write<T>(work: () => Promise<T>): Promise<T> {
    if (this.#dialect !== 'sqlite') return work();
    const previous = sqliteQueues.get(this.#sequelize) ?? Promise.resolve();
    const result = previous.then(work, work);
    sqliteQueues.set(this.#sequelize, result.catch(() => undefined));
    return result;
  }

  async #run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof SessionStoreError) throw error;
      if (error instanceof UniqueConstraintError) {
        throw new SessionStoreError('duplicate', `${operation}: a session with this key or session id already exists`, {
          cause: error,
        });
      }
      const message = error instanceof Error ? error.message : String(error);
      throw new SessionStoreError('storage', `${operation}: database error: ${message}`, { cause: error });
    }
  }

  /** A Date as a replacement: MySQL/MariaDB get a UTC DATETIME literal with milliseconds (Sequelize's MySQL one drops them). */
  #date(date: Date): Date | string {
    return this.#mysqlFamily ? date.toISOString().replace('T', ' ').replace('Z', '') : date;
  }

  #optionalDate(date: Date | null | undefined): Date | string | null {
    return date === null || date === undefined ? null : this.#date(checkDate(date, 'a date'));
  }

  #toParams(session: ServerSideSession): Replacements {
    if (!session || typeof session !== 'object') throw new SessionStoreError('invalid_argument', 'a session record is required');
    checkString(session.key, 'key', LIMITS.key, false);
    checkString(session.sessionId, 'sessionId', LIMITS.sessionId, false);
    for (const field of ['subjectId', 'displayName', 'loginIp', 'lastIp', 'loginUserAgent', 'lastUserAgent'] as const) {
      checkString(session[field], field, LIMITS[field], true);
    }
    if (!Array.isArray(session.clients)) throw new SessionStoreError('invalid_argument', 'clients must be an array');
    for (const client of session.clients) checkString(client?.clientId, 'clients[].clientId', LIMITS.clientId, false);
    const displayName = session.displayName ?? null;
    return {
      sessionId: session.sessionId,
      key: session.key,
      subjectId: session.subjectId ?? null,
      displayName,
      displayNameLower: displayName === null ? null : [...displayName.toLowerCase()].slice(0, LIMITS.displayName).join(''),
      clients: JSON.stringify(session.clients.map(({ clientId, sid }) => ({ clientId, sid }))),
      created: this.#date(checkDate(session.created, 'created')),
      renewed: this.#date(checkDate(session.renewed, 'renewed')),
      expires: this.#optionalDate(session.expires),
      authTime: this.#optionalDate(session.authTime),
      loginIp: session.loginIp ?? null,
      loginUserAgent: session.loginUserAgent ?? null,
      lastIp: session.lastIp ?? null,
      lastUserAgent: session.lastUserAgent ?? null,
      data: JSON.stringify(session.data ?? {}),
    };
  }
}

function filterClause(filter: SessionFilter): { where: string; replacements: Replacements } {
  const conditions: string[] = [];
  const replacements: Replacements = {};
  if (filter.subjectId) {
    conditions.push('subject_id = :subjectId');
    replacements.subjectId = filter.subjectId;
  }
  if (filter.sessionId) {
    conditions.push('session_id = :sessionId');
    replacements.sessionId = filter.sessionId;
  }
  return { where: conditions.join(' AND '), replacements };
}

/** The smallest string greater than every string starting with `prefix` (code point order), or null if none. */
function prefixUpperBound(prefix: string): string | null {
  const codePoints = [...prefix].map((char) => char.codePointAt(0)!);
  while (codePoints.length) {
    let last = codePoints.pop()!;
    if (last >= 0x10ffff) continue;
    last += 1;
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000;
    return String.fromCodePoint(...codePoints, last);
  }
  return null;
}

function checkString(value: unknown, field: string, max: number, nullable: boolean): void {
  if (value === null || value === undefined) {
    if (nullable) return;
    throw new SessionStoreError('invalid_argument', `${field} is required`);
  }
  if (typeof value !== 'string' || (!nullable && value.length === 0)) {
    throw new SessionStoreError('invalid_argument', `${field} must be a non-empty string`);
  }
  if ([...value].length > max) {
    throw new SessionStoreError('invalid_argument', `${field} is longer than ${max} characters`);
  }
}

function checkDate(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new SessionStoreError('invalid_argument', `${field} must be a valid Date`);
  }
  return value;
}

function isDeadlock(error: unknown): boolean {
  const parent = (error as { parent?: { errno?: number } } | null)?.parent;
  return parent?.errno === 1213 || parent?.errno === 1205;
}

function readDate(value: unknown): Date {
  const date = value instanceof Date ? new Date(value.getTime()) : new Date(value as string | number);
  if (Number.isNaN(date.getTime())) throw new Error(`unreadable date in ${SESSIONS}: ${String(value)}`);
  return date;
}

const readOptionalDate = (value: unknown) => (value === null || value === undefined ? null : readDate(value));
const readOptionalString = (value: unknown) => (value === null || value === undefined ? null : String(value));

function fromRow(row: Row): ServerSideSession {
  return {
    key: String(row.key),
    sessionId: String(row.session_id),
    subjectId: readOptionalString(row.subject_id),
    displayName: readOptionalString(row.display_name),
    clients: JSON.parse(String(row.clients)) as SessionClient[],
    created: readDate(row.created),
    renewed: readDate(row.renewed),
    expires: readOptionalDate(row.expires),
    authTime: readOptionalDate(row.auth_time),
    loginIp: readOptionalString(row.login_ip),
    loginUserAgent: readOptionalString(row.login_user_agent),
    lastIp: readOptionalString(row.last_ip),
    lastUserAgent: readOptionalString(row.last_user_agent),
    data: JSON.parse(String(row.data)) as Record<string, unknown>,
  };
}
