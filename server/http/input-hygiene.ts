/**
 * Input hygiene at the edge: control characters (NUL and the other C0 characters, DEL) never belong in a URL, a
 * query parameter or a form field Gatehouse reads, and a NUL in particular must never reach SQLite (it would cut a
 * statement short). Neither does a URL whose percent-encoding is malformed or decodes to invalid UTF-8 (`%ff`, `%C0%80`,
 * a lone `%`): such a URL was never produced by a client following RFC 3986, and a lenient decoder would turn it into
 * something else than what was sent. Such requests get a clear 400 before anything else runs.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { HttpError } from './errors.js';

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
/** What could fail the check: a control character, or a percent sign (a decoding that may fail or yield one). */
const SUSPECT = /[%\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** The decoded text, or undefined when the percent-encoding is malformed or is not UTF-8. */
function strictlyDecoded(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** 400 for a path or query string that is not valid percent-encoded UTF-8 or carries control characters (every route, the provider's included). */
export function rejectControlCharacters(): Middleware {
  return async (ctx, next) => {
    // Most URLs carry neither (the raw URL holds the path and the query string): nothing to decode or refuse.
    if (!SUSPECT.test(ctx.url)) return next();
    const path = strictlyDecoded(ctx.path);
    const query = strictlyDecoded(ctx.querystring);
    if (path === undefined || query === undefined) {
      refuse(ctx, 'the URL is not valid percent-encoded UTF-8');
      return;
    }
    if (CONTROL.test(path) || CONTROL.test(query)) {
      refuse(ctx, 'control characters are not allowed in the URL');
      return;
    }
    await next();
  };
}

/** 400 in the shape the path's clients read: the admin API's error object there, OAuth's (RFC 6749 §5.2) elsewhere. */
function refuse(ctx: Parameters<Middleware>[0], description: string): void {
  ctx.status = 400;
  ctx.type = 'json';
  ctx.body = ctx.path.startsWith('/admin/api/')
    ? { error: 'invalid_request', message: description, requestId: ctx.state.requestId }
    : { error: 'invalid_request', error_description: description };
}

function hasControl(value: unknown): boolean {
  if (typeof value === 'string') return CONTROL.test(value);
  if (Array.isArray(value)) return value.some(hasControl);
  return false;
}

/** A urlencoded form parser (16 KB at most) whose fields may not hold control characters. */
export function formParser(): Middleware {
  const parse = bodyParser({ enableTypes: ['form'], formLimit: '16kb' });
  return (ctx, next) =>
    parse(ctx, async () => {
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      const bad = Object.entries(body).find(([, value]) => hasControl(value));
      if (bad)
        throw new HttpError(400, 'invalid_request', `form field "${bad[0].slice(0, 40)}" contains control characters`);
      await next();
    });
}
