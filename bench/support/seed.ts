/**
 * Realistic server-side session records, generated deterministically from (namespace, index) so a benchmark can
 * rebuild any seeded record (its key, session id, subject) without keeping a million of them in memory, and fast bulk
 * seeding: multi-row INSERTs in large transactions, straight into `server_side_sessions` and
 * `server_side_session_clients` (the columns of migrations 0002 and 0004). Seeding is never measured.
 */
import { createHash } from 'node:crypto';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { openDatabase } from '../../stores/sequelize/connection.js';
import { hashSessionKey, type ServerSideSession } from '../../stores/session-store.js';
import { seededRandom } from './stats.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const IDLE_TIMEOUT_MS = 10 * HOUR_MS;

/** Relying parties a live session signed in to (one or two each). */
const CLIENT_IDS = ['portal', 'mobile-app', 'admin-console', 'billing', 'support-desk'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
];
const FIRST_NAMES = [
  'Alice',
  'Bob',
  'Carol',
  'Dave',
  'Erin',
  'Frank',
  'Grace',
  'Heidi',
  'Ivan',
  'Judy',
  'Mallory',
  'Niaj',
  'Olivia',
  'Peggy',
];
const LAST_NAMES = [
  'Anderson',
  'Brown',
  'Clark',
  'Davis',
  'Evans',
  'Fischer',
  'García',
  'Hughes',
  'Ivanova',
  'Jones',
  'Kowalski',
  'Müller',
];
const HEX = '0123456789abcdef';
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export interface SessionProfile {
  /** Keeps the ids of different seedings apart. */
  namespace: string;
  /** The moment the records are relative to. */
  now: Date;
  /** `live`: expires within the idle timeout after `now`; `expired`: expired up to a day before `now`. */
  state: 'live' | 'expired';
  /** How many distinct subjects the sessions belong to (about three sessions per subject is typical). */
  subjects: number;
  /** Every session signs in to exactly these clients; default: one or two of CLIENT_IDS. */
  clientIds?: string[];
  /** Every n-th session is anonymous (no login yet: no subject, no clients); 0 = none. */
  anonymousEvery?: number;
}

function hashString(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function randomId(random: () => number, length: number): string {
  let id = '';
  for (let i = 0; i < length; i++) id += ID_ALPHABET[Math.floor(random() * 64)];
  return id;
}

function uuidLike(random: () => number): string {
  let hex = '';
  for (let i = 0; i < 32; i++) hex += HEX[Math.floor(random() * 16)];
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)];
}

function ipAddress(random: () => number): string {
  if (random() < 0.2)
    return `2001:db8:${Math.floor(random() * 65536).toString(16)}::${Math.floor(random() * 65536).toString(16)}`;
  return `${10 + Math.floor(random() * 200)}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.${1 + Math.floor(random() * 254)}`;
}

/** The subject id of subject number `n` (a UUID, as most identity systems use). */
export function subjectIdOf(namespace: string, n: number): string {
  return uuidLike(seededRandom(hashString(`${namespace}.subject.${n}`)));
}

