/**
 * oidc-provider's storage adapter on the Gatehouse database (table `oidc_payloads`, migration 0001).
 *
 * One row per (model, id). The payload is stored as JSON, as the provider gave it; the fields the adapter looks
 * rows up by are copied into indexed columns. Expiry and consumption are columns too, so a row past `expires_at`
 * is invisible (the provider re-checks `exp` itself) and `consume` is one UPDATE.
 *
 * Time comes from the clock passed in. Database errors propagate to the provider unchanged.
 */
import type { Sequelize } from 'sequelize';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Clock } from '../session-store.js';
import { Database } from './database.js';
import { requestMemo, type MemoRow, type MemoTable } from './request-memo.js';

const TABLE = 'oidc_payloads';

type PayloadRow = MemoRow;

const COLUMNS = [
  'model',
  'id',
  'payload',
  'grant_id',
  'uid',
  'user_code',
  'account_id',
  'session_uid',
  'client_id',
  'expires_at',
  'consumed_at',
];
const UPDATED = COLUMNS.filter((column) => column !== 'model' && column !== 'id');
const LOOKUP_COLUMNS = ['id', 'uid', 'user_code'] as const;
type LookupColumn = (typeof LOOKUP_COLUMNS)[number];

/**
 * Models oidc-provider looks up with one value at once (introspection and revocation without a token type hint):
 * within a request, a look-up of one of them reads all three in one statement.
 */
