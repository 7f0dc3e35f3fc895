import { randomBytes } from 'node:crypto';
import test from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { hashSessionKey, type ServerSideSession } from '../stores/session-store.js';
import { Browser } from './helpers/browser.js';
import type { JsonBody } from './helpers/json-body.js';
import { discover, LogoutReceiver, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Setup {
  gatehouse: TestServer;
  /** An access token with the gatehouse:admin scope. */
  admin: string;
  webReceiver: LogoutReceiver;
  otherReceiver: LogoutReceiver;
}

async function setup(
  t: { teardown(fn: () => Promise<void>): void },
  options: { sessions?: boolean } = {},
): Promise<Setup> {
  const webReceiver = await new LogoutReceiver().start();
  const otherReceiver = await new LogoutReceiver().start();
  const relyingParty = {
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access',
  };
  const gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: options.sessions ?? true, displayNameClaim: 'name' },
      clients: [
        {
          client_id: 'gatehouse-admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
        { client_id: 'reporter', client_secret: 'reporter-secret', grant_types: ['client_credentials'] },
        { client_id: 'web', client_secret: 'web-secret', backchannel_logout_uri: webReceiver.url, ...relyingParty },
        {
          client_id: 'other',
          client_secret: 'other-secret',
          backchannel_logout_uri: otherReceiver.url,
          skipConsent: true,
          ...relyingParty,
        },
      ],
    } as never,
  });
  t.teardown(async () => {
    await gatehouse.close();
    await webReceiver.close();
    await otherReceiver.close();
  });
  return {
    gatehouse,
    admin: await clientToken(gatehouse, 'gatehouse-admin', 'admin-secret', 'gatehouse:admin'),
    webReceiver,
    otherReceiver,
  };
}

async function clientToken(gatehouse: TestServer, clientId: string, secret: string, scope?: string): Promise<string> {
  const config = await discover(gatehouse.issuer, clientId, secret);
  return (await oidc.clientCredentialsGrant(config, scope ? { scope } : {})).access_token;
}

interface Answer {
  status: number;
  headers: Headers;
  body: JsonBody;
}

async function api(
  gatehouse: TestServer,
  path: string,
  init: { method?: string; token?: string; authorization?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.authorization) headers.authorization = init.authorization;
  const response = await fetch(`${gatehouse.issuer}${path}`, { method: init.method ?? 'GET', headers });
  assertJson(response);
  return { status: response.status, headers: response.headers, body: await response.json() };
}

function assertJson(response: Response) {
  if (!response.headers.get('content-type')?.startsWith('application/json'))
    throw new Error(`not JSON: ${response.status} ${response.headers.get('content-type')}`);
}

/** Sessions straight into the store, `created` one second apart in pairs (so the paging tie-break on id is exercised). */
async function seed(gatehouse: TestServer, count: number): Promise<ServerSideSession[]> {
  const base = Date.now() - 3600_000;
  const sessions: ServerSideSession[] = [];
  for (let i = 0; i < count; i++) {
    const created = new Date(base - Math.floor(i / 2) * 1000);
    const session: ServerSideSession = {
      key: hashSessionKey(randomBytes(16).toString('hex')),
      sessionId: `seed-${String(i).padStart(2, '0')}`,
      subjectId: ['alice', 'bob', 'carol'][i % 3],
      displayName: `${['Alice', 'Bob', 'Carol'][i % 3]} Seeded ${i}`,
      clients: i % 4 === 0 ? [{ clientId: 'web', sid: `sid-${i}` }] : [{ clientId: 'other', sid: `sid-${i}` }],
      created,
      renewed: created,
      expires: new Date(created.getTime() + 36_000_000),
      authTime: created,
      loginIp: '192.0.2.1',
      loginUserAgent: 'Seeder/1',
      lastIp: '192.0.2.2',
      lastUserAgent: 'Seeder/2',
      data: { secretish: 'provider payload' },
    };
    await gatehouse.server.sessionStore!.create(session);
    sessions.push(session);
  }
  return sessions;
}

