import test from 'ava';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { ManualClock } from '../stores/clock.js';
import { Browser } from './helpers/browser.js';
import {
  discover,
  LogoutReceiver,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  signIn,
  startAuthorization,
} from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Setup {
  gatehouse: TestServer;
  clock: ManualClock;
  coordReceiver: LogoutReceiver;
  freeReceiver: LogoutReceiver;
}

async function setup(
  t: { teardown(fn: () => Promise<void>): void },
  sessions: Record<string, unknown> = {},
  backchannel: Record<string, unknown> = {},
): Promise<Setup> {
  const clock = new ManualClock();
  const coordReceiver = await new LogoutReceiver().start();
  const freeReceiver = await new LogoutReceiver().start();
  const gatehouse = await startTestServer({
    clock,
    config: {
      serverSideSessions: { enabled: true, idleTimeout: 3600, absoluteLifetime: 86_400, ...sessions },
      backchannelLogout: backchannel as never,
      clients: [
        {
          client_id: 'coord',
          client_secret: 'coord-secret',
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: [POST_LOGOUT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile offline_access',
          backchannel_logout_uri: coordReceiver.url,
          coordinateLifetimeWithUserSession: true,
          skipConsent: true,
        },
        {
          client_id: 'free',
          client_secret: 'free-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile offline_access',
          backchannel_logout_uri: freeReceiver.url,
          skipConsent: true,
        },
      ],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await coordReceiver.close();
    await freeReceiver.close();
  });
  return { gatehouse, clock, coordReceiver, freeReceiver };
}

const offline = { scope: 'openid profile offline_access' };

test('expired sessions are swept and their coordinated clients get a verifiable back-channel logout', async (t) => {
  const { gatehouse, clock, coordReceiver, freeReceiver } = await setup(t);
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  const { claims } = await signIn(browser, coord, { username: 'alice', ...offline });
  await signIn(browser, await discover(gatehouse.issuer, 'free', 'free-secret'), { username: 'alice', ...offline });

  clock.advance(HOUR + 1000);
  const swept = await gatehouse.server.sweeper.runOnce();
  t.is(swept.sessions, 1);
  await gatehouse.server.backchannel.runOnce();

  const [token] = await coordReceiver.waitFor(1);
  const jwks = createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`));
  const { payload } = await jwtVerify(token, jwks, {
    issuer: gatehouse.issuer,
    audience: 'coord',
    typ: 'logout+jwt',
    currentDate: new Date(),
  });
  t.is(payload.sub, 'alice');
  t.is(payload.sid, claims.sid);
  t.is(freeReceiver.tokens.length, 0, 'a non-coordinated client is not told by default');
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'alice' }), []);
  const [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'coord' });
  t.is(row.status, 'delivered');
  t.is(row.reason, 'session_expiration');
});

test('expiredSessionsTriggerBackchannelLogout notifies every client of the session', async (t) => {
  const { gatehouse, clock, coordReceiver, freeReceiver } = await setup(t, {
    expiredSessionsTriggerBackchannelLogout: true,
  });
  const browser = new Browser();
  await signIn(browser, await discover(gatehouse.issuer, 'coord', 'coord-secret'), { username: 'bob', ...offline });
  await signIn(browser, await discover(gatehouse.issuer, 'free', 'free-secret'), { username: 'bob', ...offline });
  clock.advance(HOUR + 1000);
  await gatehouse.server.sweeper.runOnce();
  await gatehouse.server.backchannel.runOnce();
  t.is((await coordReceiver.waitFor(1)).length, 1);
  t.is((await freeReceiver.waitFor(1)).length, 1);
});

test('an expired session the sweeper has not reached is ended by the next request', async (t) => {
  const { gatehouse, clock, coordReceiver } = await setup(t);
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  await signIn(browser, coord, { username: 'carol', ...offline });
  clock.advance(HOUR + 1000);
  const page = await startAuthorization(browser, coord);
  t.true(page.body.includes('name="password"'));
  const [token] = await coordReceiver.waitFor(1);
  t.is(decodeJwt(token).sub, 'carol');
  t.deepEqual(await gatehouse.server.sessionStore!.getSessions({ subjectId: 'carol' }), []);
});

test('expiry revokes coordinated refresh tokens and keeps a non-coordinated offline_access token', async (t) => {
  const { gatehouse, clock } = await setup(t);
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  const free = await discover(gatehouse.issuer, 'free', 'free-secret');
  const coordTokens = (await signIn(browser, coord, { username: 'dave', ...offline })).tokens;
  const freeTokens = (await signIn(browser, free, { username: 'dave', ...offline })).tokens;
  clock.advance(HOUR + 1000);
  await gatehouse.server.sweeper.runOnce();
  const error = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(coord, coordTokens.refresh_token!));
  t.is(error?.error, 'invalid_grant');
  const refreshed = await oidc.refreshTokenGrant(free, freeTokens.refresh_token!);
  t.truthy(refreshed.access_token, 'offline_access of a non-coordinated client survives the session');
});

test('refresh and userinfo of a coordinated client extend the session', async (t) => {
  const { gatehouse, clock } = await setup(t);
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  let tokens = (await signIn(browser, coord, { username: 'alice', ...offline })).tokens;
  const store = gatehouse.server.sessionStore!;
  const [before] = await store.getSessions({ subjectId: 'alice' });

  clock.advance(40 * MINUTE);
  tokens = await oidc.refreshTokenGrant(coord, tokens.refresh_token!);
  const [afterRefresh] = await store.getSessions({ subjectId: 'alice' });
  t.true(afterRefresh.expires!.getTime() > before.expires!.getTime(), 'refresh slid the expiry');
  t.is(afterRefresh.renewed.getTime(), clock.now().getTime());

  clock.advance(40 * MINUTE);
  await oidc.fetchUserInfo(coord, tokens.access_token, 'alice');
  const [afterUserinfo] = await store.getSessions({ subjectId: 'alice' });
  t.true(afterUserinfo.expires!.getTime() > afterRefresh.expires!.getTime(), 'userinfo slid the expiry');

  clock.advance(40 * MINUTE); // 2 h after sign-in, past the 1 h idle timeout without the activity above
  t.false((await signIn(browser, coord, { username: 'alice', ...offline })).sawLogin, 'still signed in');
});

test('refresh, userinfo and introspection fail for a deleted or expired session', async (t) => {
  const { gatehouse, clock } = await setup(t);
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');

  const deleted = (await signIn(new Browser(), coord, { username: 'bob', ...offline })).tokens;
  await gatehouse.server.sessionStore!.deleteSessions({ subjectId: 'bob' });
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(coord, deleted.refresh_token!)))?.error,
    'invalid_grant',
  );
  const userinfo = await t.throwsAsync<oidc.WWWAuthenticateChallengeError>(
    oidc.fetchUserInfo(coord, deleted.access_token, 'bob'),
  );
  t.is(userinfo?.cause?.[0]?.parameters.error, 'invalid_token');
  t.false((await oidc.tokenIntrospection(coord, deleted.access_token)).active);

  const expired = (await signIn(new Browser(), coord, { username: 'carol', ...offline })).tokens;
  clock.advance(HOUR + 1000);
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(coord, expired.refresh_token!)))?.error,
    'invalid_grant',
  );
});

test('an explicit logout sends exactly one notification per client', async (t) => {
  const { gatehouse, coordReceiver, freeReceiver } = await setup(t);
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  const { tokens } = await signIn(browser, coord, { username: 'dave', ...offline });
  await signIn(browser, await discover(gatehouse.issuer, 'free', 'free-secret'), { username: 'dave', ...offline });
  const confirm = await browser.navigate(
    oidc.buildEndSessionUrl(coord, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI }),
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  await coordReceiver.waitFor(1);
  await freeReceiver.waitFor(1);
  await gatehouse.server.sweeper.runOnce();
  await gatehouse.server.backchannel.runOnce();
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(coordReceiver.tokens.length, 1);
  t.is(freeReceiver.tokens.length, 1);
  t.is(decodeJwt(coordReceiver.tokens[0]).sub, 'dave');
  const coordinatedRefresh = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.refreshTokenGrant(coord, tokens.refresh_token!),
  );
  t.is(coordinatedRefresh?.error, 'invalid_grant', 'logout revokes a coordinated offline_access token');
});

test('a relying party that answers 500 twice and then 200 gets its notification', async (t) => {
  const { gatehouse, clock, coordReceiver } = await setup(t, {}, { retryBaseDelay: 5, maxAttempts: 5 });
  coordReceiver.statuses.push(500, 500);
  const browser = new Browser();
  await signIn(browser, await discover(gatehouse.issuer, 'coord', 'coord-secret'), { username: 'alice', ...offline });
  await gatehouse.server.sessions.removeSessions({ subjectId: 'alice', actor: 'test' });
  await gatehouse.server.backchannel.runOnce();
  let [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'coord' });
  t.is(row.status, 'pending');
  t.is(row.attempts, 1);
  t.regex(row.lastError ?? '', /500/);
  clock.advance(5000);
  await gatehouse.server.backchannel.runOnce();
  [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'coord' });
  t.is(row.attempts, 2);
  t.is(row.nextAttemptAt.getTime(), clock.now().getTime() + 10_000, 'exponential backoff: 5 s, then 10 s');
  clock.advance(10_000);
  await gatehouse.server.backchannel.runOnce();
  t.is((await coordReceiver.waitFor(1)).length, 1);
  [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'coord' });
  t.is(row.status, 'delivered');
  t.is(row.attempts, 3);
});

test('a notification is given up after the configured number of attempts, and the outcome is recorded', async (t) => {
  const { gatehouse, clock, coordReceiver } = await setup(t, {}, { retryBaseDelay: 1, maxAttempts: 3 });
  coordReceiver.statuses.push(503, 503, 503, 503);
  await signIn(new Browser(), await discover(gatehouse.issuer, 'coord', 'coord-secret'), {
    username: 'bob',
    ...offline,
  });
  await gatehouse.server.sessions.removeSessions({ subjectId: 'bob' });
  for (let i = 0; i < 5; i++) {
    await gatehouse.server.backchannel.runOnce();
    clock.advance(10_000);
  }
  const [row] = await gatehouse.server.backchannel.outbox.list({ clientId: 'coord' });
  t.is(row.status, 'failed');
  t.is(row.attempts, 3);
  t.deepEqual(await gatehouse.server.backchannel.outbox.countByStatus(), { pending: 0, delivered: 0, failed: 1 });
});

test('inactivity timeout recipe: client activity keeps the session alive, then every client is told', async (t) => {
  // The README recipe: short idle timeout + coordination + back-channel logout on expiry.
  const { gatehouse, clock, coordReceiver, freeReceiver } = await setup(t, {
    idleTimeout: 15 * 60,
    coordinateClientLifetimesWithUserSession: true,
    expiredSessionsTriggerBackchannelLogout: true,
  });
  const browser = new Browser();
  const coord = await discover(gatehouse.issuer, 'coord', 'coord-secret');
  const free = await discover(gatehouse.issuer, 'free', 'free-secret');
  let coordTokens = (await signIn(browser, coord, { username: 'carol', ...offline })).tokens;
  const freeTokens = (await signIn(browser, free, { username: 'carol', ...offline })).tokens;

  for (let i = 0; i < 4; i++) {
    clock.advance(10 * MINUTE);
    coordTokens = await oidc.refreshTokenGrant(coord, coordTokens.refresh_token!);
    await gatehouse.server.sweeper.runOnce();
  }
  t.is(
    (await gatehouse.server.sessionStore!.getSessions({ subjectId: 'carol' })).length,
    1,
    'alive 40 minutes in, thanks to the client',
  );

  clock.advance(16 * MINUTE);
  await gatehouse.server.sweeper.runOnce();
  await gatehouse.server.backchannel.runOnce();
  t.is((await coordReceiver.waitFor(1)).length, 1);
  t.is((await freeReceiver.waitFor(1)).length, 1);
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(coord, coordTokens.refresh_token!)))?.error,
    'invalid_grant',
  );
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(free, freeTokens.refresh_token!)))?.error,
    'invalid_grant',
  );
  t.true((await startAuthorization(browser, coord)).body.includes('name="password"'));
});
