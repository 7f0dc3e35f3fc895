/**
 * The admin API's users: PUT /admin/api/v1/users/{subject} creates or changes a user (claims, password, roles,
 * username, disabled), GET reads one, DELETE removes one; bearer-protected like the rest; bad bodies named by field.
 * Removing or disabling a user ends their access: sessions, tokens and grants, with back-channel logout.
 */
import test from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Browser } from './helpers/browser.js';
import type { JsonBody } from './helpers/json-body.js';
import {
  discover,
  LogoutReceiver,
  REDIRECT_URI,
  signIn,
  startAuthorization,
  webClient,
} from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Setup {
  gatehouse: TestServer;
  admin: string;
  web: oidc.Configuration;
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Setup> {
  const gatehouse = await startTestServer({
    config: {
      clients: [
        {
          client_id: 'gatehouse-admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
        { client_id: 'reporter', client_secret: 'reporter-secret', grant_types: ['client_credentials'] },
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          skipConsent: true,
          scope: 'openid profile email',
        },
      ],
    },
  });
  t.teardown(() => gatehouse.close());
  const admin = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  return { gatehouse, admin, web: await discover(gatehouse.issuer, 'web', 'web-secret') };
}

async function api(
  gatehouse: TestServer,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; type?: string } = {},
) {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers['content-type'] = options.type ?? 'application/json';
  const response = await fetch(`${gatehouse.issuer}${path}`, { method, headers, body });
  if (!response.headers.get('content-type')?.startsWith('application/json'))
    throw new Error(`not JSON: ${response.status}`);
  return { status: response.status, headers: response.headers, body: (await response.json()) as JsonBody };
}

async function userinfo(web: oidc.Configuration, username: string, password = `${username}-password`) {
  const { tokens, claims } = await signIn(new Browser(), web, { username, password });
  return {
    claims,
    info: await oidc.fetchUserInfo(web, tokens.access_token, claims.sub),
    accessToken: tokens.access_token,
  };
}

test('PUT creates a user who can sign in; GET shows it without the password hash', async (t) => {
  const { gatehouse, admin, web } = await setup(t);
  const created = await api(gatehouse, 'PUT', '/admin/api/v1/users/ida', {
    token: admin,
    body: {
      username: 'Ida',
      claims: { name: 'Ida Ingram', email: 'ida@example.com', email_verified: true },
      password: 'ida-secret-pw',
      roles: ['auditor'],
    },
  });
  t.is(created.status, 201);
  t.is(created.headers.get('location'), '/admin/api/v1/users/ida');
  t.like(created.body, {
    subject: 'ida',
    username: 'Ida',
    roles: ['auditor'],
    disabled: false,
    source: 'api',
    hasPassword: true,
  });
  t.false(/argon2id|scrypt/.test(JSON.stringify(created.body)));

  const { info } = await userinfo(web, 'ida', 'ida-secret-pw');
  t.like(info, { sub: 'ida', name: 'Ida Ingram', email: 'ida@example.com', email_verified: true });
  const read = await api(gatehouse, 'GET', '/admin/api/v1/users/ida', { token: admin });
  t.is(read.status, 200);
  t.deepEqual(read.body, created.body);
});

test('PUT changes claims at once; absent fields keep their values; a configured user keeps source config', async (t) => {
  const { gatehouse, admin, web } = await setup(t);
  const changed = await api(gatehouse, 'PUT', '/admin/api/v1/users/bob', {
    token: admin,
    body: { claims: { name: 'Robert Brown', email: 'robert@example.com' } },
  });
  t.is(changed.status, 200);
  t.like(changed.body, { subject: 'bob', username: 'bob', source: 'config', hasPassword: true, roles: [] });
  const { info } = await userinfo(web, 'bob');
  t.like(info, { name: 'Robert Brown', email: 'robert@example.com' });
  t.false('email_verified' in info, 'claims are replaced, not merged');

  const same = await api(gatehouse, 'PUT', '/admin/api/v1/users/bob', {
    token: admin,
    body: { claims: { name: 'Robert Brown', email: 'robert@example.com' }, password: 'new-bob-password' },
  });
  t.is(same.status, 200);
  await t.throwsAsync(signIn(new Browser(), web, { username: 'bob' }), { message: 'login failed' });
  t.is((await userinfo(web, 'bob', 'new-bob-password')).claims.sub, 'bob');
});

