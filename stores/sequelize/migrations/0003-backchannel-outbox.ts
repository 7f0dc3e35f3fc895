/**
 * The back-channel logout outbox: one row per notification owed to a relying party (client + sid), written before
 * anything is sent, so a crash or a relying party that is down loses nothing. Unique (client_id, sid): a logout token
 * is owed once, however many paths (logout, admin revocation, expiry, a retried sweep) ask for it.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const OUTBOX = 'backchannel_outbox';

function tableOptions(queryInterface: QueryInterface) {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'mysql' || dialect === 'mariadb' ? { charset: 'utf8mb4', collate: 'utf8mb4_bin' } : {};
}

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.createTable(
    OUTBOX,
    {
      id: { type: DataTypes.BIGINT, allowNull: false, primaryKey: true, autoIncrement: true },
      client_id: { type: DataTypes.STRING(255), allowNull: false },
      sid: { type: DataTypes.STRING(255), allowNull: false },
      subject_id: { type: DataTypes.STRING(255), allowNull: false },
      session_id: { type: DataTypes.STRING(128), allowNull: true },
      reason: { type: DataTypes.STRING(32), allowNull: false },
      status: { type: DataTypes.STRING(16), allowNull: false },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      next_attempt_at: { type: DataTypes.DATE(3), allowNull: false },
      lease_until: { type: DataTypes.DATE(3), allowNull: true },
      last_error: { type: DataTypes.STRING(512), allowNull: true },
      created_at: { type: DataTypes.DATE(3), allowNull: false },
      updated_at: { type: DataTypes.DATE(3), allowNull: false },
      delivered_at: { type: DataTypes.DATE(3), allowNull: true },
    },
    tableOptions(queryInterface),
  );
  await queryInterface.addIndex(OUTBOX, ['client_id', 'sid'], { name: 'backchannel_outbox_client_sid', unique: true });
  await queryInterface.addIndex(OUTBOX, ['status', 'next_attempt_at'], { name: 'backchannel_outbox_due' });
  await queryInterface.addIndex(OUTBOX, ['session_id'], { name: 'backchannel_outbox_session' });
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.dropTable(OUTBOX);
}
