/**
 * The built-in database session store: SQLite, PostgreSQL, MariaDB (and MySQL 8) through the Gatehouse connection.
 *
 * Tables come from migration 0002 (`server_side_sessions` + `server_side_session_clients`). Plain SQL with
 * replacements rather than models, so every statement is visible and each dialect gets the statement it needs:
 * - claimExpired leases rows (`claimed_until`, migration 0004) atomically without blocking other instances:
 *   PostgreSQL one `UPDATE ... WHERE session_id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`; MariaDB/MySQL
 *   `SELECT ... FOR UPDATE SKIP LOCKED` then `UPDATE` in one READ COMMITTED transaction (retried on deadlock); SQLite
 *   one `UPDATE ... RETURNING` (SQLite has a single writer). The row stays until the caller deletes it; `update`
 *   releases the claim.
 * - A row that cannot be read (its JSON does not parse, a date is unreadable) makes `get`/`getBySessionId` reject with
 *   `corrupt`; listings skip it with a warning; claimExpired deletes it (expired) with a warning. Deletes never read
 *   rows, so they always work on one.
 * - Every statement goes through the database gateway (database.ts), which queues SQLite writes one at a time in the
 *   process, retries SQLITE_BUSY, binds dates as each dialect stores them and counts what it sends.
 * Every database failure rejects with SessionStoreError (`duplicate` for a unique violation, else `storage`), keeping
 * the driver error as `cause`. Values longer than their column are refused up front (`invalid_argument`) so every
 * database behaves alike (SQLite would store them).
 */
