/**
 * The routers' gate (server/http/router-gate.ts): provider requests skip Gatehouse's routers, and everything the
 * routers answered before still reaches them, matched as @koa/router matches (any letter case, a trailing slash).
 */
import Router from '@koa/router';
import test from 'ava';
import { routerSegments } from '../server/http/router-gate.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let gatehouse: TestServer;

test.before(async () => {
  gatehouse = await startTestServer();
});

test.after.always(() => gatehouse?.close());

const get = (path: string, init?: RequestInit) => fetch(`${gatehouse.issuer}${path}`, init);

test('routes are still matched in any letter case and with a trailing slash', async (t) => {
  for (const path of ['/healthz', '/HEALTHZ', '/HealthZ/', '/readyz/']) {
    const response = await get(path);
    t.is(response.status, 200, path);
    t.is(((await response.json()) as { status: string }).status, 'ok', path);
  }
});

test('provider requests are answered by the provider, unknown paths by its 404', async (t) => {
  const discovery = await get('/.well-known/openid-configuration');
  t.is(discovery.status, 200);
  t.is(((await discovery.json()) as { issuer: string }).issuer, gatehouse.issuer);
  t.is((await get('/no-such-page')).status, 404);
  t.is((await get('/healthzz')).status, 404, 'a longer first segment is not the route');
});

test('the segments are the routes’ first segments, in lower case', (t) => {
  const pages = new Router();
  pages.get('/', () => undefined);
  pages.get('/Admin/sessions', () => undefined);
  pages.post('/admin/sessions/revoke', () => undefined);
  const interactions = new Router({ prefix: '/interaction/:uid' });
  interactions.get('/', () => undefined);
  t.deepEqual([...(routerSegments([pages, interactions]) ?? [])].sort(), ['', 'admin', 'interaction']);
});

test('routes that could match any first segment turn the gate off', (t) => {
  const parameter = new Router();
  parameter.get('/:tenant/login', () => undefined);
  t.is(routerSegments([parameter]), undefined);
  const middleware = new Router();
  middleware.use(async (_ctx, next) => next());
  t.is(routerSegments([middleware]), undefined);
  const pattern = new Router();
  pattern.get(/^\/anything/, () => undefined);
  t.is(routerSegments([pattern]), undefined);
});
