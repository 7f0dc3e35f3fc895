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
const INSERT = `INSERT INTO ${TABLE} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((column) => `:${column}`).join(', ')})`;

/** One atomic statement per dialect: concurrent upserts of one id never fail with a duplicate key. */
function upsertSql(sequelize: Sequelize): string {
  if (dialectOf(sequelize) === 'mysql' || dialectOf(sequelize) === 'mariadb') {
    return `${INSERT} ON DUPLICATE KEY UPDATE ${UPDATED.map((column) => `${column} = VALUES(${column})`).join(', ')}`;
  }
  return `${INSERT} ON CONFLICT (model, id) DO UPDATE SET ${UPDATED.map((column) => `${column} = excluded.${column}`).join(', ')}`;
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
  readonly #upsertSql: string;

  constructor(model: string, sequelize: Sequelize, clock: Clock) {
    this.model = model;
    this.#sequelize = sequelize;
    this.#clock = clock;
    this.#upsertSql = upsertSql(sequelize);
  }

  /** Insert or replace. `expiresIn` in seconds; undefined stores no expiry. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const now = this.#clock.now();
    const replacements: Record<string, unknown> = {
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grant_id: stringOrNull(payload.grantId),
      uid: stringOrNull(payload.uid),
      user_code: stringOrNull(payload.userCode),
      account_id: stringOrNull(payload.accountId),
      session_uid: stringOrNull(payload.sessionUid),
      client_id: stringOrNull(payload.clientId),
      expires_at: typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null,
      consumed_at: consumedAt(payload.consumed, now),
    };
    await this.#sequelize.query(this.#upsertSql, { replacements, type: QueryTypes.INSERT });
  }

  /** The live payload with this id (with `consumed` set once consumed), or undefined. */
  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findOne({ id });
  }

  /** The live Session payload with this uid, or undefined. */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findOne({ uid });
  }

  /** The live DeviceCode payload with this user code, or undefined. */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findOne({ user_code: userCode });
  }

  // The hot paths (every token use) run fixed SQL through sequelize.query: the model API's query building cost a
  // third of the server's CPU on userinfo and refresh (bench/compare.ts profiles).

  /** Marks the row consumed now; `find` then returns a truthy `consumed`. */
  async consume(id: string): Promise<void> {
    await this.#sequelize.query(`UPDATE ${TABLE} SET consumed_at = :now WHERE model = :model AND id = :id`, {
      replacements: { now: this.#clock.now(), model: this.model, id },
      type: QueryTypes.UPDATE,
    });
  }

  /** Deletes the row. A missing id is not an error. */
  async destroy(id: string): Promise<void> {
    await this.#sequelize.query(`DELETE FROM ${TABLE} WHERE model = :model AND id = :id`, { replacements: { model: this.model, id } });
  }

  /** Deletes this model's rows that belong to the grant. */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#sequelize.query(`DELETE FROM ${TABLE} WHERE model = :model AND grant_id = :grantId`, { replacements: { model: this.model, grantId } });
  }

  async #findOne(where: { id: string } | { uid: string } | { user_code: string }): Promise<AdapterPayload | undefined> {
    const [column, value] = Object.entries(where)[0] as ['id' | 'uid' | 'user_code', string];
    const rows = await this.#sequelize.query<Pick<PayloadRow, 'payload' | 'consumed_at'>>(
      `SELECT payload, consumed_at FROM ${TABLE} WHERE model = :model AND ${column} = :value AND (expires_at IS NULL OR expires_at > :now) LIMIT 1`,
      { replacements: { model: this.model, value, now: this.#clock.now() }, type: QueryTypes.SELECT },
    );
    return rows[0] ? toPayload(rows[0]) : undefined;
  }
}

/** What oidc-provider's `adapter` option takes: `new Adapter(modelName)`. */
export type OperationalAdapterClass = new (model: string) => SequelizeOperationalAdapter;

/** An adapter class bound to this connection and clock, for the provider's `adapter` option. */
export function createOperationalAdapter(sequelize: Sequelize, clock: Clock): OperationalAdapterClass {
  return class OperationalAdapter extends SequelizeOperationalAdapter {
    constructor(model: string) {
      super(model, sequelize, clock);
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
