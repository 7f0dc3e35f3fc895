/**
 * One structured log line per request, with a request id (also sent back as X-Request-Id). The path is logged
 * without its query string (queries carry codes, tokens and hints) and with interaction/resume ids replaced by the
 * route pattern: nothing that identifies a login in progress reaches a log.
 */
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { loggablePath } from './route-label.js';

export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      const line = {
        reqId: requestId,
        method: ctx.method,
        path: loggablePath(ctx.path, (ctx as { _matchedRoute?: string })._matchedRoute),
        status,
        ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
      };
      // 503 is "unavailable, try again" (a database outage, a shutdown): its cause is logged once elsewhere
      // (server/database-outage.ts), so the request line itself is no error.
      if (status === 503) logger.warn(line, 'request');
      else if (status >= 500) logger.error(line, 'request');
      else logger.info(line, 'request');
    }
  };
}
