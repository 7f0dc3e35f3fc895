/**
 * Session lifetime: a sliding idle timeout capped by an absolute lifetime from sign-in. oidc-provider calls
 * `ttl.Session` on every save (each /auth, /session/end ... request), so the session's expiry is
 * `min(now + idleTimeout, loginTs + absoluteLifetime)`.
 */
import type { Clock } from '../../stores/session-store.js';

export interface LifetimeSettings {
  idleTimeout: number;
  absoluteLifetime: number;
}

/** Seconds the session may live from now; always a positive integer, as the provider requires. */
export function sessionTtl(session: { loginTs?: number }, settings: LifetimeSettings, clock: Clock): number {
  const now = Math.floor(clock.now().getTime() / 1000);
  let ttl = settings.idleTimeout;
  if (typeof session.loginTs === 'number') {
    ttl = Math.min(ttl, session.loginTs + settings.absoluteLifetime - now);
  }
  return Math.max(1, Math.floor(ttl));
}
