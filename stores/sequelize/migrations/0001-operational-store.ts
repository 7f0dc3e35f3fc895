/**
 * The operational store: oidc-provider's adapter rows (`oidc_payloads`) and generated secrets (`gatehouse_secrets`).
 *
 * `oidc_payloads` keeps each payload as JSON and promotes only the fields the adapter looks rows up by
 * (grant id, session uid, user code, account id, session uid of bound tokens) plus expiry and consumption times.
 * Key lengths stay InnoDB-safe under utf8mb4: model is at most 64 characters, every other key 255.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const PAYLOADS = 'oidc_payloads';
const SECRETS = 'gatehouse_secrets';

/** MySQL/MariaDB TEXT holds only 64 KB; elsewhere TEXT is unbounded (and a length would print a warning). */
function longText(queryInterface: QueryInterface) {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'mysql' || dialect === 'mariadb' ? DataTypes.TEXT('long') : DataTypes.TEXT;
}

/** Ids are case-sensitive: on MySQL/MariaDB compare them byte-wise whatever the database default collation is. */
function tableOptions(queryInterface: QueryInterface) {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'mysql' || dialect === 'mariadb' ? { charset: 'utf8mb4', collate: 'utf8mb4_bin' } : {};
}

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.createTable(
    PAYLOADS,
    {
      model: { type: DataTypes.STRING(64), allowNull: false, primaryKey: true },
      id: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
      payload: { type: longText(queryInterface), allowNull: false },
      grant_id: { type: DataTypes.STRING(255), allowNull: true },
      uid: { type: DataTypes.STRING(255), allowNull: true },
      user_code: { type: DataTypes.STRING(255), allowNull: true },
      account_id: { type: DataTypes.STRING(255), allowNull: true },
      session_uid: { type: DataTypes.STRING(255), allowNull: true },
      // DATE(3): millisecond precision on MySQL/MariaDB (plain DATETIME drops it); ignored elsewhere.
      expires_at: { type: DataTypes.DATE(3), allowNull: true },
      consumed_at: { type: DataTypes.DATE(3), allowNull: true },
    },
    tableOptions(queryInterface),
  );
  await queryInterface.addIndex(PAYLOADS, ['model', 'grant_id'], { name: 'oidc_payloads_model_grant_id' });
  await queryInterface.addIndex(PAYLOADS, ['model', 'uid'], { name: 'oidc_payloads_model_uid' });
  await queryInterface.addIndex(PAYLOADS, ['model', 'user_code'], { name: 'oidc_payloads_model_user_code' });
  await queryInterface.addIndex(PAYLOADS, ['model', 'account_id'], { name: 'oidc_payloads_model_account_id' });
  await queryInterface.addIndex(PAYLOADS, ['model', 'session_uid'], { name: 'oidc_payloads_model_session_uid' });
  await queryInterface.addIndex(PAYLOADS, ['expires_at'], { name: 'oidc_payloads_expires_at' });

  await queryInterface.createTable(
    SECRETS,
    {
      name: { type: DataTypes.STRING(64), allowNull: false, primaryKey: true },
      value: { type: longText(queryInterface), allowNull: false },
      created_at: { type: DataTypes.DATE(3), allowNull: false },
      updated_at: { type: DataTypes.DATE(3), allowNull: false },
    },
    tableOptions(queryInterface),
  );
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.dropTable(SECRETS);
  await queryInterface.dropTable(PAYLOADS);
}
