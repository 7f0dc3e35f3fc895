/**
 * Limits failed sign-ins per account name and per client IP, with a temporary lockout that doubles on every repeat
 * (`login.maxFailuresPerAccount`, `maxFailuresPerIp`, `failureWindow`, `lockout`, `maxLockout`). Counted in the
 * database, so the limit holds across instances. Unknown names are counted like real ones: a lockout says nothing
 * about whether an account exists.
 */
import type { LoginAttempts } from '../../stores/sequelize/login-attempts.js';

export interface LoginThrottleSettings {
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  failureWindow: number;
  lockout: number;
  maxLockout: number;
}

const accountKey = (username: string) => `account:${username.replace(/[\u0000-\u001f\u007f]/g, '').trim().toLowerCase().slice(0, 255)}`;
const ipKey = (ip: string) => `ip:${ip.slice(0, 64)}`;

export class LoginThrottle {
  constructor(
    private readonly attempts: LoginAttempts,
    private readonly settings: LoginThrottleSettings,
  ) {}

  /** When this sign-in may be tried again, or null if it may be tried now. */
  blockedUntil(username: string, ip: string): Promise<Date | null> {
    return this.attempts.lockedUntil([accountKey(username), ipKey(ip)]);
  }

  async failed(username: string, ip: string): Promise<void> {
    const { failureWindow: window, lockout, maxLockout } = this.settings;
    await this.attempts.recordFailure(accountKey(username), { maxFailures: this.settings.maxFailuresPerAccount, window, lockout, maxLockout });
    await this.attempts.recordFailure(ipKey(ip), { maxFailures: this.settings.maxFailuresPerIp, window, lockout, maxLockout });
  }

  async succeeded(username: string): Promise<void> {
    await this.attempts.reset(accountKey(username));
  }
}
