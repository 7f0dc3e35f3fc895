/**
 * Databases for one benchmark run: a SQLite file (WAL, the default deployment) in a temporary directory, or a
 * PostgreSQL database created for the run; both removed afterwards, also on Ctrl-C.
 */
import { QueryTypes, type Sequelize } from 'sequelize';
import { createTestDatabase } from '../../test/helpers/databases.js';

export type BenchDialect = 'sqlite' | 'postgres';
export const BENCH_DIALECTS: BenchDialect[] = ['sqlite', 'postgres'];

export interface BenchDatabase {
  dialect: BenchDialect;
  url: string;
  drop(): Promise<void>;
}

const live = new Set<BenchDatabase>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([...live].map((database) => database.drop())).finally(() => process.exit(130));
    });
  }
}

export async function createBenchDatabase(dialect: BenchDialect): Promise<BenchDatabase> {
  installHandlers();
  const created = await createTestDatabase(dialect === 'sqlite' ? 'sqlite-file' : 'postgres');
  let dropped: Promise<void> | undefined;
  const database: BenchDatabase = {
    dialect,
    url: created.url,
    drop() {
      dropped ??= created.drop().finally(() => live.delete(database));
      return dropped;
    },
  };
  live.add(database);
  return database;
}

/** The server version, for the results file. */
export async function databaseVersion(sequelize: Sequelize): Promise<string> {
  const sql = sequelize.getDialect() === 'sqlite' ? 'SELECT sqlite_version() AS version' : 'SHOW server_version';
  const [row] = await sequelize.query<Record<string, string>>(sql, { type: QueryTypes.SELECT });
  const version = String(row.version ?? row.server_version).split(' ')[0]; // "15.20 (Debian ...)" → "15.20"
  return `${sequelize.getDialect() === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${version}`;
}

/** The query plan of a statement, one line per step (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL). */
export async function queryPlan(
  sequelize: Sequelize,
  sql: string,
  replacements: Record<string, unknown>,
): Promise<string[]> {
  if (sequelize.getDialect() === 'sqlite') {
    const rows = await sequelize.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, {
      type: QueryTypes.SELECT,
      replacements,
    });
    return rows.map((row) => row.detail);
  }
  const rows = await sequelize.query<Record<string, string>>(`EXPLAIN ${sql}`, {
    type: QueryTypes.SELECT,
    replacements,
  });
  return rows.map((row) => row['QUERY PLAN'].trim());
}

/** A plan for a terminal line: PostgreSQL's cost estimates and literal values left out. */
export function planSummary(plan: string[]): string {
  return plan.map((line) => line.replace(/\s*\(cost=[^)]*\)/, '').replace(/'[^']*'(::[a-z ]+)?/g, '?')).join(' | ');
}
