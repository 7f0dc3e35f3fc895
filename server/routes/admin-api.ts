/**
 * The admin API (`/admin/api/v1/`): search sessions, end them (one, or all of a subject), see back-channel logout
 * delivery outcomes, create, change, disable or delete users of the directory (disabling or deleting a user ends
 * their sessions, tokens and grants, see UserOffboarding), see or lift a user's sign-in lockout, and manage the clients
 * (admin-api-clients.ts). JSON in every answer, errors included; described by the
 * OpenAPI document at `/admin/api/openapi.json` (admin-openapi.ts), which needs no token.
 *
 * Callers authenticate with `Authorization: Bearer <token>`, where the token is an access token Gatehouse itself
 * issued with the client_credentials grant and whose scope includes `gatehouse:admin`. It is checked locally against
 * the provider's own ClientCredentials records (opaque tokens), never logged and never echoed.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { UsernameTakenError } from '../../stores/sequelize/directory.js';
import { HttpError, loggableMessage } from '../http/errors.js';
import { adminClientRoutes } from './admin-api-clients.js';
import { buildOpenApiDocument } from './admin-openapi.js';
import {
  BACKCHANNEL_PARAMS,
  checkPathParam,
  lockoutJson,
  notificationJson,
  parseQuery,
  parseUserBody,
  REMOVE_PARAMS,
  SESSION_ID_PATH,
  SESSION_QUERY_PARAMS,
  sessionJson,
  sessionListJson,
  SUBJECT_PATH,
  USER_PATH,
  userJson,
  type ParsedParams,
} from './admin-api-params.js';
import type { RouteDeps } from './deps.js';

export const ADMIN_SCOPE = 'gatehouse:admin';
export const ADMIN_API_PREFIX = '/admin/api/v1';
/** RFC 6750 b64token; longer than any token the provider issues is refused before a lookup. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]{1,1024}=*) *$/i;

interface AdminState {
  adminClientId: string;
}

export function adminApiRoutes(deps: RouteDeps): Router {
  const router = new Router();
  const { sessions, backchannel } = deps;
  const authenticate = bearerAuth(deps);

  router.get('/admin/api/openapi.json', (ctx) => {
    ctx.body = buildOpenApiDocument(deps.config.issuer);
  });

  router.get(`${ADMIN_API_PREFIX}/sessions`, authenticate, async (ctx) => {
    const query = parseQuery(ctx.query, SESSION_QUERY_PARAMS);
    const result = await sessions.querySessions({
      subjectId: query.subject,
      sessionId: query.sessionId,
      displayNamePrefix: query.displayName,
      clientId: query.clientId,
      pageSize: query.pageSize,
      token: query.page,
      countTotal: query.count ?? true,
    });
    ctx.body = sessionListJson(result, await sessions.apisOf(result.results));
  });

  router.get(`${ADMIN_API_PREFIX}/sessions/:sessionId`, authenticate, async (ctx) => {
    const sessionId = ctx.params.sessionId;
    parseQuery(ctx.query, [], checkPathParam(SESSION_ID_PATH, sessionId));
    const session = await sessions.getSession(sessionId);
    if (!session?.subjectId) throw notFound(sessionId);
    ctx.body = sessionJson(session, (await sessions.apisOf([session])).get(session.sessionId));
  });

  router.delete(`${ADMIN_API_PREFIX}/sessions/:sessionId`, authenticate, async (ctx) => {
    const sessionId = ctx.params.sessionId;
    const options = parseQuery(ctx.query, REMOVE_PARAMS, checkPathParam(SESSION_ID_PATH, sessionId));
    const result = await sessions.removeSessions({ sessionId, ...removeOptions(options), actor: adminOf(ctx) });
    if (result.sessions.length === 0) throw notFound(sessionId);
    ctx.body = result;
  });

  router.delete(`${ADMIN_API_PREFIX}/subjects/:subject/sessions`, authenticate, async (ctx) => {
    const subjectId = ctx.params.subject;
    const options = parseQuery(ctx.query, REMOVE_PARAMS, checkPathParam(SUBJECT_PATH, subjectId));
    ctx.body = await sessions.removeSessions({ subjectId, ...removeOptions(options), actor: adminOf(ctx) });
  });

  const parseJson = bodyParser({ enableTypes: ['json'], jsonLimit: '64kb', encoding: 'utf-8' });
  // The parser's own messages may quote the body (a password): answer with a fixed one.
  const json = async (ctx: Context, next: Next) => {
    try {
      await parseJson(ctx, async () => undefined);
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw new HttpError(413, 'payload_too_large', 'the body must be at most 64 KB');
      // Valid JSON that is not an object or array (null, "x", 1) is refused by the parser's strict mode.
      const notObject = /only supports object and array/.test((error as Error).message);
      const problem = notObject ? 'must be a JSON object' : 'is not valid JSON';
      throw new HttpError(400, 'invalid_request', `the body ${problem}`, { details: { body: problem } });
    }
    // A JSON object in the body, for the PUTs: 400 for none at all, 415 for another media type.
    if (!ctx.request.length && !ctx.get('transfer-encoding'))
      throw new HttpError(400, 'invalid_request', 'a JSON body is required', { details: { body: 'is required' } });
    if (!ctx.is('application/json'))
      throw new HttpError(415, 'unsupported_media_type', 'send the body as application/json');
    await next();
  };
  const { accounts, offboarding } = deps;

  /** After a removal or a disable: end the user's sessions, tokens and grants (the user can no longer sign in). */
  const endAccess = async (ctx: Context, subject: string, what: 'removed' | 'disabled') => {
    try {
      return await offboarding.endAccess(subject, adminOf(ctx));
    } catch (error) {
      deps.logger.error(
        { event: 'user.access_not_ended', subject, err: { message: loggableMessage(error) } },
        `user ${what}, but ending their sessions failed; repeat the request (DELETE ${ADMIN_API_PREFIX}/users/${encodeURIComponent(subject)} finishes it for a removed user)`,
      );
      throw error;
    }
  };

  router.get(`${ADMIN_API_PREFIX}/users/:subject`, authenticate, async (ctx) => {
    const subject = ctx.params.subject;
    parseQuery(ctx.query, [], checkPathParam(USER_PATH, subject));
    const user = await accounts.get(subject);
    if (!user) throw userNotFound(subject);
    ctx.body = userJson(user);
  });

  // Create or change a user. `claims` replaces the claims; absent optional fields keep their values (new user:
  // username = subject, no roles, enabled, no password). A password is hashed at the configured cost.
  router.put(`${ADMIN_API_PREFIX}/users/:subject`, authenticate, json, async (ctx) => {
    const subject = ctx.params.subject;
    parseQuery(ctx.query, [], checkPathParam(USER_PATH, subject));
    const body = parseUserBody(ctx.request.body);
    const existing = await accounts.get(subject);
    const passwordHash =
      body.password !== undefined ? await accounts.hashPassword(body.password) : (existing?.passwordHash ?? null);
    try {
      await accounts.save({
        subject,
        username: body.username ?? existing?.username ?? subject,
        passwordHash,
        claims: body.claims,
        roles: body.roles ? [...new Set(body.roles)] : (existing?.roles ?? []),
        disabled: body.disabled ?? existing?.disabled ?? false,
        source: 'api',
      });
    } catch (error) {
      if (error instanceof UsernameTakenError) {
        throw new HttpError(409, 'conflict', `username "${error.username}" is already used by another user`, {
          details: { username: 'is already used by another user' },
        });
      }
      throw error;
    }
    deps.logger.info(
      { event: 'user.saved', subject, created: !existing, actor: adminOf(ctx) },
      existing ? 'user updated' : 'user created',
    );
    const saved = (await accounts.get(subject))!;
    if (existing && saved.disabled) await endAccess(ctx, subject, 'disabled');
    ctx.status = existing ? 200 : 201;
    if (!existing) ctx.set('Location', `${ADMIN_API_PREFIX}/users/${encodeURIComponent(subject)}`);
    ctx.body = userJson(saved);
  });

  router.delete(`${ADMIN_API_PREFIX}/users/:subject`, authenticate, async (ctx) => {
    const subject = ctx.params.subject;
    parseQuery(ctx.query, [], checkPathParam(USER_PATH, subject));
    if (!(await accounts.remove(subject))) {
      // Already gone: a DELETE repeated after one whose ending of access failed finishes it (else a no-op), then 404.
      await endAccess(ctx, subject, 'removed');
      throw userNotFound(subject);
    }
    deps.logger.info({ event: 'user.removed', subject, actor: adminOf(ctx) }, 'user removed');
    const { sessions: ended, grantsRevoked, notificationsQueued } = await endAccess(ctx, subject, 'removed');
    ctx.body = { subject, removed: true, sessions: ended, grantsRevoked, notificationsQueued };
  });

  adminClientRoutes(router, ADMIN_API_PREFIX, deps, { authenticate, json, adminOf });

  // Sign-in protection: what is counted and locked for the user's name, and lifting it (docs/sign-in-protection.md).
  router.get(`${ADMIN_API_PREFIX}/users/:subject/lockout`, authenticate, async (ctx) => {
    const subject = ctx.params.subject;
    parseQuery(ctx.query, [], checkPathParam(USER_PATH, subject));
    const user = await accounts.get(subject);
    if (!user) throw userNotFound(subject);
    ctx.body = lockoutJson(user, await deps.throttle.status(user.username));
  });

  router.delete(`${ADMIN_API_PREFIX}/users/:subject/lockout`, authenticate, async (ctx) => {
    const subject = ctx.params.subject;
    parseQuery(ctx.query, [], checkPathParam(USER_PATH, subject));
    const user = await accounts.get(subject);
    if (!user) throw userNotFound(subject);
    const cleared = await deps.throttle.unlock(user.username);
    const detail = { subject, actor: adminOf(ctx), cleared };
    deps.logger.info({ event: 'login.unlocked', ...detail }, 'sign-in unlocked');
    deps.events.emit('login.unlocked', detail);
    ctx.body = { ...lockoutJson(user, await deps.throttle.status(user.username)), cleared };
  });

  router.get(`${ADMIN_API_PREFIX}/backchannel`, authenticate, async (ctx) => {
    const query = parseQuery(ctx.query, BACKCHANNEL_PARAMS);
    const [rows, counts] = await Promise.all([backchannel.outbox.list(query), backchannel.outbox.countByStatus()]);
    ctx.body = { counts, notifications: rows.map(notificationJson) };
  });

  // Anything else under /admin/api/ answers in JSON too: 405 with Allow for a known path, else 404.
  const catchAll = '/admin/api/{*rest}';
  router.all(catchAll, async (ctx) => {
    if (ctx.path.startsWith(`${ADMIN_API_PREFIX}/`)) await authenticate(ctx, async () => undefined);
    const allowed = new Set(
      router
        .match(ctx.path, ctx.method)
        .path.filter((layer) => layer.path !== catchAll)
        .flatMap((layer) => layer.methods),
    );
    if (allowed.size === 0) throw new HttpError(404, 'not_found', `no admin API endpoint at ${ctx.path}`);
    ctx.set('Allow', [...allowed].join(', '));
    throw new HttpError(
      405,
      'method_not_allowed',
      `${ctx.method} is not allowed here; use ${[...allowed].join(' or ')}`,
    );
  });

  return router;
}