import { UniqueConstraintError } from 'sequelize';
import { Database, type DatabaseTransaction, type Row } from './database.js';
import { isDatabaseUnavailable } from './errors.js';
import { decodePagingToken, pageResult, resolvePageSize, type PagingPosition } from '../paging-token.js';
import {
  SessionStoreError,
  assertFilter,
  assertKeyList,
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

/** MariaDB/MySQL claims: attempts in all when the claim's transaction deadlocks. */
const DEADLOCK_ATTEMPTS = 3;
/** Keys per DELETE in deleteMany (replacements are inlined, so only the statement's length limits it). */
const DELETE_CHUNK = 5000;

/** A keyset position as replacements: `created` as the database returned or compares it. */
type Anchor = { created: unknown; sessionId: string };

export class SequelizeSessionStore implements SessionStore {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #logger: StoreLogger;
  /** `key` is a reserved word on MySQL/MariaDB: always quoted. */
  readonly #keyColumn: string;

  constructor(context: SessionStoreContext) {
    if (!context?.sequelize) {
      throw new TypeError(
        'SequelizeSessionStore needs context.sequelize: the Gatehouse database connection, already migrated',
      );
    }
    this.#db = Database.of(context.sequelize);
    this.#clock = context.clock;
    this.#logger = context.logger;
    this.#keyColumn = this.#db.quote('key');
  }

  #columns(alias = ''): string {
    const p = alias ? `${alias}.` : '';
    return [
      'session_id',
      this.#keyColumn,
      'subject_id',
      'display_name',
      'clients',
      'created',
      'renewed',
      'expires',
      'auth_time',
      'login_ip',
      'login_user_agent',
      'last_ip',
      'last_user_agent',
      'data',
    ]
      .map((column) => p + column)
      .join(', ');
  }

  async get(key: string): Promise<ServerSideSession | null> {
    return this.#run('get', async () => {
      const rows = await this.#db.select(`SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${this.#keyColumn} = :key`, {
        key,
      });
      return rows.length ? decodeRow(rows[0], 'get') : null;
    });
  }

  async getBySessionId(sessionId: string): Promise<ServerSideSession | null> {
    return this.#run('getBySessionId', async () => {
      const rows = await this.#db.select(`SELECT ${this.#columns()} FROM ${SESSIONS} WHERE session_id = :sessionId`, {
        sessionId,
      });
      return rows.length ? decodeRow(rows[0], 'getBySessionId') : null;
    });
  }

  async create(session: ServerSideSession): Promise<void> {
    const params = this.#toParams(session);
    await this.#run('create', () =>
      this.#db.transaction(async (transaction) => {
        await transaction.write(
          `INSERT INTO ${SESSIONS} (session_id, ${this.#keyColumn}, subject_id, display_name, display_name_lower, clients,
             created, renewed, expires, auth_time, login_ip, login_user_agent, last_ip, last_user_agent, data)
           VALUES (:sessionId, :key, :subjectId, :displayName, :displayNameLower, :clients,
             :created, :renewed, :expires, :authTime, :loginIp, :loginUserAgent, :lastIp, :lastUserAgent, :data)`,
          params,
        );
        await this.#insertClients(session.sessionId, session.clients, transaction);
      }),
    );
  }

  async update(session: ServerSideSession): Promise<void> {
    const params = this.#toParams(session);
    const assignments = `${this.#keyColumn} = :key, subject_id = :subjectId, display_name = :displayName,
      display_name_lower = :displayNameLower, clients = :clients, created = :created, renewed = :renewed,
      expires = :expires, auth_time = :authTime, login_ip = :loginIp, login_user_agent = :loginUserAgent,
      last_ip = :lastIp, last_user_agent = :lastUserAgent, data = :data, claimed_until = NULL`;
    await this.#run('update', () =>
      this.#db.transaction(async (transaction) => {
        let found: Row[];
        if (this.#db.mysqlFamily) {
          // No UPDATE ... RETURNING, and affectedRows is 0 for an unchanged row: lock the row to know it exists.
          found = await transaction.select(
            `SELECT session_id FROM ${SESSIONS} WHERE session_id = :sessionId FOR UPDATE`,
            params,
          );
          if (found.length)
            await transaction.write(`UPDATE ${SESSIONS} SET ${assignments} WHERE session_id = :sessionId`, params);
        } else {
          found = await transaction.writeReturning(
            `UPDATE ${SESSIONS} SET ${assignments} WHERE session_id = :sessionId RETURNING session_id`,
            params,
          );
        }
        if (!found.length) throw new SessionStoreError('not_found', 'update: no session with this session id');
        await transaction.write(`DELETE FROM ${CLIENTS} WHERE session_id = :sessionId`, params);
        await this.#insertClients(session.sessionId, session.clients, transaction);
      }),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#run('delete', () => this.#db.write(`DELETE FROM ${SESSIONS} WHERE ${this.#keyColumn} = :key`, { key }));
  }

  /** One DELETE per chunk of keys (client rows go with them: ON DELETE CASCADE). */
  async deleteMany(keys: string[]): Promise<number> {
    assertKeyList(keys);
    let deleted = 0;
    for (let start = 0; start < keys.length; start += DELETE_CHUNK) {
      const chunk = keys.slice(start, start + DELETE_CHUNK);
      deleted += await this.#run('deleteMany', () =>
        this.#db.write(`DELETE FROM ${SESSIONS} WHERE ${this.#keyColumn} IN (:keys)`, { keys: chunk }),
      );
    }
    return deleted;
  }

  async getSessions(filter: SessionFilter): Promise<ServerSideSession[]> {
    assertFilter(filter);
    const { where, replacements } = filterClause(filter);
    return this.#run('getSessions', async () => {
      const rows = await this.#db.select(
        `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${where} ORDER BY created DESC, session_id DESC`,
        replacements,
      );
      return this.#readRows(rows, 'getSessions');
    });
  }

  async deleteSessions(filter: SessionFilter): Promise<number> {
    assertFilter(filter);
    const { where, replacements } = filterClause(filter);
    return this.#run('deleteSessions', () => this.#db.write(`DELETE FROM ${SESSIONS} WHERE ${where}`, replacements));
  }

  async claimExpired(count: number, leaseSeconds: number): Promise<ServerSideSession[]> {
    checkPositiveInteger(count, 'count');
    checkPositiveInteger(leaseSeconds, 'leaseSeconds');
    const now = this.#clock.now();
    const until = new Date(now.getTime() + leaseSeconds * 1000);
    if (Number.isNaN(until.getTime())) throw new SessionStoreError('invalid_argument', 'leaseSeconds is too large');
    const replacements = { now, until };
    return this.#run('claimExpired', async () => {
      const claimed: ServerSideSession[] = [];
      // Unreadable rows are deleted and do not count: claim again until `count` readable rows or nothing more is due,
      // so an empty result always means that nothing readable is due.
      while (claimed.length < count) {
        const wanted = count - claimed.length;
        const rows = await this.#claim({ ...replacements, count: wanted });
        const unreadable: string[] = [];
        for (const row of rows) {
          const record = this.#readRow(row, 'claimExpired', 'unreadable expired session deleted');
          if (record) claimed.push(record);
          else unreadable.push(String(row.session_id));
        }
        if (unreadable.length) {
          // Only while still under this claim: an update meanwhile (which releases it) may have repaired the row.
          await this.#db.write(`DELETE FROM ${SESSIONS} WHERE session_id IN (:ids) AND claimed_until = :until`, {
            ids: unreadable,
            until,
          });
        }
        if (rows.length < wanted) break;
      }
      return claimed.sort((a, b) => a.expires!.getTime() - b.expires!.getTime());
    });
  }

  /** Leases up to `count` due rows not under a live claim until `until`; resolves to the claimed rows. */
  async #claim(replacements: Record<string, unknown>): Promise<Row[]> {
    const due = `expires < :now AND (claimed_until IS NULL OR claimed_until <= :now)`;
    if (this.#db.mysqlFamily) return this.#claimWithSkipLocked(due, replacements);
    // PostgreSQL skips rows another instance is claiming; SQLite has a single writer.
    const skipLocked = this.#db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    return this.#db.writeReturning(
      `UPDATE ${SESSIONS} SET claimed_until = :until WHERE session_id IN (
         SELECT session_id FROM ${SESSIONS} WHERE ${due} ORDER BY expires LIMIT :count${skipLocked}
       ) RETURNING ${this.#columns()}`,
      replacements,
    );
  }

  /** MariaDB/MySQL: lock up to `count` due rows others have not locked, lease them, commit. Retries a deadlock. */
  async #claimWithSkipLocked(due: string, replacements: Record<string, unknown>): Promise<Row[]> {
    return this.#db.transaction(
      async (transaction) => {
        const rows = await transaction.select(
          `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${due} ORDER BY expires LIMIT :count FOR UPDATE SKIP LOCKED`,
          replacements,
        );
        if (rows.length) {
          await transaction.write(`UPDATE ${SESSIONS} SET claimed_until = :until WHERE session_id IN (:ids)`, {
            until: replacements.until,
            ids: rows.map((row) => row.session_id),
          });
        }
        return rows;
      },
      {
        isolation: 'read committed',
        deadlockAttempts: DEADLOCK_ATTEMPTS,
        onDeadlock: (attempt, error) =>
          this.#logger.warn({ attempt, err: error }, 'expired session claim deadlocked; retrying'),
      },
    );
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
      const [{ total }] = await this.#db.select(
        `SELECT COUNT(*) AS total FROM ${SESSIONS} WHERE ${where}`,
        replacements,
      );
      return { ...page, totalCount: Number(total) };
    });
  }

  async #page(where: string, replacements: Record<string, unknown>, position: PagingPosition | null, size: number) {
    const forward = 'ORDER BY created DESC, session_id DESC';
    const backward = 'ORDER BY created ASC, session_id ASC';
    // Keyset conditions with a plain range on `created` first, so every database can seek the (created, session_id) index.
    const after = 'created <= :anchorCreated AND (created < :anchorCreated OR session_id < :anchorId)';
    const before = 'created >= :anchorCreated AND (created > :anchorCreated OR session_id > :anchorId)';
    if (!position) {
      const rows = await this.#readable(where, replacements, after, null, forward, size + 1);
      return pageResult(rows.slice(0, size), false, rows.length > size);
    }
    const anchor: Anchor = { created: new Date(position.created), sessionId: position.sessionId };
    if (position.direction === 'next') {
      const rows = await this.#readable(where, replacements, after, anchor, forward, size + 1);
      const results = rows.slice(0, size);
      const hasPrevious =
        results.length > 0 &&
        (await this.#readable(where, replacements, before, this.#anchor(results[0]), backward, 1)).length > 0;
      return pageResult(results, hasPrevious, rows.length > size);
    }
    const rows = await this.#readable(where, replacements, before, anchor, backward, size + 1);
    const results = rows.slice(0, size).reverse();
    const hasNext =
      results.length > 0 &&
      (await this.#readable(where, replacements, after, this.#anchor(results[results.length - 1]), forward, 1)).length >
        0;
    return pageResult(results, rows.length > size, hasNext);
  }

  /**
   * Up to `want` readable matching rows in `order`, starting past `anchor` (when given) on its `side`. Unreadable rows
   * are skipped (with a warning) and the scan goes on past them, so they never shorten a page or hide a neighbour.
   */
  async #readable(
    where: string,
    replacements: Record<string, unknown>,
    side: string,
    anchor: Anchor | null,
    order: string,
    want: number,
  ): Promise<ServerSideSession[]> {
    const records: ServerSideSession[] = [];
    let cursor = anchor;
    for (;;) {
      const limit = want - records.length;
      const rows = await this.#db.select(
        `SELECT ${this.#columns()} FROM ${SESSIONS} WHERE ${where}${cursor ? ` AND ${side}` : ''} ${order} LIMIT :limit`,
        { ...replacements, limit, ...(cursor ? { anchorCreated: cursor.created, anchorId: cursor.sessionId } : {}) },
      );
      records.push(...this.#readRows(rows, 'querySessions'));
      if (rows.length < limit || records.length >= want) return records;
      // Some rows were unreadable: go on after the last row read, by its stored position.
      const last = rows[rows.length - 1];
      cursor = { created: last.created, sessionId: String(last.session_id) };
    }
  }

  #anchor(record: ServerSideSession): Anchor {
    return { created: record.created, sessionId: record.sessionId };
  }

  /** The readable records among `rows`; each unreadable one is logged and left out. */
  #readRows(rows: Row[], operation: string): ServerSideSession[] {
    const records: ServerSideSession[] = [];
    for (const row of rows) {
      const record = this.#readRow(row, operation, 'unreadable server-side session skipped');
      if (record) records.push(record);
    }
    return records;
  }

  #readRow(row: Row, operation: string, message: string): ServerSideSession | null {
    try {
      return fromRow(row);
    } catch (error) {
      this.#logger.warn(
        { operation, sessionId: String(row.session_id), err: { message: (error as Error).message } },
        message,
      );
      return null;
    }
  }

  /** WHERE clause of an admin query. Anonymous sessions (no subject) are never listed. */
  #queryClause(query: SessionQuery): { where: string; replacements: Record<string, unknown> } {
    const conditions = ['subject_id IS NOT NULL'];
    const replacements: Record<string, unknown> = {};
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

  async #insertClients(sessionId: string, clients: SessionClient[], transaction: DatabaseTransaction): Promise<void> {
    const clientIds = [...new Set(clients.map((client) => client.clientId))];
    if (clientIds.length === 0) return;
    const replacements: Record<string, unknown> = { sessionId };
    const values = clientIds.map((clientId, index) => {
      replacements[`client${index}`] = clientId;
      return `(:sessionId, :client${index})`;
    });
    await transaction.write(`INSERT INTO ${CLIENTS} (session_id, client_id) VALUES ${values.join(', ')}`, replacements);
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
      // The contract's passing condition (refused, dropped, timed out, busy past its retries) apart from a failure.
      if (isDatabaseUnavailable(error))
        throw new SessionStoreError('unavailable', `${operation}: database unavailable: ${message}`, { cause: error });
      throw new SessionStoreError('storage', `${operation}: database error: ${message}`, { cause: error });
    }
  }

  #toParams(session: ServerSideSession): Record<string, unknown> {
    if (!session || typeof session !== 'object')
      throw new SessionStoreError('invalid_argument', 'a session record is required');
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
      displayNameLower:
        displayName === null ? null : [...displayName.toLowerCase()].slice(0, LIMITS.displayName).join(''),
      clients: JSON.stringify(session.clients.map(({ clientId, sid }) => ({ clientId, sid }))),
      created: checkDate(session.created, 'created'),
      renewed: checkDate(session.renewed, 'renewed'),
      expires: optionalDate(session.expires),
      authTime: optionalDate(session.authTime),
      loginIp: session.loginIp ?? null,
      loginUserAgent: session.loginUserAgent ?? null,
      lastIp: session.lastIp ?? null,
      lastUserAgent: session.lastUserAgent ?? null,
      data: JSON.stringify(session.data ?? {}),
    };
  }
}

