/**
 * Gatehouse's HTTP errors: a status, Koa's `expose` rule (messages of errors below 500 are shown, others are not) and
 * a stable code. `errorHandler` turns any error thrown by Gatehouse's own routes into JSON (API paths) or a page.
 */
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import type { PageRenderer } from './render.js';

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly details?: Record<string, string>;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown; details?: Record<string, string> }) {
    super(message, options);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.expose = status < 500;
    this.details = options?.details;
  }
}

export function errorHandler(logger: Logger, render: PageRenderer): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (caught) {
      const error = caught as Partial<HttpError> & Error;
      const status = typeof error.status === 'number' && error.status >= 400 && error.status < 600 ? error.status : 500;
      const expose = status < 500;
      const code = error.code && typeof error.code === 'string' ? error.code : status < 500 ? 'bad_request' : 'server_error';
      const message = expose ? error.message : 'internal server error';
      if (status >= 500) logger.error({ reqId: ctx.state.requestId, err: { name: error.name, message: error.message, stack: error.stack } }, 'unhandled error');
      ctx.status = status;
      if (ctx.path.startsWith('/admin/api/') || ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: code, message, ...(error.details ? { details: error.details } : {}), requestId: ctx.state.requestId };
      } else {
        render(ctx, 'error', { error: code, description: message, requestId: ctx.state.requestId });
        ctx.status = status;
      }
    }
  };
}
