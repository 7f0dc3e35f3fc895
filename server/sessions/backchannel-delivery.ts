/**
 * The one back-channel logout delivery path. Logout (oidc-provider's end_session), administrator revocation and
 * session expiry all enqueue into the durable outbox; this worker delivers with retries and exponential backoff, up to
 * a bounded number of attempts, and records each outcome.
 *
 * The provider builds and signs the logout token (`client.backchannelLogout(sub, sid)`: typ logout+jwt, sub, sid,
 * events, iss, aud, jti, iat, exp) and posts it through its own fetch, with the SSRF guard unless
 * `backchannelLogout.allowPrivateNetworks` lifts it. Gatehouse re-points that method at the outbox, so the provider's
 * own logout, too, goes through here, and keeps the original for the worker.
 */
import type { EventEmitter } from 'node:events';
import Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type {
  BackchannelOutbox,
  LogoutReason,
  OutboxEntry,
  OutboxRow,
} from '../../stores/sequelize/backchannel-outbox.js';
import type { Clock } from '../../stores/session-store.js';

export interface DeliveryOptions {
  maxAttempts: number;
  /** Delay before the first retry, in seconds; doubles each attempt. */
  retryBaseDelay: number;
  /** Longest delay between attempts, in seconds. */
  retryMaxDelay: number;
  /** How often the worker looks for due notifications when idle, in seconds. */
  pollInterval: number;
  /** Rows claimed per round. */
  batchSize: number;
}

type SendLogout = (this: { clientId: string }, accountId: string, sid: string) => Promise<void>;

export class BackchannelDelivery {
  readonly #provider: Provider;
  readonly #outbox: BackchannelOutbox;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #events: EventEmitter;
  readonly #options: DeliveryOptions;
  readonly #send: SendLogout;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #again = false;
  #stopped = true;
  /** Set by stop(): a round in progress delivers what it claimed and claims nothing more. */
  #stopping = false;

  constructor(deps: {
    provider: Provider;
    outbox: BackchannelOutbox;
    clock: Clock;
    logger: Logger;
    events: EventEmitter;
    options: DeliveryOptions;
  }) {
    this.#provider = deps.provider;
    this.#outbox = deps.outbox;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#events = deps.events;
    this.#options = deps.options;
    const prototype = deps.provider.Client.prototype as unknown as { backchannelLogout: SendLogout };
    this.#send = prototype.backchannelLogout;
    const delivery = this;
    // The provider's own logout (end_session) now enqueues instead of posting directly.
    prototype.backchannelLogout = async function (this: { clientId: string }, accountId: string, sid: string) {
      const session = Provider.ctx?.oidc?.session as { uid?: string } | undefined;
      await delivery.enqueue([
        { clientId: this.clientId, subjectId: accountId, sid, sessionId: session?.uid ?? null, reason: 'user_logout' },
      ]);
    };
  }

  get outbox(): BackchannelOutbox {
    return this.#outbox;
  }

  /** Records the notifications durably, then asks the worker to deliver them now. */
  async enqueue(entries: OutboxEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const added = await this.#outbox.enqueue(entries);
    this.kick();
    return added;
  }

  /**
   * Starts the background worker: a round now, then one when the next pending notification is due (a retry fires on
   * time), or after `pollInterval` at the latest (notifications another instance enqueued).
   */
  start(): void {
    this.#stopped = false;
    this.#stopping = false;
    this.kick();
  }