function filterClause(filter: SessionFilter): { where: string; replacements: Record<string, unknown> } {
  const conditions: string[] = [];
  const replacements: Record<string, unknown> = {};
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

function optionalDate(date: Date | null | undefined): Date | null {
  return date === null || date === undefined ? null : checkDate(date, 'a date');
}

function checkPositiveInteger(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new SessionStoreError('invalid_argument', `${name} must be a positive integer, got ${String(value)}`);
  }
}

function readDate(value: unknown, column: string): Date {
  const date =
    value instanceof Date
      ? new Date(value.getTime())
      : typeof value === 'string' || typeof value === 'number'
        ? new Date(value)
        : null;
  if (date === null || Number.isNaN(date.getTime()))
    throw new Error(`unreadable ${column}: ${String(value).slice(0, 64)}`);
  return date;
}

const readOptionalDate = (value: unknown, column: string) =>
  value === null || value === undefined ? null : readDate(value, column);
const readOptionalString = (value: unknown) => (value === null || value === undefined ? null : String(value));

function readJson(value: unknown, column: string): unknown {
  try {
    return JSON.parse(Buffer.isBuffer(value) ? value.toString('utf8') : String(value));
  } catch {
    throw new Error(`unreadable ${column}: not JSON`);
  }
}

function readClients(value: unknown): SessionClient[] {
  const clients = readJson(value, 'clients');
  if (!Array.isArray(clients)) throw new Error('unreadable clients: not a list');
  return clients.map((client: unknown) => {
    const { clientId, sid } = (client ?? {}) as Record<string, unknown>;
    if (typeof clientId !== 'string' || typeof sid !== 'string')
      throw new Error('unreadable clients: not {clientId, sid}');
    return { clientId, sid };
  });
}

