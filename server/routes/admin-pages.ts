/**
 * The administrators' session page: search every server-side session, page through them, and revoke one session or
 * all sessions of a user after a confirmation step. Signed-in users with the `admin` role only; every POST carries a
 * CSRF token bound to the administrator's own session.
 *
 * This router also carries the console sign-in callback (`/console/callback`) shared with the account pages.
 */
import { formParser } from '../http/input-hygiene.js';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { ServerSideSession } from '../../stores/session-store.js';
import type { SessionApi } from '../sessions/session-service.js';
import { HttpError } from '../http/errors.js';
import { describeUserAgent } from '../http/user-agent.js';
import { ConsoleAuth, localPath, type ConsoleUser } from './console-auth.js';
import type { RouteDeps } from './deps.js';

const LIST_PATH = '/admin/sessions';
const REVOKE_PATH = '/admin/sessions/revoke';
const PAGE_SIZE = 25;
const FILTERS = ['subject', 'displayName', 'sessionId', 'clientId'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

export function adminPageRoutes(deps: RouteDeps): Router {
  const auth = new ConsoleAuth(deps);
  const router = new Router();
  const form = formParser();
  auth.mountCallback(router);

  async function requireAdmin(ctx: Context): Promise<ConsoleUser | undefined> {
    const user = await auth.requireUser(ctx);
    if (user && !user.account.roles.includes('admin'))
      throw new HttpError(403, 'forbidden', 'this page is for administrators only');
    return user;
  }

  function page(ctx: Context, view: string, user: ConsoleUser, data: Record<string, unknown>) {
    const name = String(user.account.claims.name ?? user.account.username ?? user.accountId);
    deps.render(ctx, view, { ...data, userName: name, signOutUrl: auth.signOutUrl, csrf: auth.csrfToken(user) });
  }

  router.get(LIST_PATH, async (ctx) => {
    const user = await requireAdmin(ctx);
    if (!user) return;
    const filters = readFilters(ctx.query);
    if (!deps.sessions.enabled) return page(ctx, 'admin-sessions', user, { enabled: false, filters });
    const result = await deps.sessions.querySessions({
      subjectId: filters.subject || undefined,
      displayNamePrefix: filters.displayName || undefined,
      sessionId: filters.sessionId || undefined,
      clientId: filters.clientId || undefined,
      token: typeof ctx.query.token === 'string' ? ctx.query.token.slice(0, 1024) : undefined,
      pageSize: PAGE_SIZE,
      countTotal: true,
    });
    const listUrl = listHref(filters);
    const revoked = Number.parseInt(String(ctx.query.revoked ?? ''), 10);
    const apis = await deps.sessions.apisOf(result.results);
    page(ctx, 'admin-sessions', user, {
      enabled: true,
      filters,
      showApis: deps.apis.enabled,
      rows: result.results.map((session) => row(session, user, listUrl, apis.get(session.sessionId))),
      total: result.totalCount ?? result.results.length,
      previousHref: result.previousToken ? listHref(filters, result.previousToken) : undefined,
      nextHref: result.nextToken ? listHref(filters, result.nextToken) : undefined,
      revoked: Number.isSafeInteger(revoked) && revoked >= 0 ? revoked : undefined,
    });
  });

  router.get(REVOKE_PATH, async (ctx) => {
    const user = await requireAdmin(ctx);
    if (!user) return;
    const target = readTarget(ctx.query);
    const back = backPath(ctx.query.back);
    if ('sessionId' in target) {
      const session = await deps.sessions.getSession(target.sessionId);
      if (!session?.subjectId) throw new HttpError(404, 'not_found', 'no such session (it may have ended already)');
      return page(ctx, 'admin-revoke', user, { target, back, session: row(session, user, back), count: 1 });
    }
    const count = (await deps.sessions.sessionsOf(target.subjectId)).length;
    page(ctx, 'admin-revoke', user, { target, back, count, ownAccount: target.subjectId === user.accountId });
  });

  router.post(REVOKE_PATH, form, async (ctx) => {
    const user = await requireAdmin(ctx);
    if (!user) return;
    auth.requireCsrf(ctx, user);
    const body = ctx.request.body as Record<string, unknown>;
    const target = readTarget(body);
    const result = await deps.sessions.removeSessions({ ...target, actor: `admin:${user.accountId}` });
    const back = new URL(backPath(body.back), 'http://local');
    back.searchParams.delete('token');
    back.searchParams.set('revoked', String(result.sessions.length));
    ctx.status = 303;
    ctx.redirect(back.pathname + back.search);
  });

  return router;
}

function text(value: unknown, max = 255): string {
  return typeof value === 'string' ? value.trim().slice(0, max) : '';
}

function readFilters(query: Record<string, unknown>): Filters {
  return Object.fromEntries(FILTERS.map((name) => [name, text(query[name])])) as Filters;
}

function listHref(filters: Filters, token?: string): string {
  const params = new URLSearchParams(Object.entries(filters).filter(([, value]) => value));
  if (token) params.set('token', token);
  const search = params.toString();
  return search ? `${LIST_PATH}?${search}` : LIST_PATH;
}

/** Exactly one of a session id or a subject. */
function readTarget(source: Record<string, unknown>): { sessionId: string } | { subjectId: string } {
  const sessionId = text(source.sessionId);
  const subjectId = text(source.subject);
  if (sessionId && !subjectId) return { sessionId };
  if (subjectId && !sessionId) return { subjectId };
  throw new HttpError(400, 'invalid_request', 'name either one session or one subject');
}

/** The list page to return to: only the admin list itself, with its filters. */
function backPath(value: unknown): string {
  const path = localPath(value);
  return path && (path === LIST_PATH || path.startsWith(`${LIST_PATH}?`)) ? path : LIST_PATH;
}

function when(date: Date | null): string {
  return date ? `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never';
}

/** How a session's API tokens end, in the admin page's words. */
const TOKENS_END: Record<SessionApi['lifetime'], string> = {
  'revoked-with-session': 'reference, ends with the session',
  'revoked-on-revocation': 'reference, ends with the session unless offline_access',
  'until-expiry': 'JWT, valid until expiry',
};

function duration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function row(session: ServerSideSession, user: ConsoleUser, back: string, apis: SessionApi[] = []) {
  const revoke = (params: Record<string, string>) => `${REVOKE_PATH}?${new URLSearchParams({ ...params, back })}`;
  return {
    subject: session.subjectId ?? '',
    displayName: session.displayName ?? '',
    sessionId: session.sessionId,
    clients: session.clients.map((client) => client.clientId).join(', '),
    apis: apis.map((api) => ({
      name: api.name,
      clientId: api.clientId,
      tokensEnd:
        api.lifetime === 'until-expiry'
          ? `${TOKENS_END[api.lifetime]} (≤ ${duration(api.ttl)})`
          : TOKENS_END[api.lifetime],
    })),
    created: when(session.created),
    renewed: when(session.renewed),
    expires: when(session.expires),
    ip: (session.lastIp ?? session.loginIp ?? '').replace(/^::ffff:(?=\d+\.)/, ''),
    browser: describeUserAgent(session.lastUserAgent ?? session.loginUserAgent),
    current: session.sessionId === user.sessionUid,
    revokeHref: revoke({ sessionId: session.sessionId }),
    revokeAllHref: session.subjectId ? revoke({ subject: session.subjectId }) : undefined,
  };
}
