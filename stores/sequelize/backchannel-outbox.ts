/**
 * The durable back-channel logout outbox (table from migration 0003). Delivery itself lives in
 * server/sessions/backchannel-delivery.ts; this file is only the SQL.
 *
 * Claiming is optimistic and lease-based, so several instances on one database never deliver the same row at once and
 * never block each other: a worker picks due rows, then takes each with a conditional UPDATE that only one worker can
 * win. A worker that dies leaves its lease to run out, and the row is claimed again.
 */
import type { Sequelize } from 'sequelize';
import type { Clock } from '../session-store.js';
import { Database } from './database.js';

const OUTBOX = 'backchannel_outbox';

export type LogoutReason = 'user_logout' | 'terminated' | 'session_expiration';
export type OutboxStatus = 'pending' | 'delivered' | 'failed';

export interface OutboxEntry {
  clientId: string;
  sid: string;
  subjectId: string;
  sessionId: string | null;
  reason: LogoutReason;
}

export interface OutboxRow extends OutboxEntry {
  id: string;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

function fromRow(row: Record<string, unknown>): OutboxRow {
  return {
    id: String(row.id),
    clientId: String(row.client_id),
    sid: String(row.sid),
    subjectId: String(row.subject_id),
    sessionId: row.session_id === null ? null : String(row.session_id),
    reason: row.reason as LogoutReason,
    status: row.status as OutboxStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: toDate(row.next_attempt_at),
    lastError: row.last_error === null ? null : String(row.last_error),
    createdAt: toDate(row.created_at),
    deliveredAt: row.delivered_at === null || row.delivered_at === undefined ? null : toDate(row.delivered_at),
  };
}

export class BackchannelOutbox {
  readonly #db: Database;

  constructor(
    sequelize: Sequelize,
    private readonly clock: Clock,
  ) {
    this.#db = Database.of(sequelize);
  }

  /** Records notifications owed; one already owed for the same client and sid is left as it is. Returns how many are new. */
  async enqueue(entries: OutboxEntry[]): Promise<number> {
    let added = 0;
    const now = this.clock.now();
    const insert = `INSERT INTO ${OUTBOX} (client_id, sid, subject_id, session_id, reason, status, attempts, next_attempt_at, created_at, updated_at)
      VALUES (:clientId, :sid, :subjectId, :sessionId, :reason, 'pending', 0, :now, :now, :now)`;
    const sql = this.#db.insertOrIgnore(insert, ['client_id', 'sid']);
    for (const entry of entries) {
      const { clientId, sid, subjectId, reason } = entry;
      if (
        (await this.#db.write(sql, { clientId, sid, subjectId, reason, sessionId: entry.sessionId ?? null, now })) > 0
      )
        added++;
    }
    return added;
  }

  /** Takes up to `limit` due rows for this worker until `leaseUntil`; rows another worker holds are skipped. */
  async claimDue(limit: number, leaseUntil: Date): Promise<OutboxRow[]> {
    const now = this.clock.now();
    const candidates = await this.#db.select(
      `SELECT * FROM ${OUTBOX} WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)
       ORDER BY next_attempt_at, id LIMIT ${Math.max(1, Math.trunc(limit))}`,
      { now },
    );
    const claimed: OutboxRow[] = [];
    for (const row of candidates) {
      const affected = await this.#db.write(
        `UPDATE ${OUTBOX} SET lease_until = :leaseUntil, updated_at = :now
         WHERE id = :id AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)`,
        { id: row.id, leaseUntil, now },
      );
      if (affected === 1) claimed.push(fromRow(row));
    }
    return claimed;
  }

  async markDelivered(id: string): Promise<void> {
    const now = this.clock.now();
    await this.#db.write(
      `UPDATE ${OUTBOX} SET status = 'delivered', attempts = attempts + 1, delivered_at = :now, lease_until = NULL, last_error = NULL, updated_at = :now WHERE id = :id`,
      { id, now },
    );
  }

  /** Records a failed attempt: retried at `retryAt`, or given up (status failed) when `retryAt` is null. */
  async markAttemptFailed(id: string, error: string, retryAt: Date | null): Promise<void> {
    const now = this.clock.now();
    await this.#db.write(
      `UPDATE ${OUTBOX} SET attempts = attempts + 1, last_error = :error, lease_until = NULL, updated_at = :now,
         status = :status, next_attempt_at = :next WHERE id = :id`,
      { id, now, error: error.slice(0, 500), status: retryAt ? 'pending' : 'failed', next: retryAt ?? now },
    );
  }

  /** The most recent rows, newest first, optionally of one status / session / client (for administrators). */
  async list(
    filter: { status?: OutboxStatus; sessionId?: string; clientId?: string; limit?: number } = {},
  ): Promise<OutboxRow[]> {
    const where: string[] = [];
    if (filter.status) where.push('status = :status');
    if (filter.sessionId) where.push('session_id = :sessionId');
    if (filter.clientId) where.push('client_id = :clientId');
    const rows = await this.#db.select(
      `SELECT * FROM ${OUTBOX} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), 1000)}`,
      filter,
    );
    return rows.map(fromRow);
  }

  async countByStatus(): Promise<Record<OutboxStatus, number>> {
    const rows = await this.#db.select<{ status: OutboxStatus; count: number | string }>(
      `SELECT status, COUNT(*) AS count FROM ${OUTBOX} GROUP BY status`,
    );
    const counts: Record<OutboxStatus, number> = { pending: 0, delivered: 0, failed: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /**
   * The earliest moment a pending row can be claimed (null when none is pending): its next attempt, or when the lease
   * of the worker delivering it now runs out, whichever is later.
   */
  async nextDue(): Promise<Date | null> {
    const [row] = await this.#db.select<{ next: unknown }>(
      `SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) AS next
       FROM ${OUTBOX} WHERE status = 'pending'`,
    );
    return row?.next ? toDate(row.next) : null;
  }
}
