/**
 * Sign-in protection: limits on password guessing that a stranger cannot turn against the user
 * (docs/sign-in-protection.md has the model, the defaults and the reasoning).
 *
 * - A browser that signed in with a name holds a device entry for it (a signed cookie with a random nonce, see
 *   routes/device-cookie.ts). Its attempts for that name are *trusted*: they count only against that device
 *   (`maxFailuresPerDevice` consecutive failures, then the device is invalidated: its nonce is locked for the rest of
 *   the cookie's life and the browser is untrusted from then on). No failure made anywhere else ever blocks it.
 * - Every other attempt is *untrusted* and counts against the name (`maxFailuresPerAccount` within `maxLockout`: the
 *   bound on guessing through many addresses), the name at this address (`maxFailuresPerAccountAndIp`: one address
 *   hammering one name locks itself first) and the address (`maxFailuresPerIp`: one address spraying many names), the
 *   last two within `failureWindow`. A key over its limit is locked for `lockout` seconds, doubling with each further
 *   lock up to `maxLockout`; the escalation is forgotten after `maxLockout` without a lock, and a sign-in from a
 *   trusted device starts the name's untrusted count again. Locks always end by themselves.
 * - At most as many attempts per key are checked at once as the key has failures left before its lock
 *   (attempt-gate.ts), so a burst of parallel requests gets no more guesses than the limit, while parallel sign-ins
 *   that succeed merely queue.
 *
 * Names are counted by a keyed hash of the normalised name (case and surrounding spaces ignored; unknown names
 * exactly like real ones), so neither the table nor the logs hold what people typed into the username field.
 * Everything lives in the database (stores/sequelize/login-attempts.ts): the same rules hold across instances (the
 * gate for bursts is per process; attempt-gate.ts says what that means across instances).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import type { AttemptRow, LoginAttempts } from '../../stores/sequelize/login-attempts.js';
import { getOrCreateSecret } from '../../stores/sequelize/secrets.js';
import type { Clock } from '../../stores/session-store.js';
import { addressKey } from './address-key.js';
import { AttemptGate, type AttemptGateOptions } from './attempt-gate.js';

export interface LoginThrottleSettings {
  maxFailuresPerDevice: number;
  maxFailuresPerAccount: number;
  maxFailuresPerAccountAndIp: number;
  maxFailuresPerIp: number;
  failureWindow: number;
  lockout: number;
  maxLockout: number;
  deviceCookieLifetime: number;
}

/** What a lock applies to (the `scope` of `login.locked` and of gatehouse_login_lockouts_total). */
export type LockScope = 'device' | 'username-untrusted' | 'username-ip' | 'ip';

/** One name a browser has signed in with: the name's id, a random nonce and when it was issued (epoch seconds). */
export interface DeviceEntry {
  nameId: string;
  nonce: string;
  issuedAt: number;
}

/** One sign-in attempt, from `begin` to `failed` or `succeeded`. */
export interface LoginAttempt {
  readonly nameId: string;
  /** The client address as given (for audit) and as counted (IPv6 by /64). */
  readonly ip: string;
  readonly address: string;
  /** The device entry this attempt is trusted by; absent for an untrusted client. */
  readonly device?: DeviceEntry;
  /** A device entry for this name that no longer counts (budget used up, or expired): the cookie should drop it. */
  revokedDevice?: DeviceEntry;
  /** Set when the attempt may not be tried now: when it may be tried again. */
  readonly blockedUntil?: Date;
  /** The keys whose place at the gate this attempt holds (given up by failed/succeeded/release). */
  gated: string[];
  /** The counters as they were when the attempt was let through. */
  readonly rows: ReadonlyMap<string, AttemptRow>;
}

/** Where `login.failed` and `login.locked` go (the server's log and events). */
export type LoginAudit = (event: 'login.failed' | 'login.locked', detail: Record<string, unknown>) => void;