test('requests without a valid bearer token get 401 with a Bearer challenge', async (t) => {
  const { gatehouse } = await setup(t);
  const missing = await api(gatehouse, '/admin/api/v1/sessions');
  t.is(missing.status, 401);
  t.regex(missing.headers.get('www-authenticate') ?? '', /^Bearer\b/);
  t.notRegex(
    missing.headers.get('www-authenticate') ?? '',
    /error=/,
    'no error code when no token was given (RFC 6750)',
  );

  const garbage = await api(gatehouse, '/admin/api/v1/sessions', { token: 'not-a-token-at-all' });
  t.is(garbage.status, 401);
  t.is(garbage.body.error, 'invalid_token');
  t.regex(garbage.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);

  const basic = await api(gatehouse, '/admin/api/v1/sessions', {
    authorization: `Basic ${Buffer.from('gatehouse-admin:admin-secret').toString('base64')}`,
  });
  t.is(basic.status, 401);

  // A user's access token (authorization code flow) is not a client_credentials token.
  const { tokens } = await signIn(new Browser(), await discover(gatehouse.issuer, 'other', 'other-secret'), {
    username: 'alice',
  });
  t.is((await api(gatehouse, '/admin/api/v1/sessions', { token: tokens.access_token })).status, 401);
  t.is((await api(gatehouse, '/admin/api/v1/backchannel')).status, 401);
  t.is((await api(gatehouse, '/admin/api/v1/sessions/whatever', { method: 'DELETE' })).status, 401);
});

test('a client_credentials token without the gatehouse:admin scope gets 403 insufficient_scope', async (t) => {
  const { gatehouse } = await setup(t);
  const token = await clientToken(gatehouse, 'reporter', 'reporter-secret');
  const answer = await api(gatehouse, '/admin/api/v1/sessions', { token });
  t.is(answer.status, 403);
  t.is(answer.body.error, 'insufficient_scope');
  t.regex(answer.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*scope="gatehouse:admin"/);
  t.is((await api(gatehouse, '/admin/api/v1/subjects/alice/sessions', { method: 'DELETE', token })).status, 403);
});

test('a client that does not name gatehouse:admin in its own scope list cannot get the scope, nor use a token holding it', async (t) => {
  const { gatehouse } = await setup(t);
  // "reporter" registered no scope list: oidc-provider would let it ask for any scope, the admin one included.
  const refused = await t.throwsAsync<oidc.ResponseBodyError>(
    clientToken(gatehouse, 'reporter', 'reporter-secret', 'gatehouse:admin'),
  );
  t.is(refused?.error, 'invalid_scope');
  // A web client without a scope list (authorization code and client credentials) is refused the same way.
  const web = await t.throwsAsync<oidc.ResponseBodyError>(
    clientToken(gatehouse, 'web', 'web-secret', 'openid gatehouse:admin'),
  );
  t.true(web instanceof Error);
  // The ordinary scopes still work for a client without a scope list.
  t.truthy(await clientToken(gatehouse, 'reporter', 'reporter-secret', 'profile'));

  // A token that holds the scope from before the client's registration stopped naming it opens nothing.
  const token = await clientToken(gatehouse, 'gatehouse-admin', 'admin-secret', 'gatehouse:admin');
  t.is((await api(gatehouse, '/admin/api/v1/sessions', { token })).status, 200);
  await gatehouse.server.clients.save({
    clientId: 'gatehouse-admin',
    metadata: { client_secret: 'admin-secret', grant_types: ['client_credentials'], scope: 'profile' },
    settings: {},
    source: 'api',
    disabled: false,
  });
  await new Promise((resolve) => setTimeout(resolve, gatehouse.server.config.directory.cacheMs + 50));
  const after = await api(gatehouse, '/admin/api/v1/sessions', { token });
  t.is(after.status, 403);
  t.is(after.body.error, 'insufficient_scope');
});

