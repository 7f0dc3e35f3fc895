/** Seeds a session store with expired, signed-in sessions of client `coord` (for sweeper tests). */
import type { SessionStore } from '../../stores/session-store.js';

export async function seedExpiredSessions(
  store: SessionStore,
  count: number,
  now: Date,
  prefix = 'exp',
): Promise<string[]> {
  const sids: string[] = [];
  const past = new Date(now.getTime() - 60_000);
  for (let i = 0; i < count; i++) {
    const sessionId = `${prefix}-${i}`;
    const sid = `sid-${prefix}-${i}`;
    sids.push(sid);
    await store.create({
      key: `key-${prefix}-${i}`,
      sessionId,
      subjectId: `user-${i % 50}`,
      displayName: null,
      clients: [{ clientId: 'coord', sid }],
      created: past,
      renewed: past,
      expires: past,
      authTime: past,
      loginIp: '127.0.0.1',
      loginUserAgent: null,
      lastIp: '127.0.0.1',
      lastUserAgent: null,
      data: { uid: sessionId, kind: 'Session', accountId: `user-${i % 50}`, authorizations: { coord: { sid } } },
    });
  }
  return sids;
}
