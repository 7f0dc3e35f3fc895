/**
 * Failed sign-in counters, per account name and per client IP, kept in the database so the limit holds across
 * instances. One row per key (`account:<name>` or `ip:<address>`).
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const TABLE = 'login_attempts';

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  const dialect = queryInterface.sequelize.getDialect();
  await queryInterface.createTable(
    TABLE,
    {
      key: { type: DataTypes.STRING(300), allowNull: false, primaryKey: true },
      failures: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      window_start: { type: DataTypes.DATE(3), allowNull: false },
      lockouts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      locked_until: { type: DataTypes.DATE(3), allowNull: true },
      updated_at: { type: DataTypes.DATE(3), allowNull: false },
    },
    dialect === 'mysql' || dialect === 'mariadb' ? { charset: 'utf8mb4', collate: 'utf8mb4_bin' } : {},
  );
  await queryInterface.addIndex(TABLE, ['updated_at'], { name: 'login_attempts_updated_at' });
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.dropTable(TABLE);
}