test('bad parameters get 400 invalid_request naming each one', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const long = 'x'.repeat(256);
  const list = await api(
    gatehouse,
    `/admin/api/v1/sessions?pageSize=0&count=yes&bogus=1&subject=${long}&displayName=a&displayName=b&page=`,
    { token: admin },
  );
  t.is(list.status, 400);
  t.is(list.body.error, 'invalid_request');
  t.deepEqual(Object.keys(list.body.details).sort(), ['bogus', 'count', 'displayName', 'page', 'pageSize', 'subject']);
  t.is(list.body.details.pageSize, 'must be an integer from 1 to 200');
  t.is(list.body.details.count, 'must be true or false');
  t.is(list.body.details.bogus, 'unknown parameter');
  t.regex(list.body.message, /pageSize must be an integer from 1 to 200/);

  for (const pageSize of ['201', '1.5', '-1', 'ten']) {
    const answer = await api(gatehouse, `/admin/api/v1/sessions?pageSize=${pageSize}`, { token: admin });
    t.deepEqual(answer.body.details, { pageSize: 'must be an integer from 1 to 200' }, pageSize);
  }

  const remove = await api(
    gatehouse,
    `/admin/api/v1/sessions/${'s'.repeat(129)}?revokeTokens=1&clientIds=web,,other&removeSession=TRUE`,
    { method: 'DELETE', token: admin },
  );
  t.is(remove.status, 400);
  t.deepEqual(Object.keys(remove.body.details).sort(), ['clientIds', 'removeSession', 'revokeTokens', 'sessionId']);

  const outbox = await api(gatehouse, '/admin/api/v1/backchannel?status=lost&limit=5000', { token: admin });
  t.deepEqual(Object.keys(outbox.body.details).sort(), ['limit', 'status']);
  t.is(
    (await api(gatehouse, '/admin/api/v1/sessions/seed?pageSize=3', { token: admin })).body.details.pageSize,
    'unknown parameter',
  );
});

test('paging walks 60 sessions forward to the end and back with no gaps or duplicates', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const seeded = await seed(gatehouse, 60);
  const expected = [...seeded]
    .sort((a, b) => b.created.getTime() - a.created.getTime() || (a.sessionId < b.sessionId ? 1 : -1))
    .map((s) => s.sessionId);

  const forward: string[][] = [];
  let page: string | undefined;
  for (let i = 0; i < 20; i++) {
    const answer = await api(gatehouse, `/admin/api/v1/sessions?pageSize=7${page ? `&page=${page}` : ''}`, {
      token: admin,
    });
    t.is(answer.status, 200);
    t.is(answer.body.totalCount, 60);
    t.is(answer.body.paging.hasPrevious, i > 0);
    forward.push(answer.body.sessions.map((s: { sessionId: string }) => s.sessionId));
    if (!answer.body.paging.hasNext) {
      t.is(answer.body.paging.next, undefined);
      page = answer.body.paging.previous;
      break;
    }
    page = answer.body.paging.next;
  }
  t.is(forward.length, 9);
  t.deepEqual(forward.flat(), expected, 'every session once, in order');

  const backward: string[][] = [forward[forward.length - 1]];
  while (page) {
    const answer = await api(gatehouse, `/admin/api/v1/sessions?pageSize=7&page=${page}`, { token: admin });
    backward.unshift(answer.body.sessions.map((s: { sessionId: string }) => s.sessionId));
    page = answer.body.paging.previous;
    if (!answer.body.paging.hasPrevious) t.is(page, undefined);
  }
  t.deepEqual(backward, forward, 'the same pages on the way back');
});

