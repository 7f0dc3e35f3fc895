/**
 * The directory: users (`gatehouse_users`) and OAuth clients (`gatehouse_clients`) in the database, seeded from the
 * configuration on every start and changed at run time by `gatehouse users|clients ...` and the admin API.
 *
 * `source` says who created a row: `config` rows follow the configuration (updated on every start, disabled — not
 * deleted — once they leave it); `cli` and `api` rows are never touched by seeding.
 *
 * Usernames are unique case-insensitively among enabled users: `username_key` is the lower-cased username of an enabled
 * user and NULL for a disabled one (every supported database lets a unique index hold many NULLs), so a disabled user
 * never blocks its username, and the login look-up is one index probe that cannot find a disabled user.
 *
 * JSON columns are TEXT (LONGTEXT on MySQL/MariaDB), as in the other tables; ids compare byte-wise everywhere.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const USERS = 'gatehouse_users';
const CLIENTS = 'gatehouse_clients';

function isMysqlFamily(queryInterface: QueryInterface): boolean {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'mysql' || dialect === 'mariadb';
}

function longText(queryInterface: QueryInterface) {
  return isMysqlFamily(queryInterface) ? DataTypes.TEXT('long') : DataTypes.TEXT;
}

function tableOptions(queryInterface: QueryInterface) {
  return isMysqlFamily(queryInterface) ? { charset: 'utf8mb4', collate: 'utf8mb4_bin' } : {};
}

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  const date = DataTypes.DATE(3);
  await queryInterface.createTable(
    USERS,
    {
      subject: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
      username: { type: DataTypes.STRING(255), allowNull: false },
      username_key: { type: DataTypes.STRING(255), allowNull: true },
      password_hash: { type: DataTypes.STRING(255), allowNull: true },
      claims: { type: longText(queryInterface), allowNull: false },
      roles: { type: DataTypes.TEXT, allowNull: false },
      disabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      source: { type: DataTypes.STRING(16), allowNull: false },
      created_at: { type: date, allowNull: false },
      updated_at: { type: date, allowNull: false },
    },
    tableOptions(queryInterface),
  );
  await queryInterface.addIndex(USERS, ['username_key'], { name: 'gatehouse_users_username', unique: true });
  await queryInterface.addIndex(USERS, ['source'], { name: 'gatehouse_users_source' });

  await queryInterface.createTable(
    CLIENTS,
    {
      client_id: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
      metadata: { type: longText(queryInterface), allowNull: false },
      settings: { type: DataTypes.TEXT, allowNull: false },
      disabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      source: { type: DataTypes.STRING(16), allowNull: false },
      created_at: { type: date, allowNull: false },
      updated_at: { type: date, allowNull: false },
    },
    tableOptions(queryInterface),
  );
  await queryInterface.addIndex(CLIENTS, ['source'], { name: 'gatehouse_clients_source' });

  if (queryInterface.sequelize.getDialect() === 'postgres') {
    for (const [table, column] of [
      [USERS, 'subject'],
      [USERS, 'username_key'],
      [CLIENTS, 'client_id'],
    ] as const) {
      await queryInterface.sequelize.query(
        `ALTER TABLE ${table} ALTER COLUMN "${column}" TYPE VARCHAR(255) COLLATE "C"`,
      );
    }
  }
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.dropTable(CLIENTS);
  await queryInterface.dropTable(USERS);
}
