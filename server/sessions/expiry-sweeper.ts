/**
 * The expiry sweeper: every `removeExpiredSessionsFrequency` seconds (the first run at a random point of the first
 * interval unless `fuzzExpiredSessionRemovalStart` is off), it claims expired sessions in batches of
 * `removeExpiredSessionsBatchSize` and ends each batch through SessionService.endExpiredSessions (one by one when the
 * batch fails), until none is left; the records of ended sessions are deleted in groups of up to 5,000. It also
 * deletes expired rows of the operational store.
 *
 * Claims are leases (SessionStore.claimExpired): instances on one database never get the same session at once and
 * never wait for each other; a session whose sweeper died mid-way is claimed again once its lease runs out, and the
 * outbox's uniqueness makes the repeated notification a no-op. Nothing is lost between claim and notification.
 */
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { removeExpiredOperationalRows } from '../../stores/sequelize/operational-adapter.js';
import type { Clock, ServerSideSession, SessionStore } from '../../stores/session-store.js';
import type { ExpiredSessionRef, SessionService } from './session-service.js';

/**
 * Expired sessions whose records are deleted together (see #sweep): at most this many, and never held for more than
 * half a claim's lease, so a slow sweep (many notifications, a distant database) deletes before its claims run out.
 */
const DELETE_GROUP = 5000;

export interface SweeperOptions {
  frequency: number;
  fuzzStart: boolean;
  batchSize: number;
  /** Seconds a claim is held before another instance may take the session. */
  leaseSeconds: number;
}

export interface SweepResult {
  sessions: number;
  operationalRows: number;
  ms: number;
}

export class ExpirySweeper {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<SweepResult> | undefined;
  /** Set by stop(): a sweep in progress finishes its current batch and ends. */
  #stopping = false;

  constructor(
    private readonly deps: {
      store: SessionStore | undefined;
      service: SessionService;
      sequelize: Sequelize;
      clock: Clock;
      logger: Logger;
      options: SweeperOptions;
      onSweep?: (result: SweepResult) => void;
      /** Other clean-up run after each sweep (e.g. stale sign-in counters). */
      housekeeping?: () => Promise<void>;
    },
  ) {}

  start(): void {
    this.#stopping = false;
    const interval = this.deps.options.frequency * 1000;
    const first = this.deps.options.fuzzStart ? Math.floor(Math.random() * interval) : interval;
    this.#schedule(first);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  #schedule(delay: number): void {
    if (this.#stopping) return;
    this.#timer = setTimeout(() => {
      this.runOnce()
        .catch((error) => this.deps.logger.error({ err: { message: (error as Error).message } }, 'expiry sweep failed'))
        .finally(() => this.#schedule(this.deps.options.frequency * 1000));
    }, delay);
    this.#timer.unref();
  }

  /** One full sweep (coalesced with one already running). */
  runOnce(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Ends a claimed batch (its records go to `ended`), or one session at a time when the batch fails. */
  async #end(batch: ServerSideSession[], ended: ExpiredSessionRef[], onExpiredOneByOne: () => void): Promise<void> {
    const { service, logger } = this.deps;
    try {
      await service.endExpiredSessions(batch);
      for (const { key, sessionId, subjectId, expires } of batch) ended.push({ key, sessionId, subjectId, expires });
    } catch {
      // One by one, so a session that cannot be ended does not hold back the others; its claim runs out and a later
      // sweep retries it.
      for (const session of batch) {
        try {
          await service.expireSession(session);
          onExpiredOneByOne();
        } catch (error) {
          logger.error(
            { sessionId: session.sessionId, err: { message: (error as Error).message } },
            'ending an expired session failed',
          );
        }
      }
    }
  }

  async #sweep(): Promise<SweepResult> {
    const started = process.hrtime.bigint();
    const { store, service, options, logger } = this.deps;
    let sessions = 0;
    if (store) {
      // Records of ended sessions are deleted in groups of DELETE_GROUP rather than per claimed batch: on SQLite a
      // commit rewrites every index page it touched, and a large group touches each page once for many sessions.
      const ended: ExpiredSessionRef[] = [];
      let groupStarted = 0;
      const groupDue = () =>
        ended.length >= DELETE_GROUP ||
        (ended.length > 0 && performance.now() - groupStarted >= (options.leaseSeconds * 1000) / 2);
      const forget = async () => {
        const group = ended.splice(0);
        if (group.length === 0) return;
        try {
          await service.forgetExpiredSessions(group);
          sessions += group.length;
        } catch (error) {
          // Their claims run out and a later sweep finds them again: ending them again is a no-op.
          logger.error(
            { sessions: group.length, err: { message: (error as Error).message } },
            'deleting expired sessions failed',
          );
        }
      };
      try {
        for (;;) {
          const claimedAt = performance.now();
          const batch = await store.claimExpired(options.batchSize, options.leaseSeconds);
          if (batch.length === 0) break;
          await this.#end(batch, ended, () => sessions++);
          if (ended.length > 0 && groupStarted === 0) groupStarted = claimedAt;
          if (groupDue()) {
            await forget();
            groupStarted = 0;
          }
          if (this.#stopping) break;
        }
      } finally {
        // Also when a claim failed: the sessions already ended are deleted now rather than after their leases.
        await forget();
      }
    }
    let operationalRows = 0;
    for (;;) {
      const removed = await removeExpiredOperationalRows(this.deps.sequelize, this.deps.clock, 1000);
      operationalRows += removed;
      if (removed < 1000 || this.#stopping) break;
    }
    await this.deps.housekeeping?.();
    const result = { sessions, operationalRows, ms: Number((process.hrtime.bigint() - started) / 1_000_000n) };
    if (sessions || operationalRows) logger.info({ event: 'sweep', ...result }, 'expiry sweep');
    this.deps.onSweep?.(result);
    return result;
  }
}