test('filters: subject, session id, display name prefix, client; count=false leaves out totalCount', async (t) => {
  const { gatehouse, admin } = await setup(t);
  await seed(gatehouse, 24);
  const ids = async (query: string) => {
    const answer = await api(gatehouse, `/admin/api/v1/sessions?pageSize=200&${query}`, { token: admin });
    t.is(answer.status, 200, query);
    return {
      ids: answer.body.sessions.map((s: { sessionId: string }) => s.sessionId).sort(),
      totalCount: answer.body.totalCount,
    };
  };
  const bob = await ids('subject=bob');
  t.is(bob.ids.length, 8);
  t.is(bob.totalCount, 8);
  t.deepEqual((await ids('sessionId=seed-05')).ids, ['seed-05']);
  t.deepEqual(
    (await ids('displayName=carol%20seeded%201')).ids,
    ['seed-11', 'seed-14', 'seed-17'],
    'case-insensitive prefix',
  );
  t.deepEqual((await ids('clientId=web')).ids, ['seed-00', 'seed-04', 'seed-08', 'seed-12', 'seed-16', 'seed-20']);
  t.deepEqual((await ids('clientId=web&subject=alice')).ids, ['seed-00', 'seed-12']);
  t.deepEqual((await ids('subject=nobody')).ids, []);
  const uncounted = await api(gatehouse, '/admin/api/v1/sessions?subject=bob&count=false', { token: admin });
  t.false('totalCount' in uncounted.body);
  t.is(uncounted.body.sessions.length, 8);
});

test('GET one session shows its fields but never the store key or the provider payload; a missing one is 404', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const browser = new Browser('AdminApiTest/1.0');
  const { claims } = await signIn(browser, await discover(gatehouse.issuer, 'other', 'other-secret'), {
    username: 'dave',
  });
  const [stored] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'dave' });

  const answer = await api(gatehouse, `/admin/api/v1/sessions/${stored.sessionId}`, { token: admin });
  t.is(answer.status, 200);
  t.deepEqual(Object.keys(answer.body).sort(), [
    'authTime',
    'clients',
    'created',
    'displayName',
    'expires',
    'last',
    'lastActivity',
    'login',
    'sessionId',
    'subject',
  ]);
  t.is(answer.body.subject, 'dave');
  t.is(answer.body.displayName, 'Dave Davis');
  t.deepEqual(answer.body.clients, [{ clientId: 'other', sid: claims.sid }]);
  t.is(answer.body.login.userAgent, 'AdminApiTest/1.0');
  t.regex(answer.body.last.ip, /127\.0\.0\.1|::1/);
  t.is(answer.body.created, stored.created.toISOString());
  t.is(answer.body.lastActivity, stored.renewed.toISOString());
  t.is(answer.body.expires, stored.expires!.toISOString());
  t.false(JSON.stringify(answer.body).includes(stored.key));

  const missing = await api(gatehouse, '/admin/api/v1/sessions/no-such-session', { token: admin });
  t.is(missing.status, 404);
  t.is(missing.body.error, 'not_found');
  t.is(
    (await api(gatehouse, '/admin/api/v1/sessions/no-such-session', { method: 'DELETE', token: admin })).status,
    404,
  );
});

