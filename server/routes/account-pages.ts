/**
 * The signed-in user's own sessions ("devices"): browser and system, IP, last activity, sign-in time, which one is
 * this device, and signing out one other session or every other one. The current session is never ended here (the
 * Sign out link does that, through the provider's logout). Every POST carries a CSRF token bound to the session.
 */
import { formParser } from '../http/input-hygiene.js';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { ServerSideSession } from '../../stores/session-store.js';
import { HttpError } from '../http/errors.js';
import { describeUserAgent } from '../http/user-agent.js';
import { ConsoleAuth, type ConsoleUser } from './console-auth.js';
import type { RouteDeps } from './deps.js';

const LIST_PATH = '/account/sessions';

export function accountPageRoutes(deps: RouteDeps): Router {
  const auth = new ConsoleAuth(deps);
  const router = new Router();
  const form = formParser();

  async function signOut(user: ConsoleUser, sessions: ServerSideSession[]): Promise<number> {
    let ended = 0;
    for (const session of sessions) {
      // Only this user's sessions, never the one making the request.
      if (session.subjectId !== user.accountId || session.sessionId === user.sessionUid) continue;
      const result = await deps.sessions.removeSessions({
        sessionId: session.sessionId,
        actor: `self:${user.accountId}`,
      });
      ended += result.sessions.length;
    }
    return ended;
  }

  function done(ctx: Context, ended: number) {
    ctx.status = 303;
    ctx.redirect(`${LIST_PATH}?signedOut=${ended}`);
  }

  router.get(LIST_PATH, async (ctx) => {
    const user = await auth.requireUser(ctx);
    if (!user) return;
    const common = {
      userName: String(user.account.claims.name ?? user.account.username ?? user.accountId),
      isAdmin: user.account.roles.includes('admin'),
      signOutUrl: auth.signOutUrl,
      csrf: auth.csrfToken(user),
    };
    if (!deps.sessions.enabled) return deps.render(ctx, 'account-sessions', { ...common, enabled: false });
    const sessions = await deps.sessions.sessionsOf(user.accountId);
    const rows = sessions.map((session) => ({
      sessionId: session.sessionId,
      browser: describeUserAgent(session.lastUserAgent ?? session.loginUserAgent),
      ip: (session.lastIp ?? session.loginIp ?? '').replace(/^::ffff:(?=\d+\.)/, ''),
      lastActivity: when(session.renewed),
      signedIn: when(session.authTime ?? session.created),
      current: session.sessionId === user.sessionUid,
    }));
    rows.sort((a, b) => Number(b.current) - Number(a.current));
    const signedOut = Number.parseInt(String(ctx.query.signedOut ?? ''), 10);
    deps.render(ctx, 'account-sessions', {
      ...common,
      enabled: true,
      rows,
      others: rows.filter((row) => !row.current).length,
      signedOut: Number.isSafeInteger(signedOut) && signedOut >= 0 ? signedOut : undefined,
    });
  });

  router.post(`${LIST_PATH}/sign-out`, form, async (ctx) => {
    const user = await auth.requireUser(ctx);
    if (!user) return;
    auth.requireCsrf(ctx, user);
    const sessionId = (ctx.request.body as Record<string, unknown>).sessionId;
    if (typeof sessionId !== 'string' || !sessionId) throw new HttpError(400, 'invalid_request', 'which session?');
    if (sessionId === user.sessionUid)
      throw new HttpError(400, 'invalid_request', 'this is the session you are using; use Sign out instead');
    const session = await deps.sessions.getSession(sessionId.slice(0, 255));
    if (!session || session.subjectId !== user.accountId)
      throw new HttpError(404, 'not_found', 'no such session of yours (it may have ended already)');
    done(ctx, await signOut(user, [session]));
  });

  router.post(`${LIST_PATH}/sign-out-others`, form, async (ctx) => {
    const user = await auth.requireUser(ctx);
    if (!user) return;
    auth.requireCsrf(ctx, user);
    done(ctx, await signOut(user, await deps.sessions.sessionsOf(user.accountId)));
  });

  return router;
}

function when(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
