/**
 * CPU of the PostgreSQL backends serving one database (the server process's own CPU leaves them out): the backend
 * pids from pg_stat_activity, read from /proc like the server's. Backends that exit during a phase take their ticks
 * with them, so this is a lower bound (the pool keeps its connections while busy, so little is lost).
 */
import { QueryTypes, type Sequelize } from 'sequelize';
import { openDatabase } from '../../stores/sequelize/connection.js';
import { cpuSeconds } from './proc.js';

export class PgBackends {
  readonly #sequelize: Sequelize;

  private constructor(sequelize: Sequelize) {
    this.#sequelize = sequelize;
  }

  static async connect(url: string): Promise<PgBackends> {
    return new PgBackends(await openDatabase({ url, poolMax: 1 }));
  }

  /** pid → CPU seconds so far, of every other backend connected to this database. */
  async snapshot(): Promise<Map<number, number>> {
    const rows = await this.#sequelize.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      {
        type: QueryTypes.SELECT,
      },
    );
    const cpu = new Map<number, number>();
    for (const { pid } of rows) {
      const seconds = cpuSeconds(pid);
      if (Number.isFinite(seconds)) cpu.set(pid, seconds);
    }
    return cpu;
  }

  /**
   * Transactions committed or rolled back in this database so far (each autocommit statement is one), this
   * connection's own left in. Backends report at most once a second when they go idle: wait before reading.
   */
  async transactions(): Promise<number> {
    const [row] = await this.#sequelize.query<{ xacts: string }>(
      'SELECT xact_commit + xact_rollback AS xacts FROM pg_stat_database WHERE datname = current_database()',
      { type: QueryTypes.SELECT },
    );
    return Number(row.xacts);
  }

  /** CPU seconds used between two snapshots (backends new since `before` count from zero). */
  static used(before: Map<number, number>, after: Map<number, number>): number {
    let total = 0;
    for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
    return total;
  }

  close(): Promise<void> {
    return this.#sequelize.close();
  }
}
