/**
 * oidc-provider's storage adapter on the Gatehouse database (table `oidc_payloads`, migration 0001).
 *
 * One row per (model, id). The payload is stored as JSON, as the provider gave it; the fields the adapter looks
 * rows up by are copied into indexed columns. Expiry and consumption are columns too, so a row past `expires_at`
 * is invisible (the provider re-checks `exp` itself) and `consume` is one UPDATE.
 *
 * Time comes from the clock passed in. Database errors propagate to the provider unchanged.
 */
import { DataTypes, Op, QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Clock } from '../session-store.js';
import { dialectOf } from './connection.js';
import { directSql, type DirectSql } from './direct-sql.js';

const TABLE = 'oidc_payloads';
const MODEL = 'GatehouseOidcPayload';

interface PayloadRow {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  account_id: string | null;
  session_uid: string | null;
  client_id: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
}

type PayloadModel = ModelStatic<Model<PayloadRow, PayloadRow>>;

/** The table's Sequelize model, defined once per connection (never synced: the migration owns the schema). */
function payloadModel(sequelize: Sequelize): PayloadModel {
  if (sequelize.isDefined(MODEL)) return sequelize.model(MODEL) as PayloadModel;
  return sequelize.define<Model<PayloadRow, PayloadRow>>(
    MODEL,
    {
      model: { type: DataTypes.STRING(64), allowNull: false, primaryKey: true },
      id: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
      payload: { type: DataTypes.TEXT, allowNull: false },
      grant_id: { type: DataTypes.STRING(255), allowNull: true },
      uid: { type: DataTypes.STRING(255), allowNull: true },
      user_code: { type: DataTypes.STRING(255), allowNull: true },
      account_id: { type: DataTypes.STRING(255), allowNull: true },
      session_uid: { type: DataTypes.STRING(255), allowNull: true },
      client_id: { type: DataTypes.STRING(255), allowNull: true },
      expires_at: { type: DataTypes.DATE(3), allowNull: true },
      consumed_at: { type: DataTypes.DATE(3), allowNull: true },
    },
    { tableName: TABLE, timestamps: false },
  );
}

const COLUMNS = ['model', 'id', 'payload', 'grant_id', 'uid', 'user_code', 'account_id', 'session_uid', 'client_id', 'expires_at', 'consumed_at'];
const UPDATED = COLUMNS.filter((column) => column !== 'model' && column !== 'id');
const LOOKUP_COLUMNS = ['id', 'uid', 'user_code'] as const;
type LookupColumn = (typeof LOOKUP_COLUMNS)[number];

/** The adapter's statements in one dialect's SQL, with positional parameters in the order the methods bind them. */
interface Statements {
  upsert: string;
  find: Record<LookupColumn, string>;
  consume: string;
  destroy: string;
}

function statements(sequelize: Sequelize, sql: DirectSql): Statements {
  const $ = (n: number) => sql.param(n);
  const insert = `INSERT INTO ${TABLE} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_column, index) => $(index + 1)).join(', ')})`;
  // One atomic statement per dialect: concurrent upserts of one id never fail with a duplicate key.
  const upsert = dialectOf(sequelize) === 'mysql' || dialectOf(sequelize) === 'mariadb'
    ? `${insert} ON DUPLICATE KEY UPDATE ${UPDATED.map((column) => `${column} = VALUES(${column})`).join(', ')}`
    : `${insert} ON CONFLICT (model, id) DO UPDATE SET ${UPDATED.map((column) => `${column} = excluded.${column}`).join(', ')}`;
  const find = (column: LookupColumn) =>
    `SELECT payload, consumed_at FROM ${TABLE} WHERE model = ${$(1)} AND ${column} = ${$(2)} AND (expires_at IS NULL OR expires_at > ${$(3)}) LIMIT 1`;
  return {
    upsert,
    find: { id: find('id'), uid: find('uid'), user_code: find('user_code') },
    consume: `UPDATE ${TABLE} SET consumed_at = ${$(1)} WHERE model = ${$(2)} AND id = ${$(3)}`,
    destroy: `DELETE FROM ${TABLE} WHERE model = ${$(1)} AND id = ${$(2)}`,
  };
}

