/**
 * Expiry claims (leases) on server-side sessions: `claimed_until` is the end of the claim an expiry sweeper holds on
 * an expired session while it notifies the session's relying parties. The sweeper deletes the row when it is done; a
 * claim that runs out (the sweeper died) lets another sweeper take the row again, so no notification is lost.
 *
 * The sweeper's scan is `expires < now AND (claimed_until IS NULL OR claimed_until <= now) ORDER BY expires`: the
 * single-column expiry index from 0002 becomes (expires, claimed_until), which serves the same range scan and lets the
 * claim condition be checked on index entries (MariaDB's index condition pushdown) before rows are locked.
 */
import { DataTypes, type QueryInterface } from 'sequelize';

const SESSIONS = 'server_side_sessions';
const OLD_INDEX = 'server_side_sessions_expires';
const NEW_INDEX = 'server_side_sessions_expires_claim';

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  // DATE(3): milliseconds on MySQL/MariaDB; timestamptz on PostgreSQL; text on SQLite (like the other dates).
  await queryInterface.addColumn(SESSIONS, 'claimed_until', { type: DataTypes.DATE(3), allowNull: true });
  await queryInterface.addIndex(SESSIONS, ['expires', 'claimed_until'], { name: NEW_INDEX });
  await queryInterface.removeIndex(SESSIONS, OLD_INDEX);
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  await queryInterface.addIndex(SESSIONS, ['expires'], { name: OLD_INDEX });
  await queryInterface.removeIndex(SESSIONS, NEW_INDEX);
  // Plain SQL on every database: Sequelize's SQLite removeColumn rebuilds the table (losing its indexes and
  // collations), and its MariaDB one fails on this driver. SQLite 3.35+ drops a column in place.
  await queryInterface.sequelize.query(`ALTER TABLE ${SESSIONS} DROP COLUMN claimed_until`);
}
