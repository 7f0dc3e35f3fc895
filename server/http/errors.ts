/**
 * Gatehouse's HTTP errors: a status, Koa's `expose` rule (messages of errors below 500 are shown, others are not) and
 * a stable code. `errorHandler` turns any error thrown by Gatehouse's own routes into JSON (API paths) or a page.
 */
import type { Middleware } from 'koa';
import onHeaders from 'on-headers';
import type { Logger } from 'pino';
import type { PageRenderer } from './render.js';
import { isSessionStoreError } from '../../stores/session-store.js';
import { isDatabaseUnavailable } from '../../stores/sequelize/errors.js';

/** Seconds a client should wait before retrying a 503 (the database, or a server shutting down). */
export const RETRY_AFTER_SECONDS = 5;

/** Something that wants to know about database outages (server/database-outage.ts). */
export interface OutageReporter {
  failed(error: unknown, where: string): void;
}

/**
 * Every 503 carries `Retry-After`, whoever wrote it: Gatehouse's routes, `/readyz`, and oidc-provider's own error path
 * (token endpoint, userinfo, ...), which writes its responses itself. The header is added just before the response's
 * headers go out (on-headers), unless the response already has one.
 */
export function retryAfterOnUnavailable(): Middleware {
  return async (ctx, next) => {
    const res = ctx.res;
    onHeaders(res, () => {
      if (res.statusCode === 503 && !res.hasHeader('retry-after'))
        res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    });
    await next();
  };
}

const STORE_ERROR_STATUS: Record<string, number> = {
  invalid_filter: 400,
  invalid_argument: 400,
  not_found: 404,
  duplicate: 409,
};

/** Status, stable code and public message of any error (HttpError, a store error, an oidc-provider error, ...). */
export function describeError(caught: unknown): {
  status: number;
  code: string;
  message: string;
  details?: Record<string, string>;
} {
  if (isDatabaseUnavailable(caught)) {
    return {
      status: 503,
      code: 'temporarily_unavailable',
      message: 'the service is temporarily unavailable (database unreachable); try again shortly',
    };
  }
  if (isSessionStoreError(caught, 'unavailable')) {
    return {
      status: 503,
      code: 'temporarily_unavailable',
      message: 'the service is temporarily unavailable (session store unreachable); try again shortly',
    };
  }
  const error = caught as Partial<HttpError> &
    Error & { error?: string; error_description?: string; statusCode?: number };
  let status =
    typeof error.status === 'number' ? error.status : typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (isSessionStoreError(caught)) status = STORE_ERROR_STATUS[caught.code] ?? 500;
  if (!(status >= 400 && status < 600)) status = 500;
  const code =
    typeof error.error === 'string'
      ? error.error
      : typeof error.code === 'string'
        ? error.code
        : status < 500
          ? 'bad_request'
          : 'server_error';
  const message =
    status < 500
      ? (error.error_description ?? error.message)
      : status === 503
        ? 'the service is temporarily unavailable; try again shortly'
        : 'internal server error';
  return {
    status,
    code: status < 500 ? code : code === 'storage' ? 'server_error' : code,
    message,
    details: error.details,
  };
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly details?: Record<string, string>;
  constructor(
    status: number,
    code: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, string> },
  ) {
    super(message, options);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.expose = status < 500;
    this.details = options?.details;
  }
}

/** An error message fit for a log line: drivers append the SQL with its values (`sql: ...`), which may hold secrets. */
export function loggableMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\n?\s*sql: /)[0].slice(0, 500);
}

export function errorHandler(logger: Logger, render: PageRenderer, outage: OutageReporter): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (caught) {
      const { status, code, message, details } = describeError(caught);
      const error = caught as Error;
      const err = { name: error?.name, message: loggableMessage(error) };
      // A database outage is logged once (with its cause) by the outage tracker, not once per request.
      if (status === 503 && isDatabaseUnavailable(caught)) outage.failed(caught, ctx.path);
      else if (status === 503) logger.warn({ reqId: ctx.state.requestId, err }, 'service unavailable');
      else if (status >= 500)
        logger.error(
          { reqId: ctx.state.requestId, err: { ...err, stack: error?.stack?.split('\n').slice(1, 8).join('\n') } },
          'unhandled error',
        );
      ctx.status = status;
      if (ctx.path.startsWith('/admin/api/') || ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: code, message, ...(details ? { details } : {}), requestId: ctx.state.requestId };
      } else {
        render(ctx, 'error', { error: code, description: message, requestId: ctx.state.requestId });
        ctx.status = status;
      }
      if (status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    }
  };
}
