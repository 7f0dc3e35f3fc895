/**
 * Failed sign-in counting (table from migration 0006). Every statement is a single atomic UPDATE or INSERT, so
 * concurrent requests on several instances count every failure and only one of them starts a lockout.
 */
import type { Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { Database } from './database.js';

const TABLE = 'login_attempts';

export interface ThrottlePolicy {
  /** Failures within `window` seconds that start a lockout. */
  maxFailures: number;
  window: number;
  /** First lockout, in seconds; each further one doubles, up to `maxLockout`. */
  lockout: number;
  maxLockout: number;
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

  /** The latest lock among these keys that is still running, or null. */
  async lockedUntil(keys: string[]): Promise<Date | null> {
    const rows = await this.#db.select<{ locked_until: unknown }>(
      `SELECT locked_until FROM ${TABLE} WHERE ${keys.map((_, i) => `${this.#key} = :k${i}`).join(' OR ')}`,
      Object.fromEntries(keys.map((key, i) => [`k${i}`, key])),
    );
    const now = this.clock.now().getTime();
    let latest: number | null = null;
    for (const row of rows) {
      if (row.locked_until === null || row.locked_until === undefined) continue;
      const until = new Date(row.locked_until as string).getTime();
      if (until > now && (latest === null || until > latest)) latest = until;
    }
    return latest === null ? null : new Date(latest);
  }

  /** Counts one failure; when it reaches the policy's limit, locks the key (doubling with every lockout). */
  async recordFailure(key: string, policy: ThrottlePolicy): Promise<void> {
    const now = this.clock.now();
    const insert = `INSERT INTO ${TABLE} (${this.#key}, failures, window_start, lockouts, updated_at) VALUES (:key, 0, :now, 0, :now)`;
    await this.#db.write(this.#db.insertOrIgnore(insert, [this.#key]), { key, now });
    const windowFloor = new Date(now.getTime() - policy.window * 1000);
    await this.#db.write(
      `UPDATE ${TABLE} SET
         failures = CASE WHEN window_start < :windowFloor THEN 1 ELSE failures + 1 END,
         window_start = CASE WHEN window_start < :windowFloor THEN :now ELSE window_start END,
         updated_at = :now
       WHERE ${this.#key} = :key`,
      { key, now, windowFloor },
    );
    const [row] = await this.#db.select<{ failures: number; lockouts: number }>(`SELECT failures, lockouts FROM ${TABLE} WHERE ${this.#key} = :key`, { key });
    if (!row || Number(row.failures) < policy.maxFailures) return;
    const seconds = Math.min(policy.lockout * 2 ** Number(row.lockouts), policy.maxLockout);
    await this.#db.write(
      `UPDATE ${TABLE} SET lockouts = lockouts + 1, failures = 0, window_start = :now, locked_until = :until, updated_at = :now
       WHERE ${this.#key} = :key AND failures >= :max`,
      { key, now, until: new Date(now.getTime() + seconds * 1000), max: policy.maxFailures },
    );
  }

  /** Forgets a key's failures (after a successful sign-in). */
  async reset(key: string): Promise<void> {
    await this.#db.write(`DELETE FROM ${TABLE} WHERE ${this.#key} = :key`, { key });
  }

  /** Deletes rows untouched for `olderThan` seconds whose lock has run out (housekeeping by the sweeper). */
  async prune(olderThan: number): Promise<void> {
    const now = this.clock.now();
    await this.#db.write(`DELETE FROM ${TABLE} WHERE updated_at < :before AND (locked_until IS NULL OR locked_until < :now)`, {
      before: new Date(now.getTime() - olderThan * 1000),
      now,
    });
  }
}