function readData(value: unknown): Record<string, unknown> {
  const data = readJson(value, 'data');
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new Error('unreadable data: not an object');
  return data as Record<string, unknown>;
}

/** A row as a record; throws (a plain Error naming the column) when any part of it cannot be read. */
function fromRow(row: Row): ServerSideSession {
  return {
    key: String(row.key),
    sessionId: String(row.session_id),
    subjectId: readOptionalString(row.subject_id),
    displayName: readOptionalString(row.display_name),
    clients: readClients(row.clients),
    created: readDate(row.created, 'created'),
    renewed: readDate(row.renewed, 'renewed'),
    expires: readOptionalDate(row.expires, 'expires'),
    authTime: readOptionalDate(row.auth_time, 'auth_time'),
    loginIp: readOptionalString(row.login_ip),
    loginUserAgent: readOptionalString(row.login_user_agent),
    lastIp: readOptionalString(row.last_ip),
    lastUserAgent: readOptionalString(row.last_user_agent),
    data: readData(row.data),
  };
}

/** A row as a record, or SessionStoreError `corrupt` (the caller can delete it by key or session id). */
function decodeRow(row: Row, operation: string): ServerSideSession {
  try {
    return fromRow(row);
  } catch (error) {
    throw new SessionStoreError(
      'corrupt',
      `${operation}: the stored session cannot be read (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
}