test('PUT disabled: true locks the user out and ends their tokens; false lets them back in', async (t) => {
  const { gatehouse, admin, web } = await setup(t);
  const { accessToken } = await userinfo(web, 'carol');
  const disabled = await api(gatehouse, 'PUT', '/admin/api/v1/users/carol', {
    token: admin,
    body: { claims: { name: 'Carol Clark' }, disabled: true },
  });
  t.is(disabled.body.disabled, true);
  await t.throwsAsync(signIn(new Browser(), web, { username: 'carol' }), { message: 'login failed' });
  await t.throwsAsync(oidc.fetchUserInfo(web, accessToken, 'carol'));
  t.is(
    (await api(gatehouse, 'GET', '/admin/api/v1/users/carol', { token: admin })).body.disabled,
    true,
    'still readable by the admin',
  );

  await api(gatehouse, 'PUT', '/admin/api/v1/users/carol', {
    token: admin,
    body: { claims: { name: 'Carol Clark' }, disabled: false },
  });
  t.is((await userinfo(web, 'carol')).claims.sub, 'carol');
});

test('DELETE removes a user: 200, then 404; the user cannot sign in', async (t) => {
  const { gatehouse, admin, web } = await setup(t);
  const removed = await api(gatehouse, 'DELETE', '/admin/api/v1/users/dave', { token: admin });
  t.is(removed.status, 200);
  t.deepEqual(removed.body, { subject: 'dave', removed: true, sessions: [], grantsRevoked: 0, notificationsQueued: 0 });
  await t.throwsAsync(signIn(new Browser(), web, { username: 'dave' }), { message: 'login failed' });
  const again = await api(gatehouse, 'DELETE', '/admin/api/v1/users/dave', { token: admin });
  t.is(again.status, 404);
  t.is(again.body.error, 'not_found');
  t.is((await api(gatehouse, 'GET', '/admin/api/v1/users/dave', { token: admin })).status, 404);
});

test('invalid bodies get 400 naming each field, never echoing a password', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const put = (body: unknown) => api(gatehouse, 'PUT', '/admin/api/v1/users/zoe', { token: admin, body });
  t.deepEqual((await put({})).body.details, { claims: 'is required (an object of claims, e.g. {"name": "Alice"})' });
  const many = await put({
    claims: { sub: 'other', 'bad name': 1 },
    roles: ['ok', '', 7],
    password: 12,
    disabled: 'yes',
    username: '',
    nickname: 'z',
  });
  t.is(many.status, 400);
  t.is(many.body.error, 'invalid_request');
  t.deepEqual(Object.keys(many.body.details).sort(), [
    'claims.bad name',
    'claims.sub',
    'disabled',
    'nickname',
    'password',
    'roles[1]',
    'roles[2]',
    'username',
  ]);
  t.is(many.body.details.nickname, 'unknown field');
  t.deepEqual((await put({ claims: [] })).body.details, { claims: 'must be an object' });
  t.deepEqual((await put({ claims: {}, password: 'x'.repeat(1025) })).body.details, {
    password: 'must be a string of 1 to 1024 characters',
  });

  const broken = await api(gatehouse, 'PUT', '/admin/api/v1/users/zoe', {
    token: admin,
    raw: '{"claims": {}, "password": "hunter2-secret"',
  });
  t.is(broken.status, 400);
  t.deepEqual(broken.body.details, { body: 'is not valid JSON' });
  t.false(JSON.stringify(broken.body).includes('hunter2-secret'));
  const form = await api(gatehouse, 'PUT', '/admin/api/v1/users/zoe', {
    token: admin,
    raw: 'claims=x',
    type: 'application/x-www-form-urlencoded',
  });
  t.is(form.status, 415);
  const longSubject = await api(gatehouse, 'PUT', `/admin/api/v1/users/${'s'.repeat(256)}`, {
    token: admin,
    body: { claims: {} },
  });
  t.deepEqual(longSubject.body.details, { subject: 'must be 1 to 255 characters' });
  t.is((await api(gatehouse, 'GET', '/admin/api/v1/users/zoe', { token: admin })).status, 404, 'nothing was created');
});