function removeOptions(options: ParsedParams<typeof REMOVE_PARAMS>) {
  return {
    clientIds: options.clientIds,
    revokeTokens: options.revokeTokens ?? true,
    revokeConsents: options.revokeConsents ?? true,
    sendBackchannelLogout: options.sendBackchannelLogout ?? true,
    removeSession: options.removeSession ?? true,
  };
}

function notFound(sessionId: string): HttpError {
  return new HttpError(404, 'not_found', `no session with id ${JSON.stringify(sessionId)}`);
}

function userNotFound(subject: string): HttpError {
  return new HttpError(404, 'not_found', `no user with subject ${JSON.stringify(subject)}`);
}

function adminOf(ctx: Context): string {
  return (ctx.state as AdminState).adminClientId;
}

/** The bearer-token check: 401 (with a challenge) without a valid token, 403 without the admin scope. */
function bearerAuth({ provider }: RouteDeps) {
  const challenge = (status: 401 | 403, code: string, message: string, withError: boolean) => {
    const error = new HttpError(status, code, message);
    const parts = ['Bearer realm="gatehouse-admin"'];
    if (withError) parts.push(`error="${code}"`, `error_description="${message}"`);
    if (status === 403) parts.push(`scope="${ADMIN_SCOPE}"`);
    return Object.assign(error, { challenge: parts.join(', ') });
  };

  return async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      ctx.state.adminClientId = await clientOf(ctx.get('Authorization'));
    } catch (error) {
      const challenge = (error as { challenge?: string }).challenge;
      if (challenge) ctx.set('WWW-Authenticate', challenge);
      throw error;
    }
    await next();
  };

  async function clientOf(header: string): Promise<string> {
    if (!header || !/^Bearer(\s|$)/i.test(header))
      throw challenge(401, 'unauthorized', `a bearer token with the ${ADMIN_SCOPE} scope is required`, false);
    const value = BEARER.exec(header)?.[1];
    const token = value ? await provider.ClientCredentials.find(value) : undefined;
    if (!token || token.isExpired || token.isSenderConstrained() || !token.clientId) {
      throw challenge(401, 'invalid_token', 'the access token is invalid or expired', true);
    }
    const client = await provider.Client.find(token.clientId);
    if (!client) throw challenge(401, 'invalid_token', 'the access token is invalid or expired', true);
    // The client must name the scope in its own registration too, not only hold a token with it: a token issued to a
    // client whose registration no longer lists it (or never did) is not an administrator's.
    const registered = new Set((client.scope ?? '').split(' '));
    if (!token.scopes.has(ADMIN_SCOPE) || !registered.has(ADMIN_SCOPE)) {
      throw challenge(403, 'insufficient_scope', `the access token lacks the ${ADMIN_SCOPE} scope`, true);
    }
    return token.clientId;
  }
}