/** Session number `index` of a profile: always the same record for the same inputs. */
export function sessionRecord(profile: SessionProfile, index: number): ServerSideSession {
  // A distinct generator seed per index (multiplying by an odd constant is a bijection on 32 bits); ids that must be
  // unique (session id, sids) come from SHA-256, not from the 32-bit generator.
  const random = seededRandom(hashString(profile.namespace) ^ Math.imul(index, 0x9e3779b1));
  const ids = createHash('sha256').update(`${profile.namespace}.ids.${index}`).digest('base64url');
  const sessionId = ids.slice(0, 21); // oidc-provider uids are 21-character nanoids
  const sids = [
    ids.slice(21, 42),
    createHash('sha256').update(`${profile.namespace}.sid.${index}`).digest('base64url').slice(0, 21),
  ];
  const anonymous = profile.anonymousEvery ? index % profile.anonymousEvery === profile.anonymousEvery - 1 : false;
  const subjectNumber = Math.floor(random() * profile.subjects);
  const now = profile.now.getTime();
  let renewed: number;
  let expires: number;
  if (profile.state === 'live') {
    renewed = now - Math.floor(random() * 0.9 * IDLE_TIMEOUT_MS);
    expires = renewed + IDLE_TIMEOUT_MS;
  } else {
    expires = now - 60_000 - Math.floor(random() * DAY_MS);
    renewed = expires - IDLE_TIMEOUT_MS;
  }
  const created = renewed - Math.floor(random() * 13 * DAY_MS);
  const loginIp = ipAddress(random);
  const userAgent = pick(random, USER_AGENTS);
  const subjectId = anonymous ? null : subjectIdOf(profile.namespace, subjectNumber);
  let clientIds: string[] = [];
  if (!anonymous) {
    if (profile.clientIds) clientIds = profile.clientIds;
    else {
      const first = pick(random, CLIENT_IDS);
      const second = random() < 0.35 ? pick(random, CLIENT_IDS) : first;
      clientIds = second === first ? [first] : [first, second];
    }
  }
  const clients = clientIds.map((clientId, i) => ({ clientId, sid: sids[i] ?? `${sids[0]}.${i}` }));
  const authorizations = Object.fromEntries(
    clients.map(({ clientId, sid }) => [clientId, { sid, grantId: randomId(random, 21), persistsLogout: true }]),
  );
  const seconds = (ms: number) => Math.floor(ms / 1000);
  const displayName = subjectId
    ? `${FIRST_NAMES[subjectNumber % FIRST_NAMES.length]} ${LAST_NAMES[Math.floor(subjectNumber / FIRST_NAMES.length) % LAST_NAMES.length]}`
    : null;
  return {
    key: hashSessionKey(`${profile.namespace}.cookie.${index}`),
    sessionId,
    subjectId,
    displayName,
    clients,
    created: new Date(created),
    renewed: new Date(renewed),
    expires: new Date(expires),
    authTime: subjectId ? new Date(created) : null,
    loginIp,
    loginUserAgent: userAgent,
    lastIp: random() < 0.7 ? loginIp : ipAddress(random),
    lastUserAgent: userAgent,
    data: {
      iat: seconds(created),
      exp: seconds(expires),
      kind: 'Session',
      ...(subjectId
        ? {
            accountId: subjectId,
            loginTs: seconds(created),
            amr: ['pwd'],
            acr: 'urn:mace:incommon:iap:silver',
            authorizations,
          }
        : {}),
      transient: false,
    },
  };
}

const SESSION_COLUMNS =
  'session_id, "key", subject_id, display_name, display_name_lower, clients, created, renewed, expires, auth_time, login_ip, login_user_agent, last_ip, last_user_agent, data';

function literal(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replaceAll("'", "''")}'`;
}

/** A Date as the store writes it: Sequelize's SQLite text format, or ISO 8601 for PostgreSQL's timestamptz. */
function dateLiteral(date: Date | null, dialect: string): string {
  if (date === null) return 'NULL';
  const iso = date.toISOString();
  return dialect === 'sqlite' ? `'${iso.slice(0, 10)} ${iso.slice(11, 23)} +00:00'` : `'${iso}'`;
}

function sessionTuple(session: ServerSideSession, dialect: string): string {
  return `(${[
    literal(session.sessionId),
    literal(session.key),
    literal(session.subjectId),
    literal(session.displayName),
    literal(session.displayName?.toLowerCase() ?? null),
    literal(JSON.stringify(session.clients)),
    dateLiteral(session.created, dialect),
    dateLiteral(session.renewed, dialect),
    dateLiteral(session.expires, dialect),
    dateLiteral(session.authTime, dialect),
    literal(session.loginIp),
    literal(session.loginUserAgent),
    literal(session.lastIp),
    literal(session.lastUserAgent),
    literal(JSON.stringify(session.data)),
  ].join(', ')})`;
}

export interface SeedOptions {
  rowsPerStatement?: number;
  statementsPerTransaction?: number;
  onProgress?: (inserted: number) => void;
}

