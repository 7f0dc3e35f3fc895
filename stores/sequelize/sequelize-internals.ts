/**
 * The only places where Gatehouse reaches past Sequelize's typed public API. Only the database gateway
 * (database.ts and the fast path it builds, prepared-path.ts) imports this file; each entry says why it is needed.
 * Checked against Sequelize 6.37: re-check these when Sequelize is upgraded.
 */
import type { Sequelize } from 'sequelize';

/**
 * A connection Sequelize already holds, typed as the driver's own object. `connectionManager` is public, but its
 * connections are typed as `object`. The fast path runs its statements on them: SQLite's shared connection (so its
 * WAL mode and busy timeout apply), a pooled PostgreSQL client (released after the statement).
 */
export async function acquireConnection<C>(sequelize: Sequelize, type: 'read' | 'write'): Promise<C> {
  return (await sequelize.connectionManager.getConnection({ type })) as C;
}

export function releaseConnection(sequelize: Sequelize, connection: unknown): void {
  sequelize.connectionManager.releaseConnection(connection as object);
}

/**
 * The SQL log function of this instance (`database.logSql`), kept in Sequelize's untyped `options`: statements of the
 * fast path are logged there too (their text, not their values).
 */
export function sqlLog(sequelize: Sequelize): ((sql: string) => void) | undefined {
  const logging = (sequelize as unknown as { options: { logging?: unknown } }).options.logging;
  return typeof logging === 'function' ? (logging as (sql: string) => void) : undefined;
}

/** The text of a query Sequelize ran, as its `afterQuery` hook sees it (`sql` is not in the query type). */
export function querySql(query: unknown): string {
  const sql = (query as { sql?: unknown } | null)?.sql;
  return typeof sql === 'string' ? sql : '';
}

/**
 * Runs `hook` before the instance closes its connections. sqlite3 refuses to close a connection that still has
 * prepared statements, and Sequelize has no hook for closing on SQLite: `close` is wrapped instead.
 */
export function beforeClose(sequelize: Sequelize, hook: () => Promise<void>): void {
  const close = sequelize.close.bind(sequelize);
  sequelize.close = async () => {
    await hook();
    return close();
  };
}
