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

/** Runs tasks one at a time, in the order given; a failed task does not stop the ones after it. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Settles once every task queued so far has finished. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}

const queues = new WeakMap<Sequelize, SerialQueue>();

/** Runs `work` after every write queued before it on this database has finished (succeeded or failed). */
export function queueSqliteWrite<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  let queue = queues.get(sequelize);
  if (!queue) queues.set(sequelize, (queue = new SerialQueue()));
  return queue.run(work);
}
