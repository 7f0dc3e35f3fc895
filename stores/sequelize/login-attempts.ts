/**
 * Sign-in counters and locks (table from migration 0006), one row per key: how many failures a key has had in its
 * current window, its escalation level (`lockouts`) and the lock it is under (`locked_until`). The keys and what
 * they mean belong to the callers (server/provider/login-throttle.ts, device-code-throttle.ts); this module only
 * counts, locks and forgets, through the database gateway.
 *
 * Every change is a single statement, so concurrent requests on several instances each count, and of several that
 * find a key at its limit only one starts the lock (the UPDATE is conditional on the row not being locked yet).
 */
import type { Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { Database } from './database.js';

const TABLE = 'login_attempts';
const COLUMNS = 'failures, window_start, lockouts, locked_until, updated_at';

export interface AttemptRow {
  key: string;
  /** Failures counted in the current window. */
  failures: number;
  windowStart: Date;
  /** The escalation level of the latest lock (0: never locked, or forgiven). */
  lockouts: number;
  /** The latest lock's end (in the past once it has run out), or null. */
  lockedUntil: Date | null;
  updatedAt: Date;
}

/** A simple doubling lock for one key (`lockIfReached`; the device-code throttle's). */
export interface ThrottlePolicy {
  /** Failures within `window` seconds that start a lockout. */
  maxFailures: number;
  window: number;
  /** First lockout, in seconds; each further one doubles, up to `maxLockout`. */
  lockout: number;
  maxLockout: number;
}

interface RawRow {
  key: string;
  failures: number | string;
  window_start: unknown;
  lockouts: number | string;
  locked_until: unknown;
  updated_at: unknown;
}

const date = (value: unknown) => (value instanceof Date ? value : new Date(String(value)));

function fromRow(row: RawRow): AttemptRow {
  return {
    key: row.key,
    failures: Number(row.failures),
    windowStart: date(row.window_start),
    lockouts: Number(row.lockouts),
    lockedUntil: row.locked_until === null || row.locked_until === undefined ? null : date(row.locked_until),
    updatedAt: date(row.updated_at),
  };
}

export class LoginAttempts {
  readonly #db: Database;
  /** `key` is a reserved word on MySQL/MariaDB: always quoted. */
  readonly #key: string;

  constructor(
    sequelize: Sequelize,
    private readonly clock: Clock,
  ) {
    this.#db = Database.of(sequelize);
    this.#key = this.#db.quote('key');
  }

  /** The rows of these keys that exist, by key. */
  async read(keys: string[]): Promise<Map<string, AttemptRow>> {
    if (keys.length === 0) return new Map();
    const rows = await this.#db.select<RawRow>(
      `SELECT ${this.#key}, ${COLUMNS} FROM ${TABLE} WHERE ${this.#key} IN (:keys)`,
      { keys },
    );
    return new Map(rows.map((row) => [row.key, fromRow(row)]));
  }

  /** Every row whose key starts with `prefix` (administration: a user's rows). */
  async readPrefixed(prefix: string): Promise<AttemptRow[]> {
    const rows = await this.#db.select<RawRow>(
      `SELECT ${this.#key}, ${COLUMNS} FROM ${TABLE} WHERE SUBSTR(${this.#key}, 1, :length) = :prefix ORDER BY ${this.#key}`,
      { prefix, length: prefix.length },
    );
    return rows.map(fromRow);
  }

  /**
   * Counts one failure against each key that is not locked now (a missing key starts at 1; a key whose window began
   * more than its `window` seconds ago starts a new window at 1). Locked keys are left as they are.
   */
  async charge(entries: { key: string; window: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.clock.now();
    const values = entries.map((_, i) => `(:k${i}, 1, :now, 0, :now)`).join(', ');
    const replacements = {
      ...Object.fromEntries(
        entries.flatMap(({ key, window }, i) => [
          [`k${i}`, key],
          [`f${i}`, new Date(now.getTime() - window * 1000)],
        ]),
      ),
      now,
    };
    const mysql = this.#db.mysqlFamily;
    const column = (name: string) => (mysql ? name : `${TABLE}.${name}`);
    // The key's current window began longer ago than its own window (each comparison against a plain timestamp).
    const expired = `(${entries.map((_, i) => `(${column(this.#key)} = :k${i} AND ${column('window_start')} < :f${i})`).join(' OR ')})`;
    const insert = `INSERT INTO ${TABLE} (${this.#key}, failures, window_start, lockouts, updated_at) VALUES ${values}`;
    const sql = mysql
      ? // MySQL applies the assignments left to right: `failures` reads the old window_start, as intended.
        `${insert} ON DUPLICATE KEY UPDATE
           failures = IF(locked_until > :now, failures, IF(${expired}, 1, failures + 1)),
           window_start = IF(locked_until > :now, window_start, IF(${expired}, :now, window_start)),
           updated_at = IF(locked_until > :now, updated_at, :now)`
      : `${insert} ON CONFLICT (${this.#key}) DO UPDATE SET
           failures = CASE WHEN ${expired} THEN 1 ELSE ${TABLE}.failures + 1 END,
           window_start = CASE WHEN ${expired} THEN :now ELSE ${TABLE}.window_start END,
           updated_at = :now
         WHERE ${TABLE}.locked_until IS NULL OR ${TABLE}.locked_until <= :now`;
    await this.#db.write(sql, replacements);
  }

  /**
   * Locks a key until `until` at escalation level `level`, if it still has at least `threshold` failures and is not
   * locked already; its count starts again from 0. Resolves to whether this call started the lock.
   */
  async lock(key: string, options: { threshold: number; until: Date; level: number }): Promise<boolean> {
    const now = this.clock.now();
    const changed = await this.#db.write(
      `UPDATE ${TABLE} SET lockouts = :level, failures = 0, window_start = :now, locked_until = :until, updated_at = :now
       WHERE ${this.#key} = :key AND failures >= :threshold AND (locked_until IS NULL OR locked_until <= :now)`,
      { key, now, until: options.until, level: options.level, threshold: options.threshold },
    );
    return changed > 0;
  }

  /**
   * After a successful sign-in: `reset` keys forget their count and their escalation, `resetCount` keys only their
   * count. A running lock runs on.
   */
  async settle(options: { reset?: string[]; resetCount?: string[] }): Promise<void> {
    const { reset = [], resetCount = [] } = options;
    const keys = [...reset, ...resetCount];
    if (keys.length === 0) return;
    await this.#db.write(
      `UPDATE ${TABLE} SET failures = 0, lockouts = CASE WHEN ${reset.length ? `${this.#key} IN (:reset)` : '1 = 0'} THEN 0 ELSE lockouts END, updated_at = :now
       WHERE ${this.#key} IN (:keys)`,
      { keys, reset, now: this.clock.now() },
    );
  }

  /** Deletes these keys and every key starting with one of `prefixes`; resolves to how many rows went. */
  async remove(keys: string[], prefixes: string[] = []): Promise<number> {
    const conditions = [
      ...(keys.length ? [`${this.#key} IN (:keys)`] : []),
      ...prefixes.map((_, i) => `SUBSTR(${this.#key}, 1, :length${i}) = :prefix${i}`),
    ];
    if (conditions.length === 0) return 0;
    const replacements = {
      keys,
      ...Object.fromEntries(
        prefixes.flatMap((prefix, i) => [
          [`prefix${i}`, prefix],
          [`length${i}`, prefix.length],
        ]),
      ),
    };
    return this.#db.write(`DELETE FROM ${TABLE} WHERE ${conditions.join(' OR ')}`, replacements);
  }

  /** The latest lock among these keys that is still running, or null. */
  async lockedUntil(keys: string[]): Promise<Date | null> {
    const now = this.clock.now().getTime();
    let latest: Date | null = null;
    for (const row of (await this.read(keys)).values()) {
      if (row.lockedUntil && row.lockedUntil.getTime() > now && (!latest || row.lockedUntil > latest))
        latest = row.lockedUntil;
    }
    return latest;
  }

  /**
   * After a failure of `key` was counted (`charge`): when it has reached `maxFailures` and is not locked, locks it for
   * `lockout` × 2^level seconds up to `maxLockout` (the level goes up when the previous lock ended less than
   * `maxLockout` ago, else starts again).
   */
  async lockIfReached(key: string, policy: ThrottlePolicy): Promise<void> {
    const row = (await this.read([key])).get(key);
    const now = this.clock.now().getTime();
    if (!row || (row.lockedUntil && row.lockedUntil.getTime() > now) || row.failures < policy.maxFailures) return;
    const level = row.lockedUntil && row.lockedUntil.getTime() > now - policy.maxLockout * 1000 ? row.lockouts : 0;
    const seconds = Math.min(policy.lockout * 2 ** level, policy.maxLockout);
    await this.lock(key, { threshold: policy.maxFailures, until: new Date(now + seconds * 1000), level: level + 1 });
  }

  /**
   * Deletes rows untouched for `olderThan` seconds whose lock has run out (housekeeping by the sweeper); rows whose key
   * starts with `keepLonger.prefix` are kept for `keepLonger.olderThan` seconds instead.
   */
  async prune(olderThan: number, keepLonger?: { prefix: string; olderThan: number }): Promise<void> {
    const now = this.clock.now();
    const before = new Date(now.getTime() - olderThan * 1000);
    const longer = keepLonger ? ` AND (SUBSTR(${this.#key}, 1, :length) <> :prefix OR updated_at < :longBefore)` : '';
    await this.#db.write(
      `DELETE FROM ${TABLE} WHERE updated_at < :before AND (locked_until IS NULL OR locked_until < :now)${longer}`,
      {
        before,
        now,
        ...(keepLonger
          ? {
              prefix: keepLonger.prefix,
              length: keepLonger.prefix.length,
              longBefore: new Date(now.getTime() - keepLonger.olderThan * 1000),
            }
          : {}),
      },
    );
  }
}
