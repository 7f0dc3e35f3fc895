/**
 * Database outages, logged once each: the first failure that means "the database is unavailable" (refused, dropped,
 * timed out: stores/sequelize/errors.ts) logs one `warn` line with its cause, later ones are only counted, and the
 * recovery is logged with how long it lasted and how many failures it caused. While an outage lasts, the database is
 * pinged every `probeIntervalMs` (with the readiness bound), so the recovery is noticed even without traffic. It ends
 * when the database answers and nothing has failed for `quietMs`: on SQLite a write lock held by another process does
 * not stop reads, and failures a second apart are one outage, not one each.
 *
 * Requests answer 503 with Retry-After meanwhile (server/http/errors.ts); this class only keeps the log readable: an
 * error line per request would bury the one line that says what happened.
 */
import type { Logger } from 'pino';
import type { Sequelize } from 'sequelize';
import { pingDatabase } from '../stores/sequelize/connection.js';
import { loggableMessage } from './http/errors.js';

export interface OutageOptions {
  /** Bound of each recovery ping, in ms (database.readyTimeoutMs). */
  probeTimeoutMs: number;
  /** Pause between recovery pings, in ms. */
  probeIntervalMs?: number;
  /** How long nothing may have failed before an answer from the database ends the outage, in ms. */
  quietMs?: number;
}

export class DatabaseOutage {
  readonly #sequelize: Sequelize;
  readonly #logger: Logger;
  readonly #options: Required<OutageOptions>;
  #since: number | undefined;
  #lastFailure = 0;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(deps: { sequelize: Sequelize; logger: Logger; options: OutageOptions }) {
    this.#sequelize = deps.sequelize;
    this.#logger = deps.logger;
    this.#options = { probeIntervalMs: 1000, quietMs: 2000, ...deps.options };
  }

  /** Whether an outage is going on (a failure seen and no success since). */
  get ongoing(): boolean {
    return this.#since !== undefined;
  }

  /** Records a failure classified as "database unavailable"; the first of an outage is logged with its cause. */
  failed(error: unknown, where: string): void {
    this.#failures++;
    this.#lastFailure = Date.now();
    if (this.#since !== undefined) return;
    this.#since = Date.now();
    this.#failures = 1;
    this.#logger.warn(
      { event: 'database.unavailable', where, cause: causeOf(error) },
      'database unavailable: answering 503 with Retry-After until it is back',
    );
    this.#schedule();
  }

  /** Records that the database answered (a readiness check, a recovery ping). */
  succeeded(): void {
    if (this.#since === undefined) return;
    if (Date.now() - this.#lastFailure < this.#options.quietMs) {
      this.#schedule();
      return;
    }
    const downtimeMs = Date.now() - this.#since;
    this.#logger.info(
      { event: 'database.recovered', downtimeMs, failures: this.#failures },
      'database reachable again',
    );
    this.#since = undefined;
    this.#failures = 0;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the recovery pings (server shutdown). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      pingDatabase(this.#sequelize, this.#options.probeTimeoutMs).then(
        () => this.succeeded(),
        () => {
          if (this.#since !== undefined) this.#schedule();
        },
      );
    }, this.#options.probeIntervalMs);
    this.#timer.unref();
  }
}

/** The innermost error of a driver chain (the one that names what happened), fit for a log line. */
function causeOf(error: unknown): { name?: string; code?: string; message: string } {
  let current = error as
    | { name?: string; code?: unknown; original?: unknown; parent?: unknown; cause?: unknown }
    | undefined;
  for (let depth = 0; depth < 6 && current; depth++) {
    const next = current.original ?? current.parent ?? current.cause;
    if (!next || typeof next !== 'object') break;
    current = next as typeof current;
  }
  const code = typeof current?.code === 'string' ? current.code : undefined;
  return {
    name: current?.name,
    ...(code ? { code } : {}),
    message: loggableMessage(current).replace(/\/\/[^@/\s]*@/g, '//***@'),
  };
}
