/**
 * Telling "the database is unreachable" apart from other failures, so callers can answer 503 and try again later
 * instead of 500. Sequelize's connection errors (refused, timed out, pool acquire timeout, host not found), a
 * connection dropped mid-query, SQLite's busy/locked after the busy timeout, and every bound of `database.timeoutMs`
 * (connection.ts) all count: PostgreSQL's statement_timeout (57014) and query_timeout ("Query read timeout"), the
 * MariaDB driver's socket/connect timeouts and the server's max_statement_time (ER_STATEMENT_TIMEOUT), mysql2's query
 * timeout (PROTOCOL_SEQUENCE_TIMEOUT), and a readiness ping past its own bound (ETIMEDOUT).
 */
import { ConnectionError, TimeoutError } from 'sequelize';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  '57P01',
  '57P02',
  '57P03',
  '57014',
  '08006',
  '08003',
  '08001',
  'ER_SOCKET_TIMEOUT',
  'ER_CONNECTION_TIMEOUT',
  'ER_STATEMENT_TIMEOUT',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_CONNECTION_LOST',
]);
const DROPPED =
  /Connection terminated|connection is closed|Cannot enqueue|socket has been closed|server closed the connection|Connection lost|closed state|ER_CONNECTION_KILLED|ECONNRESET|Query read timeout|socket timeout/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 6; depth++) {
    if (current instanceof ConnectionError || current instanceof TimeoutError) return true;
    const { code, message, original, parent, cause } = current as {
      code?: unknown;
      message?: unknown;
      original?: unknown;
      parent?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (typeof message === 'string' && DROPPED.test(message)) return true;
    current = original ?? parent ?? cause;
  }
  return false;
}

/** Thrown in place of a driver error when the database cannot be reached: HTTP 503, details not exposed. */
export class DatabaseUnavailableError extends Error {
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = false;
  readonly code = 'database_unavailable';
  constructor(cause: unknown) {
    super('the database is unavailable', { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/** Re-throws a database-unreachable failure as DatabaseUnavailableError; anything else unchanged. */
export function classifyDatabaseError(error: unknown): never {
  if (error instanceof DatabaseUnavailableError) throw error;
  throw isDatabaseUnavailable(error) ? new DatabaseUnavailableError(error) : error;
}