test('an admin revocation notifies the relying party, kills its tokens and sends the browser back to the login page', async (t) => {
  const { gatehouse, admin, webReceiver } = await setup(t);
  const browser = new Browser();
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { tokens, claims } = await signIn(browser, web, { username: 'alice', scope: 'openid profile offline_access' });
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' });

  const answer = await api(gatehouse, `/admin/api/v1/sessions/${session.sessionId}`, {
    method: 'DELETE',
    token: admin,
  });
  t.is(answer.status, 200);
  t.deepEqual(answer.body, { sessions: [session.sessionId], grantsRevoked: 1, notificationsQueued: 1 });

  const [logoutToken] = await webReceiver.waitFor(1);
  const jwks = createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`));
  const { payload } = await jwtVerify(logoutToken, jwks, {
    issuer: gatehouse.issuer,
    audience: 'web',
    typ: 'logout+jwt',
  });
  t.is(payload.sub, 'alice');
  t.is(payload.sid, claims.sid);
  t.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });

  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  t.false((await oidc.tokenIntrospection(web, tokens.access_token)).active);
  t.true((await startAuthorization(browser, web)).body.includes('name="password"'), 'the browser must sign in again');
  t.is((await api(gatehouse, `/admin/api/v1/sessions/${session.sessionId}`, { token: admin })).status, 404);

  const outbox = await api(gatehouse, `/admin/api/v1/backchannel?sessionId=${session.sessionId}`, { token: admin });
  t.is(outbox.status, 200);
  t.like(outbox.body.notifications[0], {
    clientId: 'web',
    subject: 'alice',
    sid: claims.sid,
    reason: 'terminated',
    status: 'delivered',
    attempts: 1,
  });
  t.is(outbox.body.counts.delivered, 1);
  t.is(
    (await api(gatehouse, '/admin/api/v1/backchannel?status=pending', { token: admin })).body.notifications.length,
    0,
  );
});

test('clientIds limits revocation and notifications to those clients', async (t) => {
  const { gatehouse, admin, webReceiver, otherReceiver } = await setup(t);
  const browser = new Browser();
  const scope = 'openid profile offline_access';
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const other = await discover(gatehouse.issuer, 'other', 'other-secret');
  const webTokens = (await signIn(browser, web, { username: 'bob', scope })).tokens;
  const otherTokens = (await signIn(browser, other, { username: 'bob', scope })).tokens;
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'bob' });

  const answer = await api(gatehouse, `/admin/api/v1/sessions/${session.sessionId}?clientIds=web`, {
    method: 'DELETE',
    token: admin,
  });
  t.like(answer.body, { grantsRevoked: 1, notificationsQueued: 1 });
  await webReceiver.waitFor(1);
  await gatehouse.server.backchannel.runOnce();
  t.is(otherReceiver.tokens.length, 0, 'the other client is not told');
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, webTokens.refresh_token!)))?.error,
    'invalid_grant',
  );
  t.truthy(
    (await oidc.refreshTokenGrant(other, otherTokens.refresh_token!)).access_token,
    "the other client's refresh token still works",
  );
});

test('revokeConsents=true brings the consent page back; revokeConsents=false does not', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  for (const [username, revokeConsents] of [
    ['carol', true],
    ['dave', false],
  ] as const) {
    const browser = new Browser();
    t.true(
      (await signIn(browser, web, { username, scope: 'openid profile' })).sawConsent,
      'first use asks for consent',
    );
    const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: username });
    // The session ends either way; only revokeConsents decides whether the next sign-in asks for consent again.
    const path = `/admin/api/v1/sessions/${session.sessionId}?revokeConsents=${revokeConsents}&sendBackchannelLogout=false`;
    t.like((await api(gatehouse, path, { method: 'DELETE', token: admin })).body, {
      sessions: [session.sessionId],
      notificationsQueued: 0,
    });
    const again = await signIn(browser, web, { username, scope: 'openid profile' });
    t.true(again.sawLogin, 'the session was removed');
    t.is(again.sawConsent, revokeConsents, `revokeConsents=${revokeConsents}`);
  }
});

test('sign out everywhere ends every session of the subject', async (t) => {
  const { gatehouse, admin, webReceiver } = await setup(t);
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const laptop = new Browser();
  const phone = new Browser();
  await signIn(laptop, web, { username: 'alice' });
  await signIn(phone, web, { username: 'alice' });
  await signIn(new Browser(), web, { username: 'bob' });

  const answer = await api(gatehouse, '/admin/api/v1/subjects/alice/sessions', { method: 'DELETE', token: admin });
  t.is(answer.status, 200);
  t.is(answer.body.sessions.length, 2);
  t.is(answer.body.notificationsQueued, 2);
  await webReceiver.waitFor(2);
  t.true((await startAuthorization(laptop, web)).body.includes('name="password"'));
  t.true((await startAuthorization(phone, web)).body.includes('name="password"'));
  t.is(
    (await api(gatehouse, '/admin/api/v1/sessions?subject=bob', { token: admin })).body.totalCount,
    1,
    "bob's session is untouched",
  );
  t.deepEqual(
    (await api(gatehouse, '/admin/api/v1/subjects/alice/sessions', { method: 'DELETE', token: admin })).body,
    {
      sessions: [],
      grantsRevoked: 0,
      notificationsQueued: 0,
    },
  );
});

test('session endpoints answer 409 when server-side sessions are off; the outbox still answers', async (t) => {
  const { gatehouse, admin } = await setup(t, { sessions: false });
  for (const [method, path] of [
    ['GET', '/admin/api/v1/sessions'],
    ['GET', '/admin/api/v1/sessions/abc'],
    ['DELETE', '/admin/api/v1/sessions/abc'],
    ['DELETE', '/admin/api/v1/subjects/alice/sessions'],
  ]) {
    const answer = await api(gatehouse, path, { method, token: admin });
    t.is(answer.status, 409, `${method} ${path}`);
    t.is(answer.body.error, 'server_side_sessions_disabled');
    t.regex(answer.body.message, /server-side sessions are disabled/);
  }
  t.is((await api(gatehouse, '/admin/api/v1/backchannel', { token: admin })).status, 200);
});

test('unknown admin paths are 404 and wrong methods 405, in JSON', async (t) => {
  const { gatehouse, admin } = await setup(t);
  t.is((await api(gatehouse, '/admin/api/v1/nothing-here', { token: admin })).status, 404);
  t.is((await api(gatehouse, '/admin/api/v1/nothing-here')).status, 401, 'the token is checked first');
  const wrong = await api(gatehouse, '/admin/api/v1/sessions', { method: 'DELETE', token: admin });
  t.is(wrong.status, 405);
  t.regex(wrong.headers.get('allow') ?? '', /GET/);
});

test('the OpenAPI document parses, needs no token and lists every endpoint with its parameters', async (t) => {
  const { gatehouse } = await setup(t);
  const response = await fetch(`${gatehouse.issuer}/admin/api/openapi.json`);
  t.is(response.status, 200);
  const doc = JSON.parse(await response.text());
  t.regex(doc.openapi, /^3\.1\./);
  t.deepEqual(Object.keys(doc.paths).sort(), [
    '/admin/api/v1/backchannel',
    '/admin/api/v1/clients',
    '/admin/api/v1/clients/{clientId}',
    '/admin/api/v1/sessions',
    '/admin/api/v1/sessions/{sessionId}',
    '/admin/api/v1/subjects/{subject}/sessions',
    '/admin/api/v1/users/{subject}',
    '/admin/api/v1/users/{subject}/lockout',
  ]);
  const names = (operation: { parameters?: { name: string }[] }) =>
    (operation.parameters ?? []).map((p) => p.name).sort();
  t.deepEqual(names(doc.paths['/admin/api/v1/sessions'].get), [
    'clientId',
    'count',
    'displayName',
    'page',
    'pageSize',
    'sessionId',
    'subject',
  ]);
  t.deepEqual(names(doc.paths['/admin/api/v1/sessions/{sessionId}'].delete), [
    'clientIds',
    'removeSession',
    'revokeConsents',
    'revokeTokens',
    'sendBackchannelLogout',
  ]);
  t.deepEqual(names(doc.paths['/admin/api/v1/backchannel'].get), ['clientId', 'limit', 'sessionId', 'status']);
  t.is(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
  t.deepEqual(doc.security[0], { bearerAuth: ['gatehouse:admin'] });
  t.truthy(doc.components.securitySchemes.clientCredentials.flows.clientCredentials.scopes['gatehouse:admin']);

  // Every $ref resolves, and every documented operation exists (401 without a token, not 404/405).
  for (const [, target] of JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)) {
    t.truthy(
      target.split('/').reduce((node: JsonBody, key) => node?.[key], doc),
      target,
    );
  }
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of Object.keys(item).filter((key) => key !== 'parameters')) {
      const concrete = path.replace('{sessionId}', 'abc').replace('{subject}', 'alice');
      t.is((await api(gatehouse, concrete, { method: method.toUpperCase() })).status, 401, `${method} ${path}`);
    }
  }
});
