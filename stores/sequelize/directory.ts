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
import { DataTypes, Op, QueryTypes, Transaction, UniqueConstraintError, type Model, type ModelStatic, type Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { dialectOf } from './connection.js';

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
    super(`username "${username}" is already used by user "${holder}"${holderSource ? ` (source ${holderSource})` : ''}`);
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

type UserModel = ModelStatic<Model<UserRow, UserRow>>;
type ClientModel = ModelStatic<Model<ClientRow, ClientRow>>;

const USER_MODEL = 'GatehouseDirectoryUser';
const CLIENT_MODEL = 'GatehouseDirectoryClient';
const LOCK_NAME = 'gatehouse_directory';
const LOCK_KEY = 7_402_110_332; // pg_advisory_xact_lock key, next to the migrations' one

/** The tables' models, defined once per connection (never synced: the migration owns the schema). */
function models(sequelize: Sequelize): { users: UserModel; clients: ClientModel } {
  if (!sequelize.isDefined(USER_MODEL)) {
    const date = DataTypes.DATE(3);
    sequelize.define<Model<UserRow, UserRow>>(
      USER_MODEL,
      {
        subject: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
        username: { type: DataTypes.STRING(255), allowNull: false },
        username_key: { type: DataTypes.STRING(255), allowNull: true },
        password_hash: { type: DataTypes.STRING(255), allowNull: true },
        claims: { type: DataTypes.TEXT, allowNull: false },
        roles: { type: DataTypes.TEXT, allowNull: false },
        disabled: { type: DataTypes.BOOLEAN, allowNull: false },
        source: { type: DataTypes.STRING(16), allowNull: false },
        created_at: { type: date, allowNull: false },
        updated_at: { type: date, allowNull: false },
      },
      { tableName: 'gatehouse_users', timestamps: false },
    );
    sequelize.define<Model<ClientRow, ClientRow>>(
      CLIENT_MODEL,
      {
        client_id: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
        metadata: { type: DataTypes.TEXT, allowNull: false },
        settings: { type: DataTypes.TEXT, allowNull: false },
        disabled: { type: DataTypes.BOOLEAN, allowNull: false },
        source: { type: DataTypes.STRING(16), allowNull: false },
        created_at: { type: date, allowNull: false },
        updated_at: { type: date, allowNull: false },
      },
      { tableName: 'gatehouse_clients', timestamps: false },
    );
  }
  return { users: sequelize.model(USER_MODEL) as UserModel, clients: sequelize.model(CLIENT_MODEL) as ClientModel };
}

/** JSON with object keys sorted, so equal values always give equal text (and "changed?" is a string compare). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
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
  readonly #clock: Clock;
  readonly #users: UserModel;
  readonly #clients: ClientModel;

  constructor(sequelize: Sequelize, clock: Clock) {
    this.#sequelize = sequelize;
    this.#clock = clock;
    ({ users: this.#users, clients: this.#clients } = models(sequelize));
  }

  // ---- users ----

  /** The user with this subject (enabled or not), or null. */
  async getUser(subject: string): Promise<UserRecord | null> {
    const row = (await this.#users.findByPk(subject, { raw: true })) as unknown as UserRow | null;
    return row ? toUser(row) : null;
  }

  /** The enabled user with this username (case-insensitive), or null. */
  async findEnabledUserByUsername(username: string): Promise<UserRecord | null> {
    const row = (await this.#users.findOne({ where: { username_key: username.toLowerCase(), disabled: false }, raw: true })) as unknown as UserRow | null;
    return row ? toUser(row) : null;
  }

  /** Every user, by subject; `limit` caps the list. */
  async listUsers(options: { enabledOnly?: boolean; disabledOnly?: boolean; source?: UserRecord['source']; limit?: number } = {}): Promise<UserRecord[]> {
    const where: Record<string, unknown> = {};
    if (options.enabledOnly) where.disabled = false;
    if (options.disabledOnly) where.disabled = true;
    if (options.source) where.source = options.source;
    const rows = (await this.#users.findAll({
      where,
      order: [['subject', 'ASC']],
      limit: options.limit,
      raw: true,
    })) as unknown as UserRow[];
    return rows.map(toUser);
  }

  /**
   * Inserts the user (with `user.source`) or updates every field of the existing one (its source and creation time
   * stay). Throws UsernameTakenError when another enabled user has the username.
   */
  async saveUser(user: UserInput): Promise<SaveOutcome> {
    const columns = userColumns(user);
    return this.#sequelize.transaction(this.#transactionOptions(), async (transaction) => {
      if (columns.username_key) {
        const holder = (await this.#users.findOne({
          where: { username_key: columns.username_key, subject: { [Op.ne]: user.subject } },
          raw: true,
          transaction,
        })) as unknown as UserRow | null;
        if (holder) throw new UsernameTakenError(user.username, holder.subject, holder.source as DirectorySource);
      }
      const existing = (await this.#users.findByPk(user.subject, { raw: true, transaction })) as unknown as UserRow | null;
      const now = this.#clock.now();
      try {
        if (!existing) {
          await this.#users.create({ ...columns, created_at: now, updated_at: now }, { transaction });
          return 'created';
        }
        const { source: _source, ...changes } = columns;
        if (sameColumns(existing, changes)) return 'unchanged';
        await this.#users.update({ ...changes, updated_at: now }, { where: { subject: user.subject }, transaction });
        return 'updated';
      } catch (error) {
        if (error instanceof UniqueConstraintError) throw new UsernameTakenError(user.username, '(another user)');
        throw error;
      }
    });
  }

  /** Deletes the user; false when there was none. */
  async deleteUser(subject: string): Promise<boolean> {
    return (await this.#users.destroy({ where: { subject } })) > 0;
  }

  // ---- clients ----

  /** The client with this id (enabled or not), or null. */
  async getClient(clientId: string): Promise<ClientRecord | null> {
    const row = (await this.#clients.findByPk(clientId, { raw: true })) as unknown as ClientRow | null;
    return row ? toClient(row) : null;
  }

  async listClients(options: { enabledOnly?: boolean } = {}): Promise<ClientRecord[]> {
    const rows = (await this.#clients.findAll({ where: options.enabledOnly ? { disabled: false } : {}, order: [['client_id', 'ASC']], raw: true })) as unknown as ClientRow[];
    return rows.map(toClient);
  }

  /** Inserts the client (with `client.source`) or replaces the existing one's metadata, settings and flag. */
  async saveClient(client: ClientInput): Promise<SaveOutcome> {
    const columns = clientColumns(client);
    return this.#sequelize.transaction(this.#transactionOptions(), async (transaction) => {
      const existing = (await this.#clients.findByPk(client.clientId, { raw: true, transaction })) as unknown as ClientRow | null;
      const now = this.#clock.now();
      if (!existing) {
        await this.#clients.create({ ...columns, created_at: now, updated_at: now }, { transaction });
        return 'created';
      }
      const { source: _source, ...changes } = columns;
      if (sameColumns(existing, changes)) return 'unchanged';
      await this.#clients.update({ ...changes, updated_at: now }, { where: { client_id: client.clientId }, transaction });
      return 'updated';
    });
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return (await this.#clients.destroy({ where: { client_id: clientId } })) > 0;
  }

  // ---- seeding ----

  /**
   * Applies the configured users and clients (see the file comment). Throws UsernameTakenError, before writing
   * anything, when a configured username belongs to a user the configuration does not own.
   */
  async applySeed(seed: { users: Omit<UserInput, 'source' | 'disabled'>[]; clients: Omit<ClientInput, 'source' | 'disabled'>[] }): Promise<SeedResult> {
    return this.#withSeedLock(() =>
      this.#sequelize.transaction(this.#transactionOptions(), async (transaction) => {
        const result: SeedResult = { users: emptyCounts(), clients: emptyCounts(), takenOver: [] };
        await this.#seedUsers(seed.users, transaction, result);
        await this.#seedClients(seed.clients, transaction, result);
        return result;
      }),
    );
  }

  async #seedUsers(seedUsers: Omit<UserInput, 'source' | 'disabled'>[], transaction: Transaction, result: SeedResult): Promise<void> {
    const now = this.#clock.now();
    const desired = seedUsers.map((user) => userColumns({ ...user, disabled: false, source: 'config' }));
    const subjects = new Set(desired.map((row) => row.subject));
    const rows = (await this.#users.findAll({
      where: {
        [Op.or]: [
          { source: 'config', disabled: false },
          { subject: { [Op.in]: [...subjects] } },
          { username_key: { [Op.in]: desired.map((row) => row.username_key!) } },
        ],
      },
      raw: true,
      transaction,
    })) as unknown as UserRow[];
    const bySubject = new Map(rows.map((row) => [row.subject, row]));
    const retiring = rows.filter((row) => row.source === 'config' && !row.disabled && !subjects.has(row.subject));
    const retiringSubjects = new Set(retiring.map((row) => row.subject));

    // A configured username held by a user the configuration neither configures nor retires: refuse, change nothing.
    for (const row of desired) {
      const holder = rows.find((other) => other.username_key === row.username_key && !subjects.has(other.subject) && !retiringSubjects.has(other.subject));
      if (holder) throw new UsernameTakenError(row.username, holder.subject, holder.source as DirectorySource);
    }

    // Free every username that moves first, so swaps and renames never trip the unique index half-way.
    const moving = [
      ...retiring.map((row) => row.subject),
      ...desired.filter((row) => bySubject.has(row.subject) && bySubject.get(row.subject)!.username_key !== row.username_key).map((row) => row.subject),
    ];
    if (moving.length) await this.#users.update({ username_key: null }, { where: { subject: { [Op.in]: moving } }, transaction });

    if (retiring.length) {
      await this.#users.update({ disabled: true, updated_at: now }, { where: { subject: { [Op.in]: [...retiringSubjects] } }, transaction });
      result.users.disabled = retiring.length;
    }
    for (const row of desired) {
      const existing = bySubject.get(row.subject);
      if (!existing) {
        await this.#users.create({ ...row, created_at: now, updated_at: now }, { transaction });
        result.users.created++;
      } else if (sameColumns(existing, row)) {
        result.users.unchanged++;
      } else {
        if (existing.source !== 'config') result.takenOver.push(`user ${row.subject}`);
        await this.#users.update({ ...row, updated_at: now }, { where: { subject: row.subject }, transaction });
        result.users.updated++;
      }
    }
  }

  async #seedClients(seedClients: Omit<ClientInput, 'source' | 'disabled'>[], transaction: Transaction, result: SeedResult): Promise<void> {
    const now = this.#clock.now();
    const desired = seedClients.map((client) => clientColumns({ ...client, disabled: false, source: 'config' }));
    const ids = new Set(desired.map((row) => row.client_id));
    const rows = (await this.#clients.findAll({
      where: { [Op.or]: [{ source: 'config', disabled: false }, { client_id: { [Op.in]: [...ids] } }] },
      raw: true,
      transaction,
    })) as unknown as ClientRow[];
    const byId = new Map(rows.map((row) => [row.client_id, row]));
    const retiring = rows.filter((row) => row.source === 'config' && !row.disabled && !ids.has(row.client_id)).map((row) => row.client_id);
    if (retiring.length) {
      await this.#clients.update({ disabled: true, updated_at: now }, { where: { client_id: { [Op.in]: retiring } }, transaction });
      result.clients.disabled = retiring.length;
    }
    for (const row of desired) {
      const existing = byId.get(row.client_id);
      if (!existing) {
        await this.#clients.create({ ...row, created_at: now, updated_at: now }, { transaction });
        result.clients.created++;
      } else if (sameColumns(existing, row)) {
        result.clients.unchanged++;
      } else {
        if (existing.source !== 'config') result.takenOver.push(`client ${row.client_id}`);
        await this.#clients.update({ ...row, updated_at: now }, { where: { client_id: row.client_id }, transaction });
        result.clients.updated++;
      }
    }
  }

  /** SQLite: take the write lock up front (a deferred transaction that upgrades later can fail at once with BUSY). */
  #transactionOptions(): { type?: Transaction.TYPES } {
    return dialectOf(this.#sequelize) === 'sqlite' ? { type: Transaction.TYPES.IMMEDIATE } : {};
  }

  /**
   * Seeding instances queue behind one lock, held on a connection of its own until the seed has committed (PostgreSQL:
   * a transaction-scoped advisory lock; MariaDB/MySQL: a named lock). SQLite serializes writers by itself.
   */
  async #withSeedLock<T>(work: () => Promise<T>): Promise<T> {
    const dialect = dialectOf(this.#sequelize);
    if (dialect === 'sqlite') return work();
    return this.#sequelize.transaction(async (transaction) => {
      if (dialect === 'postgres') {
        await this.#sequelize.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`, { transaction, type: QueryTypes.SELECT });
        return work();
      }
      await this.#sequelize.query(`SELECT GET_LOCK('${LOCK_NAME}', 120) AS locked`, { transaction, type: QueryTypes.SELECT });
      try {
        return await work();
      } finally {
        await this.#sequelize.query(`SELECT RELEASE_LOCK('${LOCK_NAME}')`, { transaction, type: QueryTypes.SELECT });
      }
    });
  }
}

function emptyCounts(): SeedCounts {
  return { created: 0, updated: 0, unchanged: 0, disabled: 0 };
}