test('a username another user has is a 409 conflict', async (t) => {
  const { gatehouse, admin } = await setup(t);
  const taken = await api(gatehouse, 'PUT', '/admin/api/v1/users/newbie', {
    token: admin,
    body: { username: 'ALICE', claims: {} },
  });
  t.is(taken.status, 409);
  t.is(taken.body.error, 'conflict');
  t.deepEqual(taken.body.details, { username: 'is already used by another user' });
});

test('the user endpoints need an admin token: 401 without one, 403 without the scope', async (t) => {
  const { gatehouse } = await setup(t);
  const reporter = (await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'reporter', 'reporter-secret')))
    .access_token;
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const body = method === 'PUT' ? { claims: {} } : undefined;
    const anonymous = await api(gatehouse, method, '/admin/api/v1/users/alice', { body });
    t.is(anonymous.status, 401, method);
    t.regex(anonymous.headers.get('www-authenticate') ?? '', /^Bearer /);
    const scoped = await api(gatehouse, method, '/admin/api/v1/users/alice', { token: reporter, body });
    t.is(scoped.status, 403, method);
    t.is(scoped.body.error, 'insufficient_scope');
  }
  t.truthy(await gatehouse.server.accounts.get('alice'), 'alice is untouched');
});

// ---- removing or disabling a user ends their access ----

interface AccessSetup {
  gatehouse: TestServer;
  admin: string;
  web: oidc.Configuration;
  receiver: LogoutReceiver;
}

/** A relying party with refresh tokens and back-channel logout; server-side sessions on or off. */
async function accessSetup(t: { teardown(fn: () => Promise<void>): void }, sessions: boolean): Promise<AccessSetup> {
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: sessions },
      clients: [
        {
          client_id: 'gatehouse-admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
        webClient(receiver.url, { skipConsent: true }),
      ],
    } as never,
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
  });
  const admin = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  return { gatehouse, admin, web: await discover(gatehouse.issuer, 'web', 'web-secret'), receiver };
}

/** The userinfo endpoint's answer to a bearer token: status and the error of its challenge. */
async function userinfoStatus(
  web: oidc.Configuration,
  accessToken: string,
): Promise<{ status: number; error: string | undefined }> {
  const response = await fetch(web.serverMetadata().userinfo_endpoint!, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  await response.body?.cancel();
  return {
    status: response.status,
    error: /error="([^"]+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1],
  };
}

