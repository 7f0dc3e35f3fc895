/**
 * Promotes the client id of operational rows (`client_id`), so "this account's remembered consent for this client"
 * is one indexed look-up instead of reading every grant of the account. Rows written before this migration have no
 * client id and are simply not found by that look-up.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const TABLE = 'oidc_payloads';
const INDEX = 'oidc_payloads_model_account_client';

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.addColumn(TABLE, 'client_id', { type: DataTypes.STRING(255), allowNull: true });
  await queryInterface.addIndex(TABLE, ['model', 'account_id', 'client_id'], { name: INDEX });
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.removeIndex(TABLE, INDEX);
  await queryInterface.sequelize.query(`ALTER TABLE ${TABLE} DROP COLUMN client_id`);
}