export interface LockoutStatus {
  /** Sign-in from untrusted clients with this name is refused until then (null: not locked). */
  untrustedLockedUntil: Date | null;
  /** Untrusted failures counted in the current window. */
  untrustedFailures: number;
  /** How many times in a row the untrusted lock escalated (the next lock lasts `lockout` × 2^level). */
  level: number;
  /** Addresses with failures for this name in the current window, or locked out for it. */
  addresses: { address: string; failures: number; lockedUntil: Date | null }[];
  /** Device entries of this name with failures (also entries replaced by a later sign-in), and invalidated ones. */
  devices: { failing: number; invalidated: number };
}

const key = {
  device: (nameId: string, nonce: string) => `dev:${nameId}:${nonce}`,
  name: (nameId: string) => `usr:${nameId}`,
  nameAtAddress: (nameId: string, address: string) => `uip:${nameId}:${address}`,
  address: (address: string) => `ip:${address}`,
};

/**
 * The key of the names' hash, generated once and kept in the database (gatehouse_secrets), so every instance and the
 * CLI count a name under the same id, and a log line's `nameId` says nothing to someone without the database.
 */
export async function loginNameKey(sequelize: Sequelize): Promise<string> {
  return getOrCreateSecret(sequelize, 'login-name-key', async () => randomBytes(32).toString('base64url'));
}

/** The form of a name the limits count: control characters dropped, surrounding spaces trimmed, lower case. */
export function normaliseUsername(username: string): string {
  return username
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .toLowerCase()
    .slice(0, 255);
}

export class LoginThrottle {
  readonly #attempts: LoginAttempts;
  readonly #settings: LoginThrottleSettings;
  readonly #nameKey: string;
  readonly #clock: Clock;
  readonly #audit: LoginAudit;
  readonly #gate: AttemptGate;

  constructor(
    attempts: LoginAttempts,
    settings: LoginThrottleSettings,
    options: { nameKey: string; clock: Clock; audit?: LoginAudit; gate?: AttemptGateOptions },
  ) {
    this.#gate = new AttemptGate({ name: 'sign-in', ...options.gate });
    this.#attempts = attempts;
    this.#settings = settings;
    this.#nameKey = options.nameKey;
    this.#clock = options.clock;
    this.#audit = options.audit ?? (() => undefined);
  }

  /** Seconds a device cookie lives. */
  get deviceLifetime(): number {
    return this.#settings.deviceCookieLifetime;
  }

