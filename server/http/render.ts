/**
 * Page rendering: Eta templates from views/ with auto-escaping, and a per-response Content-Security-Policy whose
 * nonce is the only way a style (or script) runs on the page.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export type PageRenderer = (
  ctx: Context | { type: string; body: unknown; set(field: string, value: string): void },
  view: string,
  data?: Record<string, unknown>,
) => void;

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function createRenderer(site: { title: string }): PageRenderer {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true, autoTrim: false });
  return (ctx, view, data = {}) => {
    const nonce = randomBytes(16).toString('base64');
    ctx.set('Content-Security-Policy', contentSecurityPolicy(nonce));
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = eta.render(`./${view}`, { ...data, nonce, site });
  };
}
