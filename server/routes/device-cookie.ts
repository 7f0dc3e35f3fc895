/**
 * The device cookie (`gatehouse.device`): which names this browser has signed in with, so their sign-in attempts are
 * trusted (server/provider/login-throttle.ts). Signed with the cookie keys (a `.sig` companion, like the provider's
 * cookies), HttpOnly, SameSite=Lax, Secure whenever the request came over TLS (directly, or through a proxy trusted
 * with `proxy: true`), scoped to the login pages (`/interaction`), and long-lived (`login.deviceCookieLifetime`).
 *
 * The value holds up to five entries, newest first, `|`-separated: `<name id>.<nonce>.<issued, base-36 seconds>`. The
 * name id is a keyed hash, so the cookie does not show the username; the nonce lets one device be invalidated alone.
 */
import type { Context } from 'koa';
import type { DeviceEntry } from '../provider/login-throttle.js';

export const DEVICE_COOKIE = 'gatehouse.device';
/** Names remembered per browser (a shared computer); the oldest falls out. */
export const MAX_DEVICE_ENTRIES = 5;
const PATH = '/interaction';
const ENTRY = /^([0-9a-f]{32})\.([A-Za-z0-9_-]{22})\.([0-9a-z]{1,8})$/;

/** The entries of a validly signed device cookie (none when it is missing, unsigned, tampered with or malformed). */
export function readDevices(ctx: Context): DeviceEntry[] {
  const value = ctx.cookies.get(DEVICE_COOKIE, { signed: true });
  if (!value || value.length > 1024) return [];
  const entries: DeviceEntry[] = [];
  for (const part of value.split('|').slice(0, MAX_DEVICE_ENTRIES)) {
    const match = ENTRY.exec(part);
    if (match) entries.push({ nameId: match[1], nonce: match[2], issuedAt: Number.parseInt(match[3], 36) });
  }
  return entries;
}

/** Sets the cookie to these entries (newest first), or clears it when there are none. */
export function writeDevices(ctx: Context, entries: DeviceEntry[], lifetimeSeconds: number): void {
  const kept = entries.slice(0, MAX_DEVICE_ENTRIES);
  const options = { signed: true, httpOnly: true, sameSite: 'lax' as const, path: PATH, overwrite: true };
  if (kept.length === 0) {
    ctx.cookies.set(DEVICE_COOKIE, null, options);
    return;
  }
  const value = kept.map((entry) => `${entry.nameId}.${entry.nonce}.${entry.issuedAt.toString(36)}`).join('|');
  ctx.cookies.set(DEVICE_COOKIE, value, { ...options, maxAge: lifetimeSeconds * 1000 });
}

/** `entries` with `fresh` first and any older entry for the same name gone. */
export function withDevice(entries: DeviceEntry[], fresh: DeviceEntry): DeviceEntry[] {
  return [fresh, ...entries.filter((entry) => entry.nameId !== fresh.nameId)];
}

/** `entries` without `revoked`. */
export function withoutDevice(entries: DeviceEntry[], revoked: DeviceEntry): DeviceEntry[] {
  return entries.filter((entry) => entry.nonce !== revoked.nonce);
}