const SAME_VALUE_MODELS = ['AccessToken', 'ClientCredentials', 'RefreshToken'];
/** Models whose rows name a Grant that the provider reads right after them: their look-ups bring the Grant along. */
const GRANT_READERS = new Set([
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/** A row of a look-up with its Grant (`withGrant`). */
interface RowWithGrant extends PayloadRow {
  model: string;
  grant_id: string | null;
  grant_payload: string | null;
  grant_consumed_at: Date | string | null;
}

/** The adapter's statements in one dialect's SQL, with positional parameters in the order the methods bind them. */
interface Statements {
  upsert: string;
  insertIfAbsent: string;
  removeExpired: string;
  find: Record<LookupColumn, string>;
  /** By model (the look-up's first model): its models' rows with this id, each with its live Grant. */
  withGrant: Map<string, { models: string[]; sql: string }>;
  consume: string;
  destroy: string;
}

/** Parameters: now (for the Grant), the models, the id, now. */
function withGrantSql(db: Database, models: readonly string[]): string {
  const $ = (n: number) => db.prepared.param(n);
  const live = (alias: string, n: number) => `(${alias}.expires_at IS NULL OR ${alias}.expires_at > ${$(n)})`;
  const modelList = models.map((_model, index) => $(index + 2)).join(', ');
  return (
    `SELECT t.model, t.payload, t.consumed_at, t.grant_id, g.payload AS grant_payload, g.consumed_at AS grant_consumed_at ` +
    `FROM ${TABLE} t LEFT JOIN ${TABLE} g ON g.model = 'Grant' AND g.id = t.grant_id AND ${live('g', 1)} ` +
    `WHERE t.model IN (${modelList}) AND t.id = ${$(models.length + 2)} AND ${live('t', models.length + 3)}`
  );
}

function withGrantStatements(db: Database): Map<string, { models: string[]; sql: string }> {
  const byModel = new Map<string, { models: string[]; sql: string }>();
  const together = { models: SAME_VALUE_MODELS, sql: withGrantSql(db, SAME_VALUE_MODELS) };
  for (const model of SAME_VALUE_MODELS) byModel.set(model, together);
  for (const model of GRANT_READERS)
    if (!byModel.has(model)) byModel.set(model, { models: [model], sql: withGrantSql(db, [model]) });
  return byModel;
}

function statements(db: Database): Statements {
  const $ = (n: number) => db.prepared.param(n);
  const insert = `INSERT INTO ${TABLE} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_column, index) => $(index + 1)).join(', ')})`;
  const find = (column: LookupColumn) =>
    `SELECT payload, consumed_at FROM ${TABLE} WHERE model = ${$(1)} AND ${column} = ${$(2)} AND (expires_at IS NULL OR expires_at > ${$(3)}) LIMIT 1`;
  return {
    // One atomic statement per dialect: concurrent upserts of one id never fail with a duplicate key.
    upsert: db.insertOrUpdate(insert, ['model', 'id'], UPDATED),
    // Changes one row when it inserted, none when a row with this id exists (MariaDB/MySQL: a no-op update counts 0).
    insertIfAbsent: db.insertOrIgnore(insert, ['model', 'id']),
    removeExpired: `DELETE FROM ${TABLE} WHERE model = ${$(1)} AND id = ${$(2)} AND expires_at <= ${$(3)}`,
    find: { id: find('id'), uid: find('uid'), user_code: find('user_code') },
    withGrant: withGrantStatements(db),
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

function toPayload(row: PayloadRow): AdapterPayload {
  const payload = JSON.parse(row.payload) as AdapterPayload;
  const consumed = asDate(row.consumed_at);
  if (consumed) payload.consumed = Math.floor(consumed.getTime() / 1000);
  return payload;
}

/** One adapter per oidc-provider model name; every method touches only that model's rows. */
export class SequelizeOperationalAdapter implements Adapter {
  readonly model: string;
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #statements: Statements;

  constructor(
    model: string,
    sequelize: Sequelize,
    clock: Clock,
    prepared: Statements = statements(Database.of(sequelize)),
  ) {
    this.model = model;
    this.#db = Database.of(sequelize);
    this.#clock = clock;
    this.#statements = prepared;
  }

  // The hot paths (every token use) run fixed SQL on the gateway's prepared fast path: the model API's query building,
  // and then sequelize.query itself, cost most of the server's CPU on token endpoints (bench/compare.ts profiles).

  /** Insert or replace. `expiresIn` in seconds; undefined stores no expiry. */
  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    await this.#writing(id, () => this.#db.prepared.run(this.#statements.upsert, this.#row(id, payload, expiresIn)));
  }

  /**
   * Inserts the row unless a live row with this id exists; resolves to true when this call inserted it. An expired
   * row is replaced. Atomic: of concurrent calls with one id, exactly one gets true (the replay check of DPoP proofs
   * and client assertions, server/provider/replay-detection.ts). `expiresIn` in seconds, as for `upsert`.
   */
  async insertIfAbsent(id: string, payload: AdapterPayload, expiresIn?: number): Promise<boolean> {
    const row = this.#row(id, payload, expiresIn);
    return this.#writing(id, async () => {
      if ((await this.#db.prepared.run(this.#statements.insertIfAbsent, row)) > 0) return true;
      // A row is there. Only an expired one may go, and only the call whose delete removed it inserts again: a call
      // that finds it gone (or live) lost to another call, which inserted or is about to.
      const removed = await this.#db.prepared.run(this.#statements.removeExpired, [this.model, id, this.#clock.now()]);
      return removed > 0 && (await this.#db.prepared.run(this.#statements.insertIfAbsent, row)) > 0;
    });
  }

  /**
   * The live payload with this id (with `consumed` set once consumed), or undefined. Within a request, a second look-up
   * of the same id is answered from the request's memo (request-memo.ts) unless the request wrote that row meanwhile.
   */
  async find(id: string): Promise<AdapterPayload | undefined> {
    const memo = requestMemo(this.#db);
    if (!memo) return this.#findOne('id', id);
    let entry = memo.get(this.model, id);
    if (!entry) {
      const together = this.#statements.withGrant.get(this.model);
      if (together) this.#lookUpWithGrant(memo, together, id);
      else memo.set(this.model, id, this.#findRow('id', id));
      entry = memo.get(this.model, id)!;
    }
    const row = await entry;
    return row ? toPayload(row) : undefined;
  }

  /**
   * One statement for the rows of `models` with this id and the Grant each names, kept in the memo: the other models'
   * look-ups of the same value and the provider's Grant.find that follows are answered without a statement.
   */
  #lookUpWithGrant(memo: MemoTable, together: { models: string[]; sql: string }, id: string): void {
    const now = this.#clock.now();
    const generation = memo.generation;
    const rows = this.#db.prepared.all<RowWithGrant>(together.sql, [now, ...together.models, id, now]);
    for (const model of together.models) {
      if (model !== this.model && memo.get(model, id)) continue;
      memo.set(
        model,
        id,
        rows.then((found) => found.find((row) => row.model === model)),
      );
    }
    void rows.then(
      (found) => {
        // Kept only if the request wrote nothing meanwhile (a write of the Grant would make this copy stale).
        if (memo.generation !== generation) return;
        for (const row of found) {
          if (row.grant_id === null || memo.get('Grant', row.grant_id)) continue;
          const grant =
            row.grant_payload === null ? undefined : { payload: row.grant_payload, consumed_at: row.grant_consumed_at };
          memo.set('Grant', row.grant_id, Promise.resolve(grant));
        }
      },
      () => undefined,
    );
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
    await this.#writing(id, () => this.#db.prepared.run(this.#statements.consume, [this.#clock.now(), this.model, id]));
  }

  /** Deletes the row. A missing id is not an error. */
  async destroy(id: string): Promise<void> {
    await this.#writing(id, () => this.#db.prepared.run(this.#statements.destroy, [this.model, id]));
  }

  /** Deletes this model's rows that belong to the grant. */
  async revokeByGrantId(grantId: string): Promise<void> {
    const memo = requestMemo(this.#db);
    memo?.forgetAll();
    try {
      await this.#db.write(`DELETE FROM ${TABLE} WHERE model = :model AND grant_id = :grantId`, {
        model: this.model,
        grantId,
      });
    } finally {
      memo?.forgetAll();
    }
  }

  /** Writes of the row `id`; the request's memo forgets the row before and after them. */
  async #writing<T>(id: string, write: () => Promise<T>): Promise<T> {
    const memo = requestMemo(this.#db);
    memo?.forget(this.model, id);
    try {
      return await write();
    } finally {
      memo?.forget(this.model, id);
    }
  }

  /** The parameters of `upsert` and `insertIfAbsent`, in COLUMNS order. */
  #row(id: string, payload: AdapterPayload, expiresIn: number | undefined): unknown[] {
    const now = this.#clock.now();
    const expiresAt = typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null;
    return [
      this.model,
      id,
      JSON.stringify(payload),
      stringOrNull(payload.grantId),
      stringOrNull(payload.uid),
      stringOrNull(payload.userCode),
      stringOrNull(payload.accountId),
      stringOrNull(payload.sessionUid),
      stringOrNull(payload.clientId),
      expiresAt,
      consumedAt(payload.consumed, now),
    ];
  }

  async #findOne(column: LookupColumn, value: string): Promise<AdapterPayload | undefined> {
    const row = await this.#findRow(column, value);
    return row ? toPayload(row) : undefined;
  }

  #findRow(column: LookupColumn, value: string): Promise<PayloadRow | undefined> {
    return this.#db.prepared.get<PayloadRow>(this.#statements.find[column], [this.model, value, this.#clock.now()]);
  }
}

/** What oidc-provider's `adapter` option takes: `new Adapter(modelName)`. */
export type OperationalAdapterClass = new (model: string) => SequelizeOperationalAdapter;

/** An adapter class bound to this connection and clock, for the provider's `adapter` option. */
export function createOperationalAdapter(sequelize: Sequelize, clock: Clock): OperationalAdapterClass {
  const prepared = statements(Database.of(sequelize));
  return class OperationalAdapter extends SequelizeOperationalAdapter {
    constructor(model: string) {
      super(model, sequelize, clock, prepared);
    }
  };
}

/** Provider models whose rows belong to a grant (tokens and codes; not the Grant itself). */
export const GRANT_BOUND_MODELS = [
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
] as const;

/** Deletes every token and code of these grants in one statement per chunk (the grants themselves stay). */
export async function revokeGrantTokens(sequelize: Sequelize, grantIds: readonly string[]): Promise<void> {
  const db = Database.of(sequelize);
  const memo = requestMemo(db);
  memo?.forgetAll();
  try {
    for (let start = 0; start < grantIds.length; start += 500) {
      await db.write(`DELETE FROM ${TABLE} WHERE model IN (:models) AND grant_id IN (:grantIds)`, {
        models: GRANT_BOUND_MODELS,
        grantIds: grantIds.slice(start, start + 500),
      });
    }
  } finally {
    memo?.forgetAll();
  }
}

/**
 * Deletes every row the provider keeps for a client that is gone: the rows carrying its client id (grants, tokens,
 * codes, pushed requests; not interactions, sessions or replay records, which carry none), so a client created later
 * with this id starts with none. Resolves to how many. One scan of the table: `client_id` has no index of its own,
 * which every token write would pay for to speed up a rare administrative act. MariaDB/MySQL run it under READ
 * COMMITTED, so the scan locks only the rows it deletes; SQLite holds its write lock for the scan. Measured on
 * 100,000 rows: 20–75 ms on SQLite, 17–22 ms on PostgreSQL, 49–63 ms on MariaDB.
 */
export async function revokeClientRecords(sequelize: Sequelize, clientId: string): Promise<number> {
  const db = Database.of(sequelize);
  const memo = requestMemo(db);
  memo?.forgetAll();
  try {
    return await db.transaction(
      (transaction) => transaction.write(`DELETE FROM ${TABLE} WHERE client_id = :clientId`, { clientId }),
      { isolation: 'read committed', deadlockAttempts: 3 },
    );
  } finally {
    memo?.forgetAll();
  }
}

/** Deletes up to `limit` rows (any model) whose expiry is at or before `clock.now()`; resolves to how many. */
export async function removeExpiredOperationalRows(sequelize: Sequelize, clock: Clock, limit: number): Promise<number> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit: expected a positive integer, got ${limit}`);
  const db = Database.of(sequelize);
  const expired = `expires_at <= :now`;
  // MariaDB/MySQL take a LIMIT on DELETE; SQLite (without that compile option) and PostgreSQL pick the rows by their
  // physical row id.
  const sql = db.mysqlFamily
    ? `DELETE FROM ${TABLE} WHERE ${expired} LIMIT ${limit}`
    : db.dialect === 'postgres'
      ? `DELETE FROM ${TABLE} WHERE ctid IN (SELECT ctid FROM ${TABLE} WHERE ${expired} LIMIT ${limit})`
      : `DELETE FROM ${TABLE} WHERE rowid IN (SELECT rowid FROM ${TABLE} WHERE ${expired} LIMIT ${limit})`;
  return db.write(sql, { now: clock.now() });
}
