/** A live, signed-in session record of `alice` at client `web`, for tests that write to a session store directly. */
import type { ServerSideSession } from '../../stores/session-store.js';

export function sessionRecord(sessionId: string, userAgent: string): ServerSideSession {
  const now = new Date();
  return {
    key: `key-${sessionId}`,
    sessionId,
    subjectId: 'alice',
    displayName: 'Alice Anderson',
    clients: [{ clientId: 'web', sid: `sid-${sessionId}` }],
    created: now,
    renewed: now,
    expires: new Date(now.getTime() + 3_600_000),
    authTime: now,
    loginIp: '127.0.0.1',
    loginUserAgent: userAgent,
    lastIp: '127.0.0.1',
    lastUserAgent: userAgent,
    data: { uid: sessionId, accountId: 'alice' },
  };
}