  /**
   * Stops the worker: a round in progress delivers what it has claimed, claims nothing more, and is waited for. An
   * explicit runOnce() afterwards (the CLI's) delivers as usual.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      await this.#running?.catch(() => undefined);
    } finally {
      this.#stopping = false;
    }
  }

  /** Runs a round soon (coalesced with one in progress). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#loop(), 0);
    this.#timer.unref();
  }

  async #loop(): Promise<void> {
    this.#timer = undefined;
    try {
      await this.runOnce();
    } catch (error) {
      this.#logger.error({ err: { message: (error as Error).message } }, 'back-channel delivery round failed');
    }
    if (this.#stopped) return;
    const delay = this.#again ? 0 : await this.#untilNextDue();
    this.#again = false;
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#loop(), delay);
    this.#timer.unref();
  }

  /** Milliseconds until the earliest pending notification is due, at most `pollInterval`. */
  async #untilNextDue(): Promise<number> {
    const poll = this.#options.pollInterval * 1000;
    try {
      const next = await this.#outbox.nextDue();
      return next ? Math.min(poll, Math.max(0, next.getTime() - this.#clock.now().getTime())) : poll;
    } catch {
      return poll; // the database is unavailable: the round's own failure was logged; look again after a poll
    }
  }

  /** Delivers every notification that is due now, batch after batch. Resolves to the number of attempts made. */
  runOnce(): Promise<number> {
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #drain(): Promise<number> {
    let attempts = 0;
    while (!this.#stopping) {
      const leaseUntil = new Date(this.#clock.now().getTime() + 60_000);
      const batch = await this.#outbox.claimDue(this.#options.batchSize, leaseUntil);
      if (batch.length === 0) return attempts;
      await Promise.all(batch.map((row) => this.#deliver(row)));
      attempts += batch.length;
    }
    return attempts;
  }

  async #deliver(row: OutboxRow): Promise<void> {
    const attempt = row.attempts + 1;
    try {
      const client = await this.#provider.Client.find(row.clientId);
      if (!client) throw new Error(`client ${row.clientId} no longer exists`);
      if (!client.backchannelLogoutUri) throw new Error(`client ${row.clientId} has no backchannel_logout_uri`);
      await this.#send.call(client, row.subjectId, row.sid);
      await this.#outbox.markDelivered(row.id);
      this.#logger.info(
        {
          event: 'backchannel.delivered',
          clientId: row.clientId,
          sessionId: row.sessionId,
          reason: row.reason,
          attempt,
        },
        'back-channel logout delivered',
      );
      this.#events.emit('backchannel.delivered', { ...summary(row), attempt });
    } catch (error) {
      const message = describe(error);
      const retryAt =
        attempt < this.#options.maxAttempts
          ? new Date(this.#clock.now().getTime() + this.#backoff(attempt) * 1000)
          : null;
      await this.#outbox.markAttemptFailed(row.id, message, retryAt);
      const event = retryAt ? 'backchannel.retrying' : 'backchannel.failed';
      this.#logger.warn(
        {
          event,
          clientId: row.clientId,
          sessionId: row.sessionId,
          reason: row.reason,
          attempt,
          error: message,
          retryAt,
        },
        'back-channel logout attempt failed',
      );
      this.#events.emit(event, { ...summary(row), attempt, error: message, retryAt });
    }
  }

  /** Seconds before retry number `attempt`: base * 2^(attempt-1), capped. */
  #backoff(attempt: number): number {
    return Math.min(this.#options.retryBaseDelay * 2 ** (attempt - 1), this.#options.retryMaxDelay);
  }
}

function summary(row: OutboxRow): {
  clientId: string;
  sessionId: string | null;
  subjectId: string;
  reason: LogoutReason;
} {
  return { clientId: row.clientId, sessionId: row.sessionId, subjectId: row.subjectId, reason: row.reason };
}

/** An error description fit for a log line and the outbox: no URLs with credentials, no token. */
function describe(error: unknown): string {
  const err = error as {
    message?: string;
    cause?: { message?: string; code?: string };
    response?: { status?: number };
  };
  const status = err.response?.status;
  const cause = err.cause?.code ?? err.cause?.message;
  return [status ? `HTTP ${status}` : undefined, err.message, cause ? `(${cause})` : undefined]
    .filter(Boolean)
    .join(' ')
    .slice(0, 500);
}
