/**
 * A request's route as a label: the matched route pattern, or the provider endpoint with ids replaced by
 * placeholders. Used by metrics (bounded label values) and request logs (interaction and resume ids stay out of logs).
 */
/** Provider endpoints by path, so latency is labelled by route and never by a raw path full of ids. */
const PROVIDER_ROUTES: [RegExp, string][] = [
  [/^\/auth\/[^/]+$/, '/auth/:uid'],
  [/^\/interaction\/[^/]+(\/[a-z]+)?$/, '/interaction/:uid'],
  [/^\/session\/end\/confirm$/, '/session/end/confirm'],
  [/^\/session\/end\/success$/, '/session/end/success'],
  [/^\/device\/[^/]+$/, '/device/:uid'],
];
const PROVIDER_EXACT = new Set([
  '/auth',
  '/token',
  '/me',
  '/jwks',
  '/token/introspection',
  '/token/revocation',
  '/session/end',
  '/.well-known/openid-configuration',
  '/reg',
  '/request',
  '/device',
  '/device/auth',
]);

export function routeLabel(path: string, matched?: string): string {
  if (matched) return matched;
  if (PROVIDER_EXACT.has(path)) return path;
  for (const [pattern, label] of PROVIDER_ROUTES) if (pattern.test(path)) return label;
  return 'other';
}

/** The path with ids replaced (for logs): a known route's pattern, otherwise the path itself. */
export function loggablePath(path: string, matched?: string): string {
  const label = routeLabel(path, matched);
  return label === 'other' ? path.slice(0, 200) : label;
}