  /** The id a name is counted by: a keyed hash of the normalised name (128 bits, hex). */
  nameIdOf(username: string): string {
    return createHmac('sha256', this.#nameKey)
      .update(`login-name:${normaliseUsername(username)}`)
      .digest('hex')
      .slice(0, 32);
  }

  /** A new device entry for a browser that just signed in with this name. */
  issueDevice(username: string): DeviceEntry {
    return {
      nameId: this.nameIdOf(username),
      nonce: randomBytes(16).toString('base64url'),
      issuedAt: Math.floor(this.#now() / 1000),
    };
  }

  /**
   * Decides how an attempt counts: trusted when the browser holds a live device entry for this name, else untrusted.
   * `blockedUntil` is set when the attempt must not be tried (the password must not be checked); otherwise the attempt
   * holds a place at the gate until `failed`, `succeeded` or `release`.
   */
  async begin(username: string, ip: string, devices: DeviceEntry[]): Promise<LoginAttempt> {
    const nameId = this.nameIdOf(username);
    const address = addressKey(ip);
    let revokedDevice: DeviceEntry | undefined;
    const entry = devices.find((device) => device.nameId === nameId);
    if (entry && (entry.issuedAt + this.deviceLifetime) * 1000 <= this.#now()) revokedDevice = entry;
    else if (entry) {
      const deviceKey = key.device(nameId, entry.nonce);
      let rows: Map<string, AttemptRow> = new Map();
      const outcome = await this.#gate.acquire([deviceKey], async () => {
        rows = await this.#attempts.read([deviceKey]);
        const row = rows.get(deviceKey);
        if (row && this.#locked(row)) return { blocked: true };
        return {
          blocked: false,
          room: new Map([[deviceKey, this.#settings.maxFailuresPerDevice - (row?.failures ?? 0)]]),
        };
      });
      if (outcome === 'admitted') return { nameId, ip, address, device: entry, gated: [deviceKey], rows };
      if (outcome === 'busy') return { nameId, ip, address, blockedUntil: this.#soon(), gated: [], rows };
      if (outcome === 'exhausted') await this.#lockDevice(entry, rows.get(deviceKey)!, { nameId, ip });
      revokedDevice = entry; // invalidated: from now on an untrusted client
    }

    const scoped = this.#untrustedKeys(nameId, address);
    const keys = scoped.map((scope) => scope.key);
    let rows: Map<string, AttemptRow> = new Map();
    const outcome = await this.#gate.acquire(keys, async () => {
      rows = await this.#attempts.read(keys);
      if (this.#latestLock([...rows.values()])) return { blocked: true };
      return {
        blocked: false,
        room: new Map(
          scoped.map(({ key: scopeKey, limit, window }) => [
            scopeKey,
            limit - this.#counted(rows.get(scopeKey), window),
          ]),
        ),
      };
    });
    if (outcome === 'admitted') return { nameId, ip, address, revokedDevice, gated: keys, rows };
    let blockedUntil = this.#latestLock([...rows.values()]);
    if (outcome === 'busy') blockedUntil ??= this.#soon();
    if (outcome === 'exhausted') {
      // Failures at the limit and no lock (one that lost a race, or a lock never written): lock now.
      for (const { key: scopeKey, scope, limit, window } of scoped) {
        const row = rows.get(scopeKey);
        if (row && this.#counted(row, window) >= limit)
          blockedUntil = (await this.#lock(scope, scopeKey, row, limit, { nameId, ip })) ?? blockedUntil;
      }
      blockedUntil ??= this.#latestLock([...(await this.#attempts.read(keys)).values()]) ?? this.#soon();
    }
    return { nameId, ip, address, revokedDevice, blockedUntil, gated: [], rows };
  }

  /**
   * The password was wrong (or missing): audits it, counts it, locks whatever reached its limit and frees its place.
   * If the failure cannot be written, this rejects and the attempt keeps its place until a retry in the background has
   * written it or given up (attempt-gate.ts, `releaseWhenRecorded`): a check that happened counts against the budget.
   */
  async failed(attempt: LoginAttempt, subject?: string): Promise<void> {
    const who = { nameId: attempt.nameId, ...(subject ? { subject } : {}), ip: attempt.ip };
    this.#audit('login.failed', { ...who, client: attempt.device ? 'trusted' : 'untrusted' });
    const gated = attempt.gated;
    attempt.gated = [];
    const scoped = attempt.device
      ? [{ key: key.device(attempt.nameId, attempt.device.nonce), window: this.deviceLifetime }]
      : this.#untrustedKeys(attempt.nameId, attempt.address);
    let charged = false; // a retry after the count was written only locks
    await this.#gate.releaseWhenRecorded(gated, async () => {
      if (!charged) await this.#attempts.charge(scoped);
      charged = true;
      await this.#lockReached(attempt, who);
    });
  }

  /** Closes the gate: failures not written yet are no longer tried again (the server is closing). */
  close(): void {
    this.#gate.close();
  }

  /** After a failure was counted: locks each of the attempt's keys that has reached its limit. */
  async #lockReached(attempt: LoginAttempt, who: Record<string, unknown>): Promise<void> {
    if (attempt.device) {
      const deviceKey = key.device(attempt.nameId, attempt.device.nonce);
      const row = (await this.#attempts.read([deviceKey])).get(deviceKey);
      if (row && !this.#locked(row) && row.failures >= this.#settings.maxFailuresPerDevice) {
        await this.#lockDevice(attempt.device, row, who);
        attempt.revokedDevice = attempt.device;
      }
      return;
    }
    const scoped = this.#untrustedKeys(attempt.nameId, attempt.address);
    const rows = await this.#attempts.read(scoped.map((scope) => scope.key));
    for (const { key: scopeKey, scope, limit, window } of scoped) {
      const row = rows.get(scopeKey);
      if (row && !this.#locked(row) && this.#counted(row, window) >= limit)
        await this.#lock(scope, scopeKey, row, limit, who);
    }
  }

  /**
   * The password was right. From a trusted device: the browser gets a new nonce (the old one keeps its count, so a
   * copy of the old cookie is worth no more guesses than before), and the name's untrusted count starts again. The name's escalation and a lock already running are kept: forgiving them would hand a persistent guesser a
   * fresh, short lock cycle (ten more tries each) every time the user signs in, and would help the user's new browsers
   * only while the guessing goes on. From an untrusted client (the right password, so no guesser's gift): the name's
   * and the name-at-address counts and escalations are forgiven. Keys with nothing to forgive are not written.
   */
  async succeeded(attempt: LoginAttempt): Promise<void> {
    try {
      const { nameId, address, device, rows } = attempt;
      const dirty = (scopeKey: string) => {
        const row = rows.get(scopeKey);
        return row !== undefined && (row.failures > 0 || row.lockouts > 0);
      };
      const only = (keys: string[]) => keys.filter(dirty);
      if (device) {
        // The browser gets a new nonce. The old one keeps its count: a copy of the old cookie (someone else's) must not
        // get a fresh budget from its owner's sign-in, so it has what is left of its ten guesses, then is invalidated.
        const nameKey = key.name(nameId);
        const names = await this.#attempts.read([nameKey]);
        if ((names.get(nameKey)?.failures ?? 0) > 0) await this.#attempts.settle({ resetCount: [nameKey] });
      } else {
        // A failure of this name at this address not written yet would land after the reset and count again: it goes too.
        const cleared = key.nameAtAddress(nameId, address);
        this.#gate.cancel((keys) => keys.includes(cleared));
        await this.#attempts.settle({ reset: only([key.name(nameId), key.nameAtAddress(nameId, address)]) });
      }
    } finally {
      this.release(attempt);
    }
  }

  /** Frees the attempt's place at the gate (idempotent; `failed` and `succeeded` do it themselves). */
  release(attempt: LoginAttempt): void {
    if (attempt.gated.length === 0) return;
    this.#gate.release(attempt.gated);
    attempt.gated = [];
  }

  /** What is counted and locked for this name now (admin API, CLI). */
  async status(username: string): Promise<LockoutStatus> {
    const nameId = this.nameIdOf(username);
    const [names, pairs, devices] = await Promise.all([
      this.#attempts.read([key.name(nameId)]),
      this.#attempts.readPrefixed(key.nameAtAddress(nameId, '')),
      this.#attempts.readPrefixed(key.device(nameId, '')),
    ]);
    const name = names.get(key.name(nameId));
    const prefix = key.nameAtAddress(nameId, '').length;
    const [nameWindow, pairWindow] = this.#untrustedKeys(nameId, '').map((scope) => scope.window);
    return {
      untrustedLockedUntil: name && this.#locked(name) ? name.lockedUntil : null,
      untrustedFailures: this.#counted(name, nameWindow),
      level: name?.lockouts ?? 0,
      addresses: pairs
        .filter((row) => this.#locked(row) || this.#counted(row, pairWindow) > 0)
        .map((row) => ({
          address: row.key.slice(prefix),
          failures: this.#counted(row, pairWindow),
          lockedUntil: this.#locked(row) ? row.lockedUntil : null,
        })),
      devices: {
        failing: devices.filter((row) => !this.#locked(row) && row.failures > 0).length,
        invalidated: devices.filter((row) => this.#locked(row)).length,
      },
    };
  }

  /**
   * Lifts every lock and forgets every count for this name: untrusted clients, the name at every address, and the
   * failures of its trusted devices. A device that was invalidated (it used up its budget: someone may have stolen its
   * cookie) stays invalidated — an unlock must not hand a stolen cookie a fresh budget; its owner signs in again to get a
   * new one. Per-address locks (`ip`, across names) are not the user's and stay. Resolves to the rows cleared.
   */
  async unlock(username: string): Promise<number> {
    const nameId = this.nameIdOf(username);
    const devices = await this.#attempts.readPrefixed(key.device(nameId, ''));
    const failing = devices.filter((row) => !this.#locked(row)).map((row) => row.key);
    return this.#attempts.remove([key.name(nameId), ...failing], [key.nameAtAddress(nameId, '')]);
  }

  /** Housekeeping: forgets counters nobody has touched for a while; device counters live as long as their cookie. */
  prune(): Promise<void> {
    const { failureWindow, maxLockout } = this.#settings;
    return this.#attempts.prune(Math.max(failureWindow, maxLockout), {
      prefix: 'dev:',
      olderThan: this.deviceLifetime,
    });
  }

  /**
   * The keys an untrusted attempt counts against, with their limits and windows. The name's window is `maxLockout`
   * (a day by default), not `failureWindow`: staying just under the limit must buy a guesser no more tries than
   * running into the lock does.
   */
  #untrustedKeys(nameId: string, address: string): { key: string; scope: LockScope; limit: number; window: number }[] {
    const { maxFailuresPerAccount, maxFailuresPerAccountAndIp, maxFailuresPerIp, failureWindow, maxLockout } =
      this.#settings;
    return [
      {
        key: key.name(nameId),
        scope: 'username-untrusted',
        limit: maxFailuresPerAccount,
        window: Math.max(maxLockout, failureWindow),
      },
      {
        key: key.nameAtAddress(nameId, address),
        scope: 'username-ip',
        limit: maxFailuresPerAccountAndIp,
        window: failureWindow,
      },
      { key: key.address(address), scope: 'ip', limit: maxFailuresPerIp, window: failureWindow },
    ];
  }

  /**
   * Locks a key that reached its limit: `lockout` × 2^level seconds up to `maxLockout`, where the level goes up by one
   * when the previous lock of the key ended less than `maxLockout` ago and starts again at 0 otherwise (so escalation
   * never outlives a quiet `maxLockout`). Resolves to the lock's end, or null if another request locked it first.
   */
  async #lock(
    scope: LockScope,
    scopeKey: string,
    row: AttemptRow,
    limit: number,
    who: Record<string, unknown>,
  ): Promise<Date | null> {
    const { lockout, maxLockout } = this.#settings;
    const now = this.#now();
    const level = row.lockedUntil && row.lockedUntil.getTime() > now - maxLockout * 1000 ? row.lockouts : 0;
    const seconds = Math.min(lockout * 2 ** level, maxLockout);
    const until = new Date(now + seconds * 1000);
    if (!(await this.#attempts.lock(scopeKey, { threshold: limit, until, level: level + 1 }))) return null;
    const detail =
      scope === 'ip'
        ? { ip: who.ip }
        : scope === 'username-untrusted'
          ? { nameId: who.nameId, ...(who.subject ? { subject: who.subject } : {}) }
          : who;
    this.#audit('login.locked', { scope, ...detail, seconds, level: level + 1, until: until.toISOString() });
    return until;
  }

  /** Invalidates a device entry for the rest of its cookie's life. */
  async #lockDevice(device: DeviceEntry, row: AttemptRow, who: Record<string, unknown>): Promise<void> {
    const until = new Date((device.issuedAt + this.deviceLifetime) * 1000);
    const started = await this.#attempts.lock(key.device(device.nameId, device.nonce), {
      threshold: this.#settings.maxFailuresPerDevice,
      until,
      level: row.lockouts + 1,
    });
    if (started) this.#audit('login.locked', { scope: 'device', ...who, until: until.toISOString() });
  }

  #locked(row: AttemptRow): boolean {
    return row.lockedUntil !== null && row.lockedUntil.getTime() > this.#now();
  }

  /** Failures in the row's current window (0 when the window has passed, or there is no row). */
  #counted(row: AttemptRow | undefined, window: number): number {
    return row && row.windowStart.getTime() > this.#now() - window * 1000 ? row.failures : 0;
  }

  /** A second from now: when to come back after being turned away without a lock (too many waiting). */
  #soon(): Date {
    return new Date(this.#now() + 1000);
  }

  #latestLock(rows: AttemptRow[]): Date | undefined {
    let latest: Date | undefined;
    for (const row of rows) if (this.#locked(row) && (!latest || row.lockedUntil! > latest)) latest = row.lockedUntil!;
    return latest;
  }

  #now(): number {
    return this.#clock.now().getTime();
  }
}
