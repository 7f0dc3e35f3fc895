/**
 * What the database gateway sent to the database, counted as it went: statements (reads and writes), commits and
 * round trips. Every statement of a Gatehouse connection passes one of two points, and both report here: Sequelize's
 * `afterQuery` hook (statements run through Sequelize, transaction control included) and the gateway's fast path
 * (prepared-path.ts). Retried attempts count again: each one went to the database.
 *
 * - read: a statement that only reads (SELECT, also `SELECT … FOR UPDATE` and lock functions).
 * - write: INSERT, UPDATE, DELETE, DDL, `UPDATE … RETURNING`.
 * - commit: a COMMIT, or a write outside a transaction (it commits on its own).
 * - round trip: anything sent and waited for: every statement, plus BEGIN, COMMIT, ROLLBACK, SET and PRAGMA.
 *
 * Counting is a few integer additions per statement; listeners (`observe`, for tests and debugging) are called only
 * when there are any.
 */

export interface DatabaseActivity {
  reads: number;
  writes: number;
  commits: number;
  roundTrips: number;
}

export type StatementKind = 'read' | 'write' | 'begin' | 'commit' | 'rollback' | 'control';

export interface StatementEvent {
  sql: string;
  kind: StatementKind;
  /** Bound values of a fast-path statement (Sequelize's statements carry theirs inlined in `sql`). */
  params?: readonly unknown[];
  inTransaction: boolean;
}

export type StatementListener = (event: StatementEvent) => void;

const BEGIN = /^(BEGIN|START TRANSACTION|SAVEPOINT)\b/i;
const COMMIT = /^(COMMIT|RELEASE)\b/i;
const ROLLBACK = /^ROLLBACK\b/i;
const CONTROL = /^(SET|PRAGMA|SHOW)\b/i;
const READ = /^(SELECT|VALUES|EXPLAIN)\b/i;

/** What kind of statement `sql` is, from its first word. */
export function statementKind(sql: string): StatementKind {
  const text = sql.trimStart();
  if (READ.test(text)) return 'read';
  if (/^WITH\b/i.test(text)) return /\b(INSERT|UPDATE|DELETE)\b/i.test(text) ? 'write' : 'read';
  if (BEGIN.test(text)) return 'begin';
  if (COMMIT.test(text)) return /^COMMIT/i.test(text) ? 'commit' : 'control';
  if (ROLLBACK.test(text)) return 'rollback';
  if (CONTROL.test(text)) return 'control';
  return 'write';
}

export class ActivityCounter {
  readonly #totals: DatabaseActivity = { reads: 0, writes: 0, commits: 0, roundTrips: 0 };
  readonly #listeners = new Set<StatementListener>();

  record(sql: string, inTransaction: boolean, params?: readonly unknown[]): void {
    const kind = statementKind(sql);
    const totals = this.#totals;
    totals.roundTrips++;
    if (kind === 'read') totals.reads++;
    else if (kind === 'write') {
      totals.writes++;
      if (!inTransaction) totals.commits++;
    } else if (kind === 'commit') totals.commits++;
    if (this.#listeners.size) for (const listener of this.#listeners) listener({ sql, kind, params, inTransaction });
  }

  /** The totals so far (a copy). */
  snapshot(): DatabaseActivity {
    return { ...this.#totals };
  }

  /** Calls `listener` for every statement from now on; returns the function that stops it. */
  observe(listener: StatementListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
