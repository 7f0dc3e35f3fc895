/**
 * Input hygiene at the edge: control characters (NUL and the other C0 characters, DEL) never belong in a URL, a
 * query parameter or a form field Gatehouse reads, and a NUL in particular must never reach SQLite (it would cut a
 * statement short). Such requests get a clear 400 before anything else runs.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { HttpError } from './errors.js';

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function decoded(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

/** 400 for a path or query string carrying control characters (every route, the provider's included). */
export function rejectControlCharacters(): Middleware {
  return async (ctx, next) => {
    if (CONTROL.test(decoded(ctx.path)) || CONTROL.test(decoded(ctx.querystring))) {
      ctx.status = 400;
      ctx.type = 'json';
      ctx.body = { error: 'invalid_request', error_description: 'control characters are not allowed in the URL' };
      return;
    }
    await next();
  };
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
      if (bad) throw new HttpError(400, 'invalid_request', `form field "${bad[0].slice(0, 40)}" contains control characters`);
      await next();
    });
}
