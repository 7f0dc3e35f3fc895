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

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  for (const index of UNUSED) await queryInterface.removeIndex(TABLE, index.name);
  if (!supportsPartialIndexes(queryInterface)) return;
  for (const index of LOOKUPS) {
    await queryInterface.removeIndex(TABLE, index.name);
    await queryInterface.sequelize.query(`CREATE INDEX ${index.name} ON ${TABLE} (${index.columns.join(', ')}) WHERE ${index.column} IS NOT NULL`);
  }
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  if (supportsPartialIndexes(queryInterface)) {
    for (const index of LOOKUPS) {
      await queryInterface.removeIndex(TABLE, index.name);
      await queryInterface.addIndex(TABLE, index.columns, { name: index.name });
    }
  }
  for (const index of UNUSED) await queryInterface.addIndex(TABLE, index.columns, { name: index.name });
}