/** Checks the logout token the relying party received for this subject and sid. */
async function assertLogoutToken(
  t: { is(a: unknown, b: unknown): void; deepEqual(a: unknown, b: unknown): void },
  gatehouse: TestServer,
  token: string,
  sub: string,
  sid: string,
) {
  const jwks = createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`));
  const { payload } = await jwtVerify(token, jwks, { issuer: gatehouse.issuer, audience: 'web', typ: 'logout+jwt' });
  t.is(payload.sub, sub);
  t.is(payload.sid, sid);
  t.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
}

test("DELETE ends the user's sessions: record gone, back-channel logout sent, tokens dead, the cookie signs no one in", async (t) => {
  const { gatehouse, admin, web, receiver } = await accessSetup(t, true);
  const browser = new Browser();
  const { tokens, claims } = await signIn(browser, web, { username: 'dave', scope: 'openid profile offline_access' });
  await signIn(new Browser(), web, { username: 'bob' });
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'dave' });
  t.truthy(session);
  t.is((await userinfoStatus(web, tokens.access_token)).status, 200);

  const removed = await api(gatehouse, 'DELETE', '/admin/api/v1/users/dave', { token: admin });
  t.is(removed.status, 200);
  t.deepEqual(removed.body, {
    subject: 'dave',
    removed: true,
    sessions: [session.sessionId],
    grantsRevoked: 1,
    notificationsQueued: 1,
  });

  // The session record is gone, and the relying party was told.
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'dave' }), []);
  t.is(await gatehouse.server.sessions.getSession(session.sessionId), null);
  const [logoutToken] = await receiver.waitFor(1);
  await assertLogoutToken(t, gatehouse, logoutToken, 'dave', claims.sid as string);
  const outbox = await api(gatehouse, 'GET', `/admin/api/v1/backchannel?sessionId=${session.sessionId}`, {
    token: admin,
  });
  t.like(outbox.body.notifications[0], {
    clientId: 'web',
    subject: 'dave',
    sid: claims.sid,
    reason: 'terminated',
    status: 'delivered',
  });

  // Every token is dead.
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  t.deepEqual(await userinfoStatus(web, tokens.access_token), { status: 401, error: 'invalid_token' });
  t.false((await oidc.tokenIntrospection(web, tokens.access_token)).active);

  // The old browser must sign in again, and dave cannot.
  t.true((await startAuthorization(browser, web)).body.includes('name="password"'));
  await t.throwsAsync(signIn(new Browser(), web, { username: 'dave' }), { message: 'login failed' });

  t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 1, "another user's session is untouched");
  t.is(receiver.tokens.length, 1, 'only dave was notified');
});

test('DELETE repeated for a user already gone still ends what is left of their access (after a failed first try), then 404', async (t) => {
  const { gatehouse, admin, web, receiver } = await accessSetup(t, true);
  const { tokens } = await signIn(new Browser(), web, { username: 'dave', scope: 'openid profile offline_access' });
  // The user is gone but the ending of their access did not happen (as when the first DELETE failed half-way).
  t.true(await gatehouse.server.accounts.remove('dave'));
  t.is((await gatehouse.server.sessions.sessionsOf('dave')).length, 1);

  const again = await api(gatehouse, 'DELETE', '/admin/api/v1/users/dave', { token: admin });
  t.is(again.status, 404);
  t.deepEqual(await gatehouse.server.sessions.sessionsOf('dave'), [], 'the session is ended anyway');
  await receiver.waitFor(1);
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
});

test("PUT disabled: true ends the user's sessions the same way; enabled again, they sign in anew", async (t) => {
  const { gatehouse, admin, web, receiver } = await accessSetup(t, true);
  const browser = new Browser();
  const { tokens, claims } = await signIn(browser, web, { username: 'carol', scope: 'openid profile offline_access' });
  const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'carol' });

  const disabled = await api(gatehouse, 'PUT', '/admin/api/v1/users/carol', {
    token: admin,
    body: { claims: { name: 'Carol Clark' }, disabled: true },
  });
  t.is(disabled.status, 200);
  t.is(disabled.body.disabled, true);
  t.is(await gatehouse.server.sessions.getSession(session.sessionId), null, 'the session record is gone');
  const [logoutToken] = await receiver.waitFor(1);
  await assertLogoutToken(t, gatehouse, logoutToken, 'carol', claims.sid as string);
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  t.deepEqual(await userinfoStatus(web, tokens.access_token), { status: 401, error: 'invalid_token' });
  t.true((await startAuthorization(browser, web)).body.includes('name="password"'));
  await t.throwsAsync(signIn(new Browser(), web, { username: 'carol' }), { message: 'login failed' });

  // A change that keeps the user disabled finds nothing more to end.
  await api(gatehouse, 'PUT', '/admin/api/v1/users/carol', {
    token: admin,
    body: { claims: { name: 'Carol C.' }, disabled: true },
  });
  t.is(receiver.tokens.length, 1);

  await api(gatehouse, 'PUT', '/admin/api/v1/users/carol', {
    token: admin,
    body: { claims: { name: 'Carol Clark' }, disabled: false },
  });
  const again = await signIn(browser, web, { username: 'carol' });
  t.true(again.sawLogin);
  t.is(again.claims.sub, 'carol');
});

test('without server-side sessions, DELETE still revokes the grants and tokens, and the old session cookie signs no one in', async (t) => {
  const { gatehouse, admin, web, receiver } = await accessSetup(t, false);
  const browser = new Browser();
  const { tokens } = await signIn(browser, web, { username: 'dave', scope: 'openid profile offline_access' });

  const removed = await api(gatehouse, 'DELETE', '/admin/api/v1/users/dave', { token: admin });
  t.is(removed.status, 200);
  t.deepEqual(removed.body, { subject: 'dave', removed: true, sessions: [], grantsRevoked: 1, notificationsQueued: 0 });
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  t.deepEqual(await userinfoStatus(web, tokens.access_token), { status: 401, error: 'invalid_token' });
  t.false((await oidc.tokenIntrospection(web, tokens.access_token)).active);

  const page = await startAuthorization(browser, web);
  t.is(page.status, 200, 'not a server error');
  t.true(page.body.includes('name="password"'), 'the login page, not a sign-in as the removed user');
  const silent = await startAuthorization(browser, web, { prompt: 'none' });
  t.is(new URL(silent.url).searchParams.get('error'), 'login_required');
  t.is(receiver.tokens.length, 0, 'no back-channel logout without server-side sessions');
});
