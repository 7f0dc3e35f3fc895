/**
 * Gatehouse's routers serve a handful of first path segments (`/admin/...`, `/interaction/...`, `/healthz`, `/`);
 * everything else is the provider's. Without a gate, every provider request (discovery, token, userinfo, ...) is
 * matched against every route pattern of every router, and passes each router's `allowedMethods`, before it reaches
 * the provider. `gatedRouters` lets only requests under the routers' own first segments through them; the others go
 * straight on. The segments are read from the routers' routes themselves, so a new route needs nothing here.
 *
 * Only skips that cannot change an answer: a route matches a path only if the path's first segment equals the route's
 * literal first segment (@koa/router matches the raw path, case-insensitively by default, so the comparison is in
 * lower case). When some route could match more than that (a middleware layer, a regular expression, a parameter in
 * the first segment), every request passes through the routers, as without the gate.
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import compose from 'koa-compose';

/** A first segment made only of unreserved ASCII characters (no parameter, pattern or escape). */
const LITERAL_SEGMENT = /^[A-Za-z0-9._~-]*$/;

/** The lower-cased first path segments the routers' routes can match; undefined when a route might match any path. */
export function routerSegments(routers: Router[]): Set<string> | undefined {
  const segments = new Set<string>();
  for (const router of routers) {
    for (const layer of router.stack) {
      const { path, methods, opts } = layer;
      if (typeof path !== 'string' || !path.startsWith('/')) return undefined;
      if (methods.length === 0 || opts.end === false || opts.pathAsRegExp === true) return undefined;
      const segment = path.split('/')[1];
      if (!LITERAL_SEGMENT.test(segment)) return undefined;
      segments.add(segment.toLowerCase());
    }
  }
  return segments;
}

/** The request path's first segment (between the first and the second slash), lower-cased. */
function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end < 0 ? path.slice(1) : path.slice(1, end)).toLowerCase();
}

/**
 * The routers as one middleware: each router's `routes()` and `allowedMethods()` in order, passed only by requests
 * under one of the routers' first segments (or by every request, when the segments cannot be known).
 */
export function gatedRouters(routers: Router[]): Middleware {
  const routed = compose(routers.flatMap((router) => [router.routes(), router.allowedMethods()]) as Middleware[]);
  const segments = routerSegments(routers);
  if (!segments) return routed;
  return (ctx, next) => {
    const segment = firstSegment(ctx.path);
    // A segment outside unreserved ASCII (a raw Latin-1 byte) is left to the routers' own matching.
    return segments.has(segment) || !LITERAL_SEGMENT.test(segment) ? routed(ctx, next) : next();
  };
}