function asDate(value: Date | string | null): Date | null {
  if (value === null || value instanceof Date) return value;
  return new Date(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** `consumed` as the provider sets it (epoch seconds), or any other truthy marker (taken as now). */
function consumedAt(consumed: unknown, now: Date): Date | null {
  if (!consumed) return null;
  return typeof consumed === 'number' && Number.isFinite(consumed) ? new Date(consumed * 1000) : now;
}

function toPayload(row: Pick<PayloadRow, 'payload' | 'consumed_at'>): AdapterPayload {
  const payload = JSON.parse(row.payload) as AdapterPayload;
  const consumed = asDate(row.consumed_at);
  if (consumed) payload.consumed = Math.floor(consumed.getTime() / 1000);
  return payload;
}

/** One adapter per oidc-provider model name; every method touches only that model's rows. */
export class SequelizeOperationalAdapter implements Adapter {
  readonly model: string;
  readonly #sequelize: Sequelize;
  readonly #clock: Clock;
  readonly #sql: DirectSql;
  readonly #statements: Statements;

  constructor(model: string, sequelize: Sequelize, clock: Clock, direct: { sql: DirectSql; statements: Statements } = prepare(sequelize)) {
    this.model = model;
    this.#sequelize = sequelize;
    this.#clock = clock;
    this.#sql = direct.sql;
    this.#statements = direct.statements;
  }

  // The hot paths (every token use) run fixed SQL through the driver (direct-sql.ts): the model API's query building,
  // and then sequelize.query itself, cost most of the server's CPU on token endpoints (bench/compare.ts profiles).

  /** Insert or replace. `expiresIn` in seconds; undefined stores no expiry. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const now = this.#clock.now();
    const expiresAt = typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null;
    await this.#sql.run(this.#statements.upsert, [
      this.model,
      id,
      JSON.stringify(payload),
      stringOrNull(payload.grantId),
      stringOrNull(payload.uid),
      stringOrNull(payload.userCode),
      stringOrNull(payload.accountId),
      stringOrNull(payload.sessionUid),
      stringOrNull(payload.clientId),
      this.#sql.date(expiresAt),
      this.#sql.date(consumedAt(payload.consumed, now)),
    ]);
  }

  /** The live payload with this id (with `consumed` set once consumed), or undefined. */
  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findOne('id', id);
  }

  /** The live Session payload with this uid, or undefined. */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findOne('uid', uid);
  }

  /** The live DeviceCode payload with this user code, or undefined. */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findOne('user_code', userCode);
  }

  /** Marks the row consumed now; `find` then returns a truthy `consumed`. */
  async consume(id: string): Promise<void> {
    await this.#sql.run(this.#statements.consume, [this.#sql.date(this.#clock.now()), this.model, id]);
  }

  /** Deletes the row. A missing id is not an error. */
  async destroy(id: string): Promise<void> {
    await this.#sql.run(this.#statements.destroy, [this.model, id]);
  }

  /** Deletes this model's rows that belong to the grant. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#sequelize.query(`DELETE FROM ${TABLE} WHERE model = :model AND grant_id = :grantId`, { replacements: { model: this.model, grantId } });
  }

  async #findOne(column: LookupColumn, value: string): Promise<AdapterPayload | undefined> {
    const row = await this.#sql.get<Pick<PayloadRow, 'payload' | 'consumed_at'>>(this.#statements.find[column], [this.model, value, this.#sql.date(this.#clock.now())]);
    return row ? toPayload(row) : undefined;
  }
}

function prepare(sequelize: Sequelize): { sql: DirectSql; statements: Statements } {
  const sql = directSql(sequelize);
  return { sql, statements: statements(sequelize, sql) };
}

/** What oidc-provider's `adapter` option takes: `new Adapter(modelName)`. */
export type OperationalAdapterClass = new (model: string) => SequelizeOperationalAdapter;

/** An adapter class bound to this connection and clock, for the provider's `adapter` option. */
export function createOperationalAdapter(sequelize: Sequelize, clock: Clock): OperationalAdapterClass {
  const direct = prepare(sequelize);
  return class OperationalAdapter extends SequelizeOperationalAdapter {
    constructor(model: string) {
      super(model, sequelize, clock, direct);
    }
  };
}

/** Provider models whose rows belong to a grant (tokens and codes; not the Grant itself). */
export const GRANT_BOUND_MODELS = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'] as const;

/** Deletes every token and code of these grants in one statement per chunk (the grants themselves stay). */
export async function revokeGrantTokens(sequelize: Sequelize, grantIds: readonly string[]): Promise<void> {
  for (let start = 0; start < grantIds.length; start += 500) {
    await sequelize.query(`DELETE FROM ${TABLE} WHERE model IN (:models) AND grant_id IN (:grantIds)`, {
      replacements: { models: GRANT_BOUND_MODELS, grantIds: grantIds.slice(start, start + 500) },
      type: QueryTypes.BULKDELETE,
    });
  }
}

/** Deletes up to `limit` rows (any model) whose expiry is at or before `clock.now()`; resolves to how many. */
export async function removeExpiredOperationalRows(sequelize: Sequelize, clock: Clock, limit: number): Promise<number> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit: expected a positive integer, got ${limit}`);
  return payloadModel(sequelize).destroy({ where: { expires_at: { [Op.lte]: clock.now() } }, limit });
}
