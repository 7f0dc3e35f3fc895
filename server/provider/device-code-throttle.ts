/**
 * Limits guessing of device-flow user codes (RFC 8628 §5.1): wrong codes entered from one IP address are counted, and
 * after `deviceFlow.maxFailuresPerIp` of them within `login.failureWindow` code entry from that address is locked for
 * `login.lockout`, doubling up to `login.maxLockout`. Counted in the database with the sign-in throttle's counter
 * (LoginAttempts, its keys prefixed `device:`), so the limit holds across instances.
 */
import type { LoginAttempts } from '../../stores/sequelize/login-attempts.js';

export interface DeviceCodeThrottleSettings {
  maxFailuresPerIp: number;
  failureWindow: number;
  lockout: number;
  maxLockout: number;
}

const ipKey = (ip: string) => `device:ip:${ip.slice(0, 64)}`;

export class DeviceCodeThrottle {
  constructor(
    private readonly attempts: LoginAttempts,
    private readonly settings: DeviceCodeThrottleSettings,
  ) {}

  /** When code entry from this address may be tried again, or null if it may be tried now. */
  blockedUntil(ip: string): Promise<Date | null> {
    return this.attempts.lockedUntil([ipKey(ip)]);
  }

  /** Counts one wrong code from this address. */
  async failed(ip: string): Promise<void> {
    const { maxFailuresPerIp: maxFailures, failureWindow: window, lockout, maxLockout } = this.settings;
    await this.attempts.recordFailure(ipKey(ip), { maxFailures, window, lockout, maxLockout });
  }
}