/** Inserts sessions [from, from + count) of a profile; resolves to the time it took (ms, not a benchmark figure). */
export async function seedSessions(
  sequelize: Sequelize,
  profile: SessionProfile,
  from: number,
  count: number,
  options: SeedOptions = {},
): Promise<number> {
  const dialect = sequelize.getDialect();
  const rowsPerStatement = options.rowsPerStatement ?? 1000;
  const perTransaction = rowsPerStatement * (options.statementsPerTransaction ?? 50);
  const started = Date.now();
  for (let start = from; start < from + count; start += perTransaction) {
    const end = Math.min(from + count, start + perTransaction);
    await inTransaction(sequelize, async (transaction) => {
      for (let batch = start; batch < end; batch += rowsPerStatement) {
        const sessions: string[] = [];
        const clients: string[] = [];
        for (let index = batch; index < Math.min(end, batch + rowsPerStatement); index++) {
          const session = sessionRecord(profile, index);
          sessions.push(sessionTuple(session, dialect));
          for (const clientId of new Set(session.clients.map((client) => client.clientId))) {
            clients.push(`(${literal(session.sessionId)}, ${literal(clientId)})`);
          }
        }
        await sequelize.query(`INSERT INTO server_side_sessions (${SESSION_COLUMNS}) VALUES ${sessions.join(',\n')}`, {
          type: QueryTypes.INSERT,
          transaction,
        });
        if (clients.length) {
          await sequelize.query(
            `INSERT INTO server_side_session_clients (session_id, client_id) VALUES ${clients.join(',\n')}`,
            {
              type: QueryTypes.INSERT,
              transaction,
            },
          );
        }
      }
    });
    options.onProgress?.(end - from);
  }
  return Date.now() - started;
}

/** SQLite: BEGIN/COMMIT on the one connection (a Sequelize transaction would open another); elsewhere a transaction. */
async function inTransaction(
  sequelize: Sequelize,
  work: (transaction: Transaction | undefined) => Promise<void>,
): Promise<void> {
  if (sequelize.getDialect() !== 'sqlite') return sequelize.transaction((transaction) => work(transaction));
  await sequelize.query('BEGIN IMMEDIATE');
  try {
    await work(undefined);
    await sequelize.query('COMMIT');
  } catch (error) {
    await sequelize.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Runs `work` (a bulk load) with the secondary indexes of the session tables dropped, then recreates each from its
 * own stored definition (sqlite_master / pg_indexes), so the schema ends exactly as the migrations left it. Building an
 * index once over a loaded table is many times faster than growing it row by row. Primary keys stay.
 */
export async function withIndexesRebuiltAfter<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  const tables = ['server_side_sessions', 'server_side_session_clients'];
  const definitions =
    sequelize.getDialect() === 'sqlite'
      ? await sequelize.query<{ name: string; definition: string }>(
          `SELECT name, sql AS definition FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (:tables)`,
          { type: QueryTypes.SELECT, replacements: { tables } },
        )
      : await sequelize.query<{ name: string; definition: string }>(
          `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
           WHERE schemaname = current_schema() AND tablename IN (:tables)
             AND indexname NOT IN (SELECT conname FROM pg_constraint)`,
          { type: QueryTypes.SELECT, replacements: { tables } },
        );
  for (const { name } of definitions) await sequelize.query(`DROP INDEX "${name}"`);
  try {
    return await work();
  } finally {
    for (const { definition } of definitions) await sequelize.query(definition);
  }
}

/**
 * A connection for seeding only (closed before anything is measured). SQLite gets a large page cache, so index
 * inserts stay in memory; the measured connection later opens with the deployment's defaults.
 */
export async function openSeedingConnection(url: string): Promise<Sequelize> {
  const sequelize = await openDatabase({ url });
  if (sequelize.getDialect() === 'sqlite') await sequelize.query('PRAGMA cache_size = -262144');
  return sequelize;
}

/** After seeding: fold SQLite's WAL back into the database file; refresh PostgreSQL's planner statistics (as autovacuum would). */
export async function settleAfterSeeding(sequelize: Sequelize): Promise<void> {
  if (sequelize.getDialect() === 'sqlite') await sequelize.query('PRAGMA wal_checkpoint(TRUNCATE)');
  else await sequelize.query('ANALYZE server_side_sessions, server_side_session_clients, backchannel_outbox');
}
