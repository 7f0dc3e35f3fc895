/**
 * Fewer index entries per token write. Every row written to `oidc_payloads` (each token, code, grant, interaction)
 * added an entry to eight B-trees, most of them for a NULL: a client_credentials token has no grant, uid, user code,
 * account or session. On SQLite each commit copies every page it touched into the WAL, so those entries were most of
 * the cost of issuing a token.
 *
 * - Everywhere: `(model, session_uid)` goes (no query looks rows up by session uid) and so does `(model, account_id)`
 *   (`(model, account_id, client_id)` from 0007 serves the same look-ups).
 * - SQLite and PostgreSQL: the look-up indexes become partial (`WHERE <column> IS NOT NULL`): every look-up compares
 *   the column with a value, which both planners know implies NOT NULL. MariaDB/MySQL have no partial indexes.
 */
import type { QueryInterface } from 'sequelize';

const TABLE = 'oidc_payloads';

/** The look-up indexes: name, columns, and the column a row must have to be in the partial version. */
const LOOKUPS = [
  { name: 'oidc_payloads_model_grant_id', columns: ['model', 'grant_id'], column: 'grant_id' },
  { name: 'oidc_payloads_model_uid', columns: ['model', 'uid'], column: 'uid' },
  { name: 'oidc_payloads_model_user_code', columns: ['model', 'user_code'], column: 'user_code' },
  { name: 'oidc_payloads_model_account_client', columns: ['model', 'account_id', 'client_id'], column: 'account_id' },
];

const UNUSED = [
  { name: 'oidc_payloads_model_session_uid', columns: ['model', 'session_uid'] },
  { name: 'oidc_payloads_model_account_id', columns: ['model', 'account_id'] },
];

function supportsPartialIndexes(queryInterface: QueryInterface): boolean {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'sqlite' || dialect === 'postgres';
}

/** Re-runnable: a run that failed half-way can be run again. */
async function dropIndexIfExists(queryInterface: QueryInterface, name: string): Promise<void> {
  const indexes = (await queryInterface.showIndex(TABLE)) as { name: string }[];
  if (indexes.some((index) => index.name === name)) await queryInterface.removeIndex(TABLE, name);
}

/**
 * PostgreSQL: the partial index is built under a temporary name before the old one goes, so look-ups are never left
 * without an index on a live table (other instances keep serving during a rolling start). SQLite has no index rename,
 * and its single writer waits for the build either way: drop, then create.
 */
async function makePartial(queryInterface: QueryInterface, index: (typeof LOOKUPS)[number]): Promise<void> {
  const definition = `ON ${TABLE} (${index.columns.join(', ')}) WHERE ${index.column} IS NOT NULL`;
  const run = (sql: string) => queryInterface.sequelize.query(sql);
  if (queryInterface.sequelize.getDialect() === 'postgres') {
    await run(`CREATE INDEX IF NOT EXISTS ${index.name}_partial ${definition}`);
    await run(`DROP INDEX IF EXISTS ${index.name}`);
    await run(`ALTER INDEX ${index.name}_partial RENAME TO ${index.name}`);
  } else {
    await run(`DROP INDEX IF EXISTS ${index.name}`);
    await run(`CREATE INDEX ${index.name} ${definition}`);
  }
}

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  for (const index of UNUSED) await dropIndexIfExists(queryInterface, index.name);
  if (!supportsPartialIndexes(queryInterface)) return;
  for (const index of LOOKUPS) await makePartial(queryInterface, index);
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  if (supportsPartialIndexes(queryInterface)) {
    for (const index of LOOKUPS) {
      await dropIndexIfExists(queryInterface, index.name);
      await queryInterface.addIndex(TABLE, index.columns, { name: index.name });
    }
  }
  for (const index of UNUSED) {
    await dropIndexIfExists(queryInterface, index.name);
    await queryInterface.addIndex(TABLE, index.columns, { name: index.name });
  }
}
