/**
 * Limits guessing of device-flow user codes (RFC 8628 §5.1): wrong codes entered from one address (IPv6: its /64, as
 * sign-in counts it) are counted, and after `deviceFlow.maxFailuresPerIp` of them within `login.failureWindow` code
 * entry from that address is locked for `login.lockout`, doubling up to `login.maxLockout`. Counted in the database
 * with the sign-in throttle's counter (LoginAttempts, keys prefixed `device:`), so the limit holds across instances;
 * within a process, entries of one address wait at a gate (attempt-gate.ts) so that a burst of parallel codes gets no
 * more look-ups than the limit leaves.
 */
import type { Clock } from '../../stores/session-store.js';
import type { LoginAttempts } from '../../stores/sequelize/login-attempts.js';
import { addressKey } from './address-key.js';
import { AttemptGate, type AttemptGateOptions } from './attempt-gate.js';

export interface DeviceCodeThrottleSettings {
  maxFailuresPerIp: number;
  failureWindow: number;
  lockout: number;
  maxLockout: number;
}

/**
 * An admitted code entry: `failed` once if the code was wrong, then (always) `release`. A wrong code whose failure
 * cannot be written keeps the entry's place until a retry has written it (attempt-gate.ts, `releaseWhenRecorded`).
 */
export interface CodeEntry {
  failed(): Promise<void>;
  release(): void;
}

const keyOf = (ip: string) => `device:ip:${addressKey(ip)}`;
/** How long a refused entry is told to wait when no lock is written yet (a burst still being counted). */
const SOON_SECONDS = 5;

export class DeviceCodeThrottle {
  readonly #gate: AttemptGate;

  constructor(
    private readonly attempts: LoginAttempts,
    private readonly settings: DeviceCodeThrottleSettings,
    private readonly clock: Clock,
    gate: AttemptGateOptions = {},
  ) {
    this.#gate = new AttemptGate({ name: 'device-code', ...gate });
  }

  /** Admits one code entry from this address, or says until when it must wait. */
  async admit(ip: string): Promise<{ entry: CodeEntry } | { blockedUntil: Date }> {
    const key = keyOf(ip);
    const { maxFailuresPerIp: limit, failureWindow } = this.settings;
    const outcome = await this.#gate.acquire([key], async () => {
      const row = (await this.attempts.read([key])).get(key);
      const now = this.clock.now().getTime();
      if (row?.lockedUntil && row.lockedUntil.getTime() > now) return { blocked: true };
      const counted = row && row.windowStart.getTime() > now - failureWindow * 1000 ? row.failures : 0;
      return { blocked: false, room: new Map([[key, limit - counted]]) };
    });
    if (outcome === 'admitted') {
      let settled = false; // the place is given up once: by release, or once the failure is written
      const release = () => {
        if (!settled) this.#gate.release([key]);
        settled = true;
      };
      const failed = async () => {
        if (settled) return;
        settled = true;
        await this.#gate.releaseWhenRecorded([key], this.#recorder(key));
      };
      return { entry: { failed, release } };
    }
    const locked = await this.attempts.lockedUntil([key]);
    return { blockedUntil: locked ?? new Date(this.clock.now().getTime() + SOON_SECONDS * 1000) };
  }

  /** Closes the gate: failures not written yet are no longer tried again (the server is closing). */
  close(): void {
    this.#gate.close();
  }

  /** Writes one wrong code of `key` and locks it at the limit; a retry after the count was written only locks. */
  #recorder(key: string): () => Promise<void> {
    const { maxFailuresPerIp: maxFailures, failureWindow: window, lockout, maxLockout } = this.settings;
    let charged = false;
    return async () => {
      if (!charged) await this.attempts.charge([{ key, window }]);
      charged = true;
      await this.attempts.lockIfReached(key, { maxFailures, window, lockout, maxLockout });
    };
  }
}
