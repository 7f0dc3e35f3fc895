/**
 * The directory's SQL: users and OAuth clients in `gatehouse_users` / `gatehouse_clients` (migration 0005).
 *
 * Reads return `null` for a miss. Writes of a username another enabled user holds fail with UsernameTakenError.
 * `applySeed` applies the configuration's users and clients in one transaction, under a lock across instances, so
 * several servers starting together on one database neither duplicate nor fight over rows:
 *  - a configured entry that is missing is inserted; one that differs is updated (and re-enabled, and owned by the
 *    configuration from then on); an identical one is not written at all;
 *  - a row the configuration created (`source = 'config'`) that is no longer configured is disabled, never deleted;
 *  - rows added with the CLI or the API are left alone.
 */
import { UniqueConstraintError, type Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { Database, type DatabaseTransaction } from './database.js';
import { revokeClientRecords } from './operational-adapter.js';

export type DirectorySource = 'config' | 'cli' | 'api';

export interface UserRecord {
  subject: string;
  username: string;
  /** scrypt PHC string; null = no password (one-click / autoLogin only, in development and testing modes). */
  passwordHash: string | null;
  claims: Record<string, unknown>;
  roles: string[];
  disabled: boolean;
  source: DirectorySource;
  created: Date;
  updated: Date;
}

export type UserInput = Omit<UserRecord, 'created' | 'updated'>;

/** Gatehouse's own per-client settings (not OAuth metadata). */
export interface ClientSettingsRecord {
  skipConsent?: boolean;
  coordinateLifetimeWithUserSession?: boolean;
}

export interface ClientRecord {
  clientId: string;
  /** OAuth client metadata as configured (`client_id`, `client_secret`, `redirect_uris`, ...). */
  metadata: Record<string, unknown>;
  settings: ClientSettingsRecord;
  disabled: boolean;
  source: DirectorySource;
  created: Date;
  updated: Date;
}

export type ClientInput = Omit<ClientRecord, 'created' | 'updated'>;

export type SaveOutcome = 'created' | 'updated' | 'unchanged';

export interface SeedCounts {
  created: number;
  updated: number;
  unchanged: number;
  disabled: number;
}

export interface SeedResult {
  users: SeedCounts;
  clients: SeedCounts;
  /** Subjects / client ids that the CLI or API had created and the configuration now owns. */
  takenOver: string[];
}

/** A username that another enabled user already has. */
export class UsernameTakenError extends Error {
  readonly username: string;
  readonly holder: string;
  constructor(username: string, holder: string, holderSource?: DirectorySource) {
    super(
      `username "${username}" is already used by user "${holder}"${holderSource ? ` (source ${holderSource})` : ''}`,
    );
    this.name = 'UsernameTakenError';
    this.username = username;
    this.holder = holder;
  }
}

interface UserRow {
  subject: string;
  username: string;
  username_key: string | null;
  password_hash: string | null;
  claims: string;
  roles: string;
  disabled: boolean;
  source: string;
  created_at: Date;
  updated_at: Date;
}

interface ClientRow {
  client_id: string;
  metadata: string;
  settings: string;
  disabled: boolean;
  source: string;
  created_at: Date;
  updated_at: Date;
}

const USERS = 'gatehouse_users';
const CLIENTS = 'gatehouse_clients';
const USER_COLUMNS = [
  'subject',
  'username',
  'username_key',
  'password_hash',
  'claims',
  'roles',
  'disabled',
  'source',
  'created_at',
  'updated_at',
] as const;
const CLIENT_COLUMNS = ['client_id', 'metadata', 'settings', 'disabled', 'source', 'created_at', 'updated_at'] as const;
/** Seeding instances queue behind this lock (PostgreSQL advisory lock key next to the migrations' one). */
const SEED_LOCK = { name: 'gatehouse_directory', key: 7_402_110_332 };

/** `INSERT` of every column, each from the replacement of its name. */
function insertSql(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((column) => `:${column}`).join(', ')})`;
}

/** `UPDATE` of these columns (each from the replacement of its name) of the row whose `key` column matches `:key`. */
function updateSql(table: string, columns: readonly string[], key: string): string {
  return `UPDATE ${table} SET ${columns.map((column) => `${column} = :${column}`).join(', ')} WHERE ${key} = :${key}`;
}

/** JSON with object keys sorted, so equal values always give equal text (and "changed?" is a string compare). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(
          Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : item,
  );
}

function asDate(value: Date | string): Date {
  return value instanceof Date ? value : new Date(value);
}

function toUser(row: UserRow): UserRecord {
  return {
    subject: row.subject,
    username: row.username,
    passwordHash: row.password_hash,
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    roles: JSON.parse(row.roles) as string[],
    disabled: Boolean(row.disabled),
    source: row.source as DirectorySource,
    created: asDate(row.created_at),
    updated: asDate(row.updated_at),
  };
}

function toClient(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    settings: JSON.parse(row.settings) as ClientSettingsRecord,
    disabled: Boolean(row.disabled),
    source: row.source as DirectorySource,
    created: asDate(row.created_at),
    updated: asDate(row.updated_at),
  };
}

/** The stored columns of a user (everything but the timestamps); `source` is only written on insert or take-over. */
function userColumns(user: UserInput): Omit<UserRow, 'created_at' | 'updated_at'> {
  return {
    subject: user.subject,
    username: user.username,
    username_key: user.disabled ? null : user.username.toLowerCase(),
    password_hash: user.passwordHash,
    claims: canonicalJson(user.claims),
    roles: canonicalJson(user.roles),
    disabled: user.disabled,
    source: user.source,
  };
}

function clientColumns(client: ClientInput): Omit<ClientRow, 'created_at' | 'updated_at'> {
  return {
    client_id: client.clientId,
    metadata: canonicalJson({ ...client.metadata, client_id: client.clientId }),
    settings: canonicalJson(client.settings),
    disabled: client.disabled,
    source: client.source,
  };
}

/** Whether a stored row already has these column values (booleans may come back as 0/1 from raw queries). */
function sameColumns<T extends object>(row: T, columns: Partial<T>): boolean {
  return (Object.keys(columns) as (keyof T)[]).every((key) =>
    typeof columns[key] === 'boolean' ? Boolean(row[key]) === columns[key] : row[key] === columns[key],
  );
}

export class SequelizeDirectory {
  readonly #sequelize: Sequelize;
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(sequelize: Sequelize, clock: Clock) {
    this.#sequelize = sequelize;
    this.#db = Database.of(sequelize);
    this.#clock = clock;
  }

  // ---- users ----

  /** The user with this subject (enabled or not), or null. */
  async getUser(subject: string): Promise<UserRecord | null> {
    const [row] = await this.#db.select<UserRow>(`SELECT * FROM ${USERS} WHERE subject = :subject`, { subject });
    return row ? toUser(row) : null;
  }

  /** The enabled user with this username (case-insensitive), or null. */
  async findEnabledUserByUsername(username: string): Promise<UserRecord | null> {
    const [row] = await this.#db.select<UserRow>(
      `SELECT * FROM ${USERS} WHERE username_key = :key AND disabled = :disabled`,
      {
        key: username.toLowerCase(),
        disabled: false,
      },
    );
    return row ? toUser(row) : null;
  }

  /** Every user, by subject; `limit` caps the list. */
  async listUsers(
    options: { enabledOnly?: boolean; disabledOnly?: boolean; source?: UserRecord['source']; limit?: number } = {},
  ): Promise<UserRecord[]> {
    const conditions: string[] = [];
    const replacements: Record<string, unknown> = {};
    if (options.enabledOnly || options.disabledOnly) {
      conditions.push('disabled = :disabled');
      replacements.disabled = Boolean(options.disabledOnly); // disabledOnly wins when both are given
    }
    if (options.source) {
      conditions.push('source = :source');
      replacements.source = options.source;
    }
    const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
    const limit = options.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.trunc(options.limit))}`;
    const rows = await this.#db.select<UserRow>(
      `SELECT * FROM ${USERS}${where} ORDER BY subject${limit}`,
      replacements,
    );
    return rows.map(toUser);
  }

  /**
   * Inserts the user (with `user.source`) or updates every field of the existing one (its source and creation time
   * stay). Throws UsernameTakenError when another enabled user has the username.
   */
  async saveUser(user: UserInput): Promise<SaveOutcome> {
    const columns = userColumns(user);
    return this.#db.transaction(async (transaction) => {
      if (columns.username_key) {
        const [holder] = await transaction.select<Pick<UserRow, 'subject' | 'source'>>(
          `SELECT subject, source FROM ${USERS} WHERE username_key = :key AND subject <> :subject LIMIT 1`,
          { key: columns.username_key, subject: user.subject },
        );
        if (holder) throw new UsernameTakenError(user.username, holder.subject, holder.source as DirectorySource);
      }
      const [existing] = await transaction.select<UserRow>(`SELECT * FROM ${USERS} WHERE subject = :subject`, {
        subject: user.subject,
      });
      const now = this.#clock.now();
      try {
        if (!existing) {
          await transaction.write(insertSql(USERS, USER_COLUMNS), { ...columns, created_at: now, updated_at: now });
          return 'created';
        }
        const { source: _source, ...changes } = columns;
        if (sameColumns(existing, changes)) return 'unchanged';
        await transaction.write(
          updateSql(USERS, [...Object.keys(changes).filter((column) => column !== 'subject'), 'updated_at'], 'subject'),
          { ...changes, updated_at: now },
        );
        return 'updated';
      } catch (error) {
        if (error instanceof UniqueConstraintError) throw new UsernameTakenError(user.username, '(another user)');
        throw error;
      }
    });
  }

  /**
   * Replaces a user's password hash, only if it is still `expected`: a re-hash at sign-in must change nothing else,
   * and must lose to a change made meanwhile (an administrator's reset, a disable). False when it lost.
   */
  async replacePasswordHash(subject: string, expected: string, next: string): Promise<boolean> {
    const sql = `UPDATE ${USERS} SET password_hash = :next, updated_at = :now WHERE subject = :subject AND password_hash = :expected`;
    return (await this.#db.write(sql, { subject, expected, next, now: this.#clock.now() })) > 0;
  }

  /** Deletes the user; false when there was none. */
  async deleteUser(subject: string): Promise<boolean> {
    return (await this.#db.write(`DELETE FROM ${USERS} WHERE subject = :subject`, { subject })) > 0;
  }

  // ---- clients ----

  /** The client with this id (enabled or not), or null. */
  async getClient(clientId: string): Promise<ClientRecord | null> {
    const [row] = await this.#db.select<ClientRow>(`SELECT * FROM ${CLIENTS} WHERE client_id = :clientId`, {
      clientId,
    });
    return row ? toClient(row) : null;
  }

  async listClients(options: { enabledOnly?: boolean } = {}): Promise<ClientRecord[]> {
    const rows = options.enabledOnly
      ? await this.#db.select<ClientRow>(`SELECT * FROM ${CLIENTS} WHERE disabled = :disabled ORDER BY client_id`, {
          disabled: false,
        })
      : await this.#db.select<ClientRow>(`SELECT * FROM ${CLIENTS} ORDER BY client_id`);
    return rows.map(toClient);
  }

  /** Inserts the client (with `client.source`) or replaces the existing one's metadata, settings and flag. */
  async saveClient(client: ClientInput): Promise<SaveOutcome> {
    const columns = clientColumns(client);
    return this.#db.transaction(async (transaction) => {
      const [existing] = await transaction.select<ClientRow>(`SELECT * FROM ${CLIENTS} WHERE client_id = :client_id`, {
        client_id: client.clientId,
      });
      const now = this.#clock.now();
      if (!existing) {
        await transaction.write(insertSql(CLIENTS, CLIENT_COLUMNS), { ...columns, created_at: now, updated_at: now });
        return 'created';
      }
      const { source: _source, ...changes } = columns;
      if (sameColumns(existing, changes)) return 'unchanged';
      await transaction.write(updateSql(CLIENTS, ['metadata', 'settings', 'disabled', 'updated_at'], 'client_id'), {
        ...changes,
        updated_at: now,
      });
      return 'updated';
    });
  }

  /**
   * Deletes the client, then revokes what the provider keeps for it (grants, tokens, codes: `revokeClientRecords`).
   * The revocation runs also when the client was already gone, so repeating a removal whose revocation failed
   * finishes it.
   */
  async deleteClient(clientId: string): Promise<{ removed: boolean; revoked: number }> {
    const removed = (await this.#db.write(`DELETE FROM ${CLIENTS} WHERE client_id = :clientId`, { clientId })) > 0;
    return { removed, revoked: await revokeClientRecords(this.#sequelize, clientId) };
  }

  // ---- seeding ----

  /**
   * Applies the configured users and clients (see the file comment). Throws UsernameTakenError, before writing
   * anything, when a configured username belongs to a user the configuration does not own.
   */
  async applySeed(seed: {
    users: Omit<UserInput, 'source' | 'disabled'>[];
    clients: Omit<ClientInput, 'source' | 'disabled'>[];
  }): Promise<SeedResult> {
    // Seeding instances queue behind one lock (SQLite: its single writer), held until the seed has committed.
    return this.#db.withLock(SEED_LOCK, () =>
      this.#db.transaction(async (transaction) => {
        const result: SeedResult = { users: emptyCounts(), clients: emptyCounts(), takenOver: [] };
        await this.#seedUsers(seed.users, transaction, result);
        await this.#seedClients(seed.clients, transaction, result);
        return result;
      }),
    );
  }

  async #seedUsers(
    seedUsers: Omit<UserInput, 'source' | 'disabled'>[],
    transaction: DatabaseTransaction,
    result: SeedResult,
  ): Promise<void> {
    const now = this.#clock.now();
    const desired = seedUsers.map((user) => userColumns({ ...user, disabled: false, source: 'config' }));
    const subjects = new Set(desired.map((row) => row.subject));
    const usernameKeys = desired.map((row) => row.username_key!);
    const rows = await transaction.select<UserRow>(
      `SELECT * FROM ${USERS} WHERE (source = 'config' AND disabled = :disabled)` +
        (subjects.size ? ' OR subject IN (:subjects) OR username_key IN (:usernameKeys)' : ''),
      { disabled: false, subjects: [...subjects], usernameKeys },
    );
    const bySubject = new Map(rows.map((row) => [row.subject, row]));
    const retiring = rows.filter((row) => row.source === 'config' && !row.disabled && !subjects.has(row.subject));
    const retiringSubjects = new Set(retiring.map((row) => row.subject));

    // A configured username held by a user the configuration neither configures nor retires: refuse, change nothing.
    for (const row of desired) {
      const holder = rows.find(
        (other) =>
          other.username_key === row.username_key &&
          !subjects.has(other.subject) &&
          !retiringSubjects.has(other.subject),
      );
      if (holder) throw new UsernameTakenError(row.username, holder.subject, holder.source as DirectorySource);
    }

    // Free every username that moves first, so swaps and renames never trip the unique index half-way.
    const moving = [
      ...retiring.map((row) => row.subject),
      ...desired
        .filter((row) => bySubject.has(row.subject) && bySubject.get(row.subject)!.username_key !== row.username_key)
        .map((row) => row.subject),
    ];
    if (moving.length)
      await transaction.write(`UPDATE ${USERS} SET username_key = NULL WHERE subject IN (:moving)`, { moving });

    if (retiring.length) {
      await transaction.write(
        `UPDATE ${USERS} SET disabled = :disabled, updated_at = :now WHERE subject IN (:subjects)`,
        {
          disabled: true,
          now,
          subjects: [...retiringSubjects],
        },
      );
      result.users.disabled = retiring.length;
    }
    const updated = USER_COLUMNS.filter((column) => column !== 'subject' && column !== 'created_at');
    for (const row of desired) {
      const existing = bySubject.get(row.subject);
      if (!existing) {
        await transaction.write(insertSql(USERS, USER_COLUMNS), { ...row, created_at: now, updated_at: now });
        result.users.created++;
      } else if (sameColumns(existing, row)) {
        result.users.unchanged++;
      } else {
        if (existing.source !== 'config') result.takenOver.push(`user ${row.subject}`);
        await transaction.write(updateSql(USERS, updated, 'subject'), { ...row, updated_at: now });
        result.users.updated++;
      }
    }
  }

  async #seedClients(
    seedClients: Omit<ClientInput, 'source' | 'disabled'>[],
    transaction: DatabaseTransaction,
    result: SeedResult,
  ): Promise<void> {
    const now = this.#clock.now();
    const desired = seedClients.map((client) => clientColumns({ ...client, disabled: false, source: 'config' }));
    const ids = new Set(desired.map((row) => row.client_id));
    const rows = await transaction.select<ClientRow>(
      `SELECT * FROM ${CLIENTS} WHERE (source = 'config' AND disabled = :disabled)${ids.size ? ' OR client_id IN (:ids)' : ''}`,
      { disabled: false, ids: [...ids] },
    );
    const byId = new Map(rows.map((row) => [row.client_id, row]));
    const retiring = rows
      .filter((row) => row.source === 'config' && !row.disabled && !ids.has(row.client_id))
      .map((row) => row.client_id);
    if (retiring.length) {
      await transaction.write(
        `UPDATE ${CLIENTS} SET disabled = :disabled, updated_at = :now WHERE client_id IN (:retiring)`,
        { disabled: true, now, retiring },
      );
      result.clients.disabled = retiring.length;
    }
    const updated = CLIENT_COLUMNS.filter((column) => column !== 'client_id' && column !== 'created_at');
    for (const row of desired) {
      const existing = byId.get(row.client_id);
      if (!existing) {
        await transaction.write(insertSql(CLIENTS, CLIENT_COLUMNS), { ...row, created_at: now, updated_at: now });
        result.clients.created++;
      } else if (sameColumns(existing, row)) {
        result.clients.unchanged++;
      } else {
        if (existing.source !== 'config') result.takenOver.push(`client ${row.client_id}`);
        await transaction.write(updateSql(CLIENTS, updated, 'client_id'), { ...row, updated_at: now });
        result.clients.updated++;
      }
    }
  }
}

function emptyCounts(): SeedCounts {
  return { created: 0, updated: 0, unchanged: 0, disabled: 0 };
}
