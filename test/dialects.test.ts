/**
 * The end-to-end essentials on every SQL database Gatehouse supports for more than one machine's worth of use:
 * SQLite (file), PostgreSQL, MariaDB, and a mysql:// URL (the mysql2 driver, against MariaDB). Each test starts its own Gatehouse on its own fresh database (created and
 * dropped), so every dialect is its own set of independent tests and all of them run concurrently.
 */
import test, { type ExecutionContext } from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { QueryTypes } from 'sequelize';
import { ManualClock } from '../stores/clock.js';
import { Browser } from './helpers/browser.js';
import type { TestDialect } from './helpers/databases.js';
import {
  discover,
  LogoutReceiver,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  signIn,
  startAuthorization,
} from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const DIALECTS: TestDialect[] = ['sqlite-file', 'postgres', 'mariadb', 'mysql'];
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const IDLE_TIMEOUT = 3600;
const OFFLINE = 'openid profile email offline_access';

interface Setup {
  gatehouse: TestServer;
  clock: ManualClock;
  receiver: LogoutReceiver;
  web: oidc.Configuration;
}

async function setup(t: ExecutionContext, dialect: TestDialect): Promise<Setup> {
  const clock = new ManualClock();
  const receiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    dialect,
    clock,
    config: {
      serverSideSessions: { enabled: true, idleTimeout: IDLE_TIMEOUT, absoluteLifetime: 86_400 },
      clients: [
        {
          client_id: 'gatehouse-admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: [POST_LOGOUT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: OFFLINE,
          backchannel_logout_uri: receiver.url,
          coordinateLifetimeWithUserSession: true,
        },
      ],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
  });
  return { gatehouse, clock, receiver, web: await discover(gatehouse.issuer, 'web', 'web-secret') };
}

/** Every row of the session table, read directly (anonymous sessions included), not through the store. */
async function sessionRows(gatehouse: TestServer): Promise<{ session_id: string; subject_id: string | null }[]> {
  return gatehouse.server.sequelize.query('SELECT session_id, subject_id FROM server_side_sessions', {
    type: QueryTypes.SELECT,
  });
}

async function adminToken(gatehouse: TestServer): Promise<string> {
  const admin = await discover(gatehouse.issuer, 'gatehouse-admin', 'admin-secret');
  return (await oidc.clientCredentialsGrant(admin, { scope: 'gatehouse:admin' })).access_token;
}

/** Checks a back-channel logout token against the issuer's published keys. */
async function verifyLogoutToken(gatehouse: TestServer, token: string) {
  const jwks = createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`));
  const { payload } = await jwtVerify(token, jwks, {
    issuer: gatehouse.issuer,
    audience: 'web',
    typ: 'logout+jwt',
    currentDate: new Date(),
  });
  return payload;
}

for (const dialect of DIALECTS) {
  test(`${dialect}: login through the real pages creates one server-side session; refresh and userinfo work`, async (t) => {
    const { gatehouse, web } = await setup(t, dialect);
    const browser = new Browser();
    const { tokens, claims, sawLogin, sawConsent } = await signIn(browser, web, { username: 'alice', scope: OFFLINE });
    t.true(sawLogin);
    t.true(sawConsent, 'the web client asks for consent');
    t.is(claims.sub, 'alice');
    t.truthy(claims.sid);

    const rows = await sessionRows(gatehouse);
    t.is(rows.length, 1, 'one record for the whole login, anonymous start included');
    t.is(rows[0].subject_id, 'alice');
    const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' });
    t.is(session.sessionId, rows[0].session_id);
    t.deepEqual(session.clients, [{ clientId: 'web', sid: claims.sid }]);

    const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
    t.truthy(refreshed.access_token);
    t.not(refreshed.refresh_token, tokens.refresh_token, 'refresh tokens rotate');
    const userinfo = await oidc.fetchUserInfo(web, refreshed.access_token, 'alice');
    t.like(userinfo, { sub: 'alice', name: 'Alice Anderson', email: 'alice@example.com' });
    t.is((await sessionRows(gatehouse)).length, 1, 'still one record');
  });

  test(`${dialect}: an admin revocation sends a verified back-channel logout and refresh fails afterwards`, async (t) => {
    const { gatehouse, web, receiver } = await setup(t, dialect);
    const browser = new Browser();
    const { tokens, claims } = await signIn(browser, web, { username: 'bob', scope: OFFLINE });
    const [session] = await gatehouse.server.sessionStore!.getSessions({ subjectId: 'bob' });

    const response = await fetch(`${gatehouse.issuer}/admin/api/v1/sessions/${session.sessionId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await adminToken(gatehouse)}` },
    });
    t.is(response.status, 200);
    t.deepEqual(await response.json(), { sessions: [session.sessionId], grantsRevoked: 1, notificationsQueued: 1 });

    const [logoutToken] = await receiver.waitFor(1);
    const payload = await verifyLogoutToken(gatehouse, logoutToken);
    t.is(payload.sub, 'bob');
    t.is(payload.sid, claims.sid);
    t.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });

    t.is(
      (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!)))?.error,
      'invalid_grant',
    );
    t.deepEqual(await sessionRows(gatehouse), []);
    t.true((await startAuthorization(browser, web)).body.includes('name="password"'), 'the browser must sign in again');
  });

  test(`${dialect}: RP-initiated logout removes the server-side session`, async (t) => {
    const { gatehouse, web, receiver } = await setup(t, dialect);
    const browser = new Browser();
    const { tokens, claims } = await signIn(browser, web, { username: 'carol', scope: OFFLINE });
    t.is((await sessionRows(gatehouse)).length, 1);

    const confirm = await browser.navigate(
      oidc.buildEndSessionUrl(web, {
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: POST_LOGOUT_URI,
        state: 'bye',
      }),
    );
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
    if (!xsrf) return t.fail(`no logout confirmation page:\n${confirm.body.slice(0, 600)}`);
    const done = await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
    t.is(done.url, `${POST_LOGOUT_URI}?state=bye`);

    t.deepEqual(await sessionRows(gatehouse), []);
    t.is((await verifyLogoutToken(gatehouse, (await receiver.waitFor(1))[0])).sid, claims.sid);
    t.true((await startAuthorization(browser, web)).body.includes('name="password"'));
  });

  test(`${dialect}: the sweeper ends an expired session with a back-channel logout to the coordinated client`, async (t) => {
    const { gatehouse, web, clock, receiver } = await setup(t, dialect);
    const browser = new Browser();
    const { tokens, claims } = await signIn(browser, web, { username: 'dave', scope: OFFLINE });

    clock.advance(IDLE_TIMEOUT * 1000 - 60_000);
    t.is((await gatehouse.server.sweeper.runOnce()).sessions, 0, 'not expired yet');
    clock.advance(2 * 60_000);
    t.is((await gatehouse.server.sweeper.runOnce()).sessions, 1);
    await gatehouse.server.backchannel.runOnce();

    const payload = await verifyLogoutToken(gatehouse, (await receiver.waitFor(1))[0]);
    t.is(payload.sub, 'dave');
    t.is(payload.sid, claims.sid);
    t.deepEqual(await sessionRows(gatehouse), []);
    const [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'web' });
    t.like(row, { status: 'delivered', reason: 'session_expiration', attempts: 1 });
    t.is(
      (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!)))?.error,
      'invalid_grant',
    );
  });
}
