/**
 * Server-side sessions: one row per login session (`server_side_sessions`) plus a lookup table of the clients each
 * session signed in to (`server_side_session_clients`), so the admin client filter is an index lookup too.
 *
 * `session_id` (the provider's stable uid) is the primary key: it never changes, while `key` (the hash of the rotating
 * cookie value) is a separate unique column that an update may change. No surrogate id: nothing refers to a row except
 * by session id, and the client table's foreign key cascades on delete.
 *
 * Every lookup has an index: key (unique), session id (primary key), subject (with the paging order), expiry,
 * display-name prefix, paging order (created, session_id), and client id. Dates keep milliseconds everywhere
 * (DATETIME(3) on MySQL/MariaDB; timestamptz on PostgreSQL; text on SQLite).
 *
 * The display name is also stored lower-cased (`display_name_lower`), compared byte-wise, so a case-insensitive prefix
 * search is a range scan of that index. Ids and that column compare byte-wise (code point order) on every database:
 * utf8mb4_bin on MySQL/MariaDB, COLLATE "C" on PostgreSQL, BINARY on SQLite.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const SESSIONS = 'server_side_sessions';
const CLIENTS = 'server_side_session_clients';

function isMysqlFamily(queryInterface: QueryInterface): boolean {
  const dialect = queryInterface.sequelize.getDialect();
  return dialect === 'mysql' || dialect === 'mariadb';
}

/** MySQL/MariaDB TEXT holds only 64 KB; elsewhere TEXT is unbounded. */
function longText(queryInterface: QueryInterface) {
  return isMysqlFamily(queryInterface) ? DataTypes.TEXT('long') : DataTypes.TEXT;
}

function tableOptions(queryInterface: QueryInterface) {
  return isMysqlFamily(queryInterface) ? { charset: 'utf8mb4', collate: 'utf8mb4_bin' } : {};
}

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  // DATE(3): millisecond precision on MySQL/MariaDB (plain DATETIME drops it); timestamptz on PostgreSQL.
  const date = DataTypes.DATE(3);
  await queryInterface.createTable(
    SESSIONS,
    {
      session_id: { type: DataTypes.STRING(128), allowNull: false, primaryKey: true },
      key: { type: DataTypes.STRING(128), allowNull: false },
      subject_id: { type: DataTypes.STRING(255), allowNull: true },
      display_name: { type: DataTypes.STRING(255), allowNull: true },
      display_name_lower: { type: DataTypes.STRING(255), allowNull: true },
      clients: { type: DataTypes.TEXT, allowNull: false },
      created: { type: date, allowNull: false },
      renewed: { type: date, allowNull: false },
      expires: { type: date, allowNull: true },
      auth_time: { type: date, allowNull: true },
      login_ip: { type: DataTypes.STRING(64), allowNull: true },
      login_user_agent: { type: DataTypes.STRING(512), allowNull: true },
      last_ip: { type: DataTypes.STRING(64), allowNull: true },
      last_user_agent: { type: DataTypes.STRING(512), allowNull: true },
      data: { type: longText(queryInterface), allowNull: false },
    },
    tableOptions(queryInterface),
  );
  if (queryInterface.sequelize.getDialect() === 'postgres') {
    // Byte-wise order for the paging tie-breaker and the prefix range (a linguistic collation would break both).
    for (const [column, length] of [
      ['session_id', 128],
      ['key', 128],
      ['display_name_lower', 255],
    ] as const) {
      await queryInterface.sequelize.query(
        `ALTER TABLE ${SESSIONS} ALTER COLUMN "${column}" TYPE VARCHAR(${length}) COLLATE "C"`,
      );
    }
  }
  await queryInterface.addIndex(SESSIONS, ['key'], { name: 'server_side_sessions_key', unique: true });
  await queryInterface.addIndex(SESSIONS, ['created', 'session_id'], { name: 'server_side_sessions_created' });
  await queryInterface.addIndex(SESSIONS, ['subject_id', 'created', 'session_id'], {
    name: 'server_side_sessions_subject_created',
  });
  await queryInterface.addIndex(SESSIONS, ['expires'], { name: 'server_side_sessions_expires' });
  await queryInterface.addIndex(SESSIONS, ['display_name_lower'], { name: 'server_side_sessions_display_name_lower' });

  await queryInterface.createTable(
    CLIENTS,
    {
      session_id: {
        type: DataTypes.STRING(128),
        allowNull: false,
        primaryKey: true,
        references: { model: SESSIONS, key: 'session_id' },
        onDelete: 'CASCADE',
        onUpdate: 'CASCADE',
      },
      client_id: { type: DataTypes.STRING(255), allowNull: false, primaryKey: true },
    },
    tableOptions(queryInterface),
  );
  if (queryInterface.sequelize.getDialect() === 'postgres') {
    await queryInterface.sequelize.query(
      `ALTER TABLE ${CLIENTS} ALTER COLUMN "session_id" TYPE VARCHAR(128) COLLATE "C"`,
    );
  }
  await queryInterface.addIndex(CLIENTS, ['client_id', 'session_id'], { name: 'server_side_session_clients_client' });
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.dropTable(CLIENTS);
  await queryInterface.dropTable(SESSIONS);
}
