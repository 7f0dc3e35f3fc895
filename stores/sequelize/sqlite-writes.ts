/**
 * One in-process writer at a time per SQLite database. SQLite has a single write lock; writers of one process that
 * wait for it inside SQLite (the busy timeout) each hold one of libuv's four pool threads while they wait, and the
 * writer holding the lock may then find no thread left to commit on: everything stalls until a busy timeout ends.
 * Queued here, in-process writers wait without a thread, and the busy timeout only ever waits for other processes.
 * Also, Sequelize runs in-memory transactions on the one shared connection, and SQLite cannot nest them.
 *
 * Used by the session store's transactions and the operational adapter's writes (direct-sql.ts).
 */
import type { Sequelize } from 'sequelize';

const queues = new WeakMap<Sequelize, Promise<unknown>>();

/** Runs `work` after every write queued before it on this database has finished (succeeded or failed). */
export function queueSqliteWrite<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(sequelize) ?? Promise.resolve();
  const result = previous.then(work, work);
  queues.set(sequelize, result.catch(() => undefined));
  return result;
}
