/**
 * The admin API (`/admin/api/v1/`): search sessions, end them (one, or all of a subject), and see back-channel logout
 * delivery outcomes. JSON in every answer, errors included; described by the OpenAPI document at
 * `/admin/api/openapi.json` (admin-openapi.ts), which needs no token.
 *
 * Callers authenticate with `Authorization: Bearer <token>`, where the token is an access token Gatehouse itself
 * issued with the client_credentials grant and whose scope includes `gatehouse:admin`. It is checked locally against
 * the provider's own ClientCredentials records (opaque tokens), never logged and never echoed.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { HttpError } from '../http/errors.js';
import { buildOpenApiDocument } from './admin-openapi.js';
import {
  BACKCHANNEL_PARAMS,
  checkPathParam,
  notificationJson,
  parseQuery,
  REMOVE_PARAMS,
  SESSION_ID_PATH,
  SESSION_QUERY_PARAMS,
  sessionJson,
  sessionListJson,
  SUBJECT_PATH,
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
    ctx.body = sessionListJson(result);
  });

  router.get(`${ADMIN_API_PREFIX}/sessions/:sessionId`, authenticate, async (ctx) => {
    const sessionId = ctx.params.sessionId;
    parseQuery(ctx.query, [], checkPathParam(SESSION_ID_PATH, sessionId));
    const session = await sessions.getSession(sessionId);
    if (!session?.subjectId) throw notFound(sessionId);
    ctx.body = sessionJson(session);
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

  router.get(`${ADMIN_API_PREFIX}/backchannel`, authenticate, async (ctx) => {
    const query = parseQuery(ctx.query, BACKCHANNEL_PARAMS);
    const [rows, counts] = await Promise.all([backchannel.outbox.list(query), backchannel.outbox.countByStatus()]);
    ctx.body = { counts, notifications: rows.map(notificationJson) };
  });

  // Anything else under /admin/api/ answers in JSON too: 405 with Allow for a known path, else 404.
  const catchAll = '/admin/api/{*rest}';
  router.all(catchAll, async (ctx) => {
    if (ctx.path.startsWith(`${ADMIN_API_PREFIX}/`)) await authenticate(ctx, async () => undefined);
    const allowed = new Set(router.match(ctx.path, ctx.method).path.filter((layer) => layer.path !== catchAll).flatMap((layer) => layer.methods));
    if (allowed.size === 0) throw new HttpError(404, 'not_found', `no admin API endpoint at ${ctx.path}`);
    ctx.set('Allow', [...allowed].join(', '));
    throw new HttpError(405, 'method_not_allowed', `${ctx.method} is not allowed here; use ${[...allowed].join(' or ')}`);
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
    if (!header || !/^Bearer(\s|$)/i.test(header)) throw challenge(401, 'unauthorized', `a bearer token with the ${ADMIN_SCOPE} scope is required`, false);
    const value = BEARER.exec(header)?.[1];
    const token = value ? await provider.ClientCredentials.find(value) : undefined;
    if (!token || token.isExpired || token.isSenderConstrained() || !token.clientId) {
      throw challenge(401, 'invalid_token', 'the access token is invalid or expired', true);
    }
    const client = await provider.Client.find(token.clientId);
    if (!client) throw challenge(401, 'invalid_token', 'the access token is invalid or expired', true);
    if (!token.scopes.has(ADMIN_SCOPE)) throw challenge(403, 'insufficient_scope', `the access token lacks the ${ADMIN_SCOPE} scope`, true);
    return token.clientId;
  }
}
