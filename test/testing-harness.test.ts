/**
 * `gatehouse-idp/testing`: startGatehouse() gives another project's tests a real Gatehouse on port 0 with testing settings,
 * login() signs a user in through the real endpoints without a browser, and authorize() does the front channel only,
 * for the test's own client library (openid-client here) to exchange the code.
 */
import test from 'ava';
import * as oidc from 'openid-client';
import { ManualClock, startGatehouse, type TestGatehouse } from '../testing/index.js';
import { LogoutReceiver } from './helpers/relying-party.js';

const REDIRECT = 'http://127.0.0.1:9/callback';

const users = [
  {
    subject: 'alice',
    password: 'alice-pw',
    claims: { name: 'Alice Anderson', email: 'alice@example.com' },
    roles: ['admin'],
  },
  { subject: 'bob', username: 'bobby', password: 'bob-pw' },
  { subject: 'carol' }, // no password: one-click only
];
const web = {
  client_id: 'web',
  client_secret: 'web-secret',
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code' as const, 'refresh_token' as const],
};

async function start(
  t: { teardown(fn: () => Promise<void>): void },
  options: Parameters<typeof startGatehouse>[0] = {},
): Promise<TestGatehouse> {
  const gatehouse = await startGatehouse({ users, clients: [web], ...options });
  t.teardown(() => gatehouse.stop());
  return gatehouse;
}

/** Whether a Gatehouse session cookie still signs the browser in (the authorization request skips the login page). */
async function cookieSignsIn(gatehouse: TestGatehouse, sessionCookie: string): Promise<boolean> {
  const url = new URL(`${gatehouse.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: 'web',
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'openid',
    prompt: 'none',
  }).toString();
  const response = await fetch(url, { headers: { cookie: sessionCookie }, redirect: 'manual' });
  const location = new URL(response.headers.get('location')!, url);
  if (!location.href.startsWith(REDIRECT)) throw new Error(`unexpected redirect to ${location.href}`);
  return location.searchParams.has('code');
}

test('startGatehouse serves discovery on a loopback port with the testing settings', async (t) => {
  const gatehouse = await start(t);
  t.regex(gatehouse.issuer, /^http:\/\/localhost:\d+$/);
  t.is(gatehouse.url, gatehouse.issuer);
  const discovery = (await (await fetch(`${gatehouse.issuer}/.well-known/openid-configuration`)).json()) as {
    issuer: string;
  };
  t.is(discovery.issuer, gatehouse.issuer);
  const { config } = gatehouse.server;
  t.is(config.mode, 'testing');
  t.is(config.host, '127.0.0.1');
  t.is(config.database.url, 'sqlite::memory:');
  t.like(config.passwordHashing, { algorithm: 'argon2id', memory: 1024, passes: 1 });
  t.true(config.serverSideSessions.enabled);
  t.false(config.serverSideSessions.removeExpiredSessions, 'the sweeper is off unless asked');
  t.true(config.backchannelLogout.allowPrivateNetworks);
  t.true(config.clients.every((client) => client.skipConsent));
  t.is(gatehouse.sessions, gatehouse.server.sessions);
});

test('passwords are hashed at start with the fast argon2id cost, never kept in clear', async (t) => {
  const gatehouse = await start(t);
  const alice = await gatehouse.server.accounts.find('alice');
  t.regex(alice!.passwordHash!, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
  t.false(JSON.stringify(gatehouse.server.config.accounts).includes('alice-pw'));
});

test('login signs a user in through the real endpoints and returns the code, tokens and session cookie', async (t) => {
  const gatehouse = await start(t);
  const result = await gatehouse.login({ subject: 'alice', clientId: 'web' });
  t.true(result.authorizationResponse.href.startsWith(`${REDIRECT}?`));
  t.regex(result.sessionCookie, /^_session=[^;]+; _session\.sig=/);
  t.is(result.authorizationResponse.searchParams.get('code'), result.code);
  t.is(result.authorizationResponse.searchParams.get('iss'), gatehouse.issuer);
  t.is(typeof result.tokens.access_token, 'string');
  t.is(typeof result.tokens.id_token, 'string');
  t.true(result.tokens.expires_in > 0);
  t.is(result.tokens.refresh_token, undefined, 'no offline_access, no refresh token');
  t.is(result.tokens.claims.sub, 'alice');
  t.is(result.tokens.claims.iss, gatehouse.issuer);
  t.is(result.tokens.claims.aud, 'web');
  t.is(typeof result.tokens.claims.sid, 'string');

  const [session] = await gatehouse.sessions.sessionsOf('alice');
  t.is(result.sessionId, session!.sessionId);
  t.deepEqual(
    session!.clients.map((client) => [client.clientId, client.sid]),
    [['web', result.tokens.claims.sid]],
  );
  t.true(await cookieSignsIn(gatehouse, result.sessionCookie));

  const userinfo = await fetch(`${gatehouse.issuer}/me`, {
    headers: { authorization: `Bearer ${result.tokens.access_token}` },
  });
  t.like(await userinfo.json(), { sub: 'alice' });
});

test('login asks for the scope given; offline_access brings a refresh token', async (t) => {
  const gatehouse = await start(t);
  const { tokens } = await gatehouse.login({
    subject: 'alice',
    clientId: 'web',
    scope: 'openid profile email offline_access',
  });
  t.is(typeof tokens.refresh_token, 'string');
  t.is(tokens.scope?.split(' ').sort().join(' '), 'email offline_access openid profile');
  const userinfo = await fetch(`${gatehouse.issuer}/me`, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  t.like(await userinfo.json(), { sub: 'alice', name: 'Alice Anderson', email: 'alice@example.com' });
});

test('login uses the configured username, client_secret_post, public clients and another redirect URI', async (t) => {
  const other = 'http://127.0.0.1:9/other';
  const gatehouse = await start(t, {
    clients: [
      {
        client_id: 'post',
        client_secret: 'post-secret',
        token_endpoint_auth_method: 'client_secret_post',
        redirect_uris: [REDIRECT, other],
      },
      { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
    ],
  });
  const viaPost = await gatehouse.login({ subject: 'bob', clientId: 'post', redirectUri: other });
  t.is(viaPost.tokens.claims.sub, 'bob');
  t.true(viaPost.authorizationResponse.href.startsWith(other));
  const publicClient = await gatehouse.login({ subject: 'bob', clientId: 'spa' });
  t.is(publicClient.tokens.claims.aud, 'spa');
});

test('a user without a password signs in with the one-click button', async (t) => {
  const gatehouse = await start(t);
  const { tokens } = await gatehouse.login({ subject: 'carol', clientId: 'web' });
  t.is(tokens.claims.sub, 'carol');
});

test('a wrong password or an unknown client fails with the reason', async (t) => {
  const gatehouse = await start(t);
  await t.throwsAsync(gatehouse.login({ subject: 'alice', clientId: 'web', password: 'wrong' }), {
    message: /alice was not signed in: Invalid username or password/,
  });
  await t.throwsAsync(gatehouse.login({ subject: 'alice', clientId: 'nope' }), { message: /no client nope/ });
  t.deepEqual(await gatehouse.sessions.sessionsOf('alice'), []);
});

test('a client that asks for consent gets it confirmed by login', async (t) => {
  const gatehouse = await start(t, { clients: [{ ...web, client_id: 'asks', skipConsent: false }] });
  const { tokens } = await gatehouse.login({ subject: 'alice', clientId: 'asks', scope: 'openid profile' });
  t.is(tokens.claims.sub, 'alice');
});

test('removeSessions ends the session: back-channel logout reaches a loopback receiver and the cookie is dead', async (t) => {
  const receiver = await new LogoutReceiver().start();
  t.teardown(() => receiver.close());
  const gatehouse = await start(t, { clients: [{ ...web, backchannel_logout_uri: receiver.url }] });
  const { sessionId, sessionCookie, tokens } = await gatehouse.login({ subject: 'alice', clientId: 'web' });
  const result = await gatehouse.sessions.removeSessions({ sessionId });
  t.deepEqual(result.sessions, [sessionId]);
  const [logoutToken] = await receiver.waitFor(1);
  const payload = JSON.parse(Buffer.from(logoutToken!.split('.')[1]!, 'base64url').toString()) as {
    sid: string;
    sub: string;
  };
  t.is(tokens.claims.sid, payload.sid);
  t.false(await cookieSignsIn(gatehouse, sessionCookie));
});

test('config is merged one section deep over the testing settings; the clock is the one given', async (t) => {
  const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
  const gatehouse = await start(t, {
    clock,
    config: { serverSideSessions: { idleTimeout: 60, absoluteLifetime: 600 }, pages: { title: 'Test IdP' } },
  });
  const { serverSideSessions, pages } = gatehouse.server.config;
  t.like(serverSideSessions, { enabled: true, idleTimeout: 60, removeExpiredSessions: false });
  t.is(pages.title, 'Test IdP');

  const { sessionId } = await gatehouse.login({ subject: 'alice', clientId: 'web' });
  const session = await gatehouse.sessions.getSession(sessionId!);
  t.is(session!.created.toISOString(), '2030-01-01T00:00:00.000Z');
  clock.advance(61_000);
  await gatehouse.server.sweeper.runOnce();
  t.is(await gatehouse.sessions.getSession(sessionId!), null, 'idle for longer than idleTimeout: swept');
});

test('each harness has its own database; stop() closes the port and may be called twice', async (t) => {
  const one = await startGatehouse({ users, clients: [web] });
  const two = await startGatehouse({ users: [{ subject: 'zed', password: 'zed-pw' }], clients: [web] });
  t.teardown(() => Promise.all([one.stop(), two.stop()]).then(() => undefined));
  await one.login({ subject: 'alice', clientId: 'web' });
  t.is((await one.sessions.sessionsOf('alice')).length, 1);
  t.is((await two.sessions.sessionsOf('alice')).length, 0);
  await t.throwsAsync(two.login({ subject: 'alice', clientId: 'web' }), {
    message: /no password for alice, and no one-click button/,
  });
  await one.stop();
  await one.stop();
  await t.throwsAsync(fetch(`${one.issuer}/.well-known/openid-configuration`));
});

/** openid-client for a client of this Gatehouse (http on loopback allowed). */
function relyingParty(gatehouse: TestGatehouse, clientId: string, secret?: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(gatehouse.issuer), clientId, secret, secret === undefined ? oidc.None() : undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

test('authorize follows the authorization URL openid-client built; openid-client exchanges the code', async (t) => {
  const gatehouse = await start(t);
  const client = await relyingParty(gatehouse, 'web', 'web-secret');
  const verifier = oidc.randomPKCECodeVerifier();
  const [state, nonce] = [oidc.randomState(), oidc.randomNonce()];
  const request = oidc.buildAuthorizationUrl(client, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const response = await gatehouse.authorize({ subject: 'alice', url: request });
  t.true(response.url.href.startsWith(`${REDIRECT}?`));
  t.is(response.url.searchParams.get('state'), state);
  t.is(response.code, response.url.searchParams.get('code')!);
  t.is(response.error, undefined);

  const tokens = await oidc.authorizationCodeGrant(client, response.url, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  const claims = tokens.claims()!;
  t.is(claims.sub, 'alice');
  t.is(claims.sid, (await gatehouse.sessions.getSession(response.sessionId!))!.clients[0]!.sid);
  const userinfo = await oidc.fetchUserInfo(client, tokens.access_token, 'alice');
  t.like(userinfo, { name: 'Alice Anderson', email: 'alice@example.com' });
  t.is(response.sessionId, (await gatehouse.sessions.sessionsOf('alice'))[0]!.sessionId);
});

test('authorize builds the request from options (a public client with PKCE) and resolves before any code exchange', async (t) => {
  const gatehouse = await start(t, {
    clients: [{ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const response = await gatehouse.authorize({
    subject: 'bob',
    clientId: 'spa',
    scope: 'openid email',
    state: 'my-state',
    nonce: 'my-nonce',
    codeChallenge: await oidc.calculatePKCECodeChallenge(verifier),
  });
  t.is(response.url.searchParams.get('state'), 'my-state');
  t.is(response.url.searchParams.get('iss'), gatehouse.issuer);
  const client = await relyingParty(gatehouse, 'spa');
  const tokens = await oidc.authorizationCodeGrant(client, response.url, {
    pkceCodeVerifier: verifier,
    expectedState: 'my-state',
    expectedNonce: 'my-nonce',
  });
  t.is(tokens.claims()!.sub, 'bob');
  t.is(tokens.claims()!.aud, 'spa');
  await t.throwsAsync(
    oidc.authorizationCodeGrant(client, response.url, { pkceCodeVerifier: verifier, expectedState: 'my-state' }),
    undefined,
    'a code works once',
  );
});

test('authorize resolves to error responses too, and acts as an earlier browser with its session cookie', async (t) => {
  const gatehouse = await start(t);
  const silent = await gatehouse.authorize({ subject: 'alice', clientId: 'web', prompt: 'none', state: 's1' });
  t.is(silent.error, 'login_required');
  t.is(silent.code, undefined);
  t.is(silent.url.searchParams.get('state'), 's1');

  const { sessionCookie } = await gatehouse.login({ subject: 'alice', clientId: 'web' });
  const again = await gatehouse.authorize({ subject: 'alice', clientId: 'web', prompt: 'none', sessionCookie });
  t.is(typeof again.code, 'string', 'the session signs the browser in without a login page');
  await t.throwsAsync(gatehouse.authorize({ subject: 'alice', clientId: 'web', password: 'wrong' }), {
    message: /^authorize: alice was not signed in: Invalid username or password/,
  });
  await t.throwsAsync(gatehouse.authorize({ subject: 'alice', url: 'http://127.0.0.1:1/auth?redirect_uri=x' }), {
    message: /is not this Gatehouse/,
  });
});

test('ID tokens carry the scope claims only with idToken.scopeClaims; auth_time only when max_age asks for it', async (t) => {
  const scope = 'openid profile email';
  const idTokenClaims = async (gatehouse: TestGatehouse, maxAge?: number) => {
    const client = await relyingParty(gatehouse, 'web', 'web-secret');
    const response = await gatehouse.authorize({ subject: 'alice', clientId: 'web', scope, nonce: 'n', maxAge });
    return (
      await oidc.authorizationCodeGrant(client, response.url, { expectedNonce: 'n', idTokenExpected: true })
    ).claims()!;
  };
  const conformant = await start(t);
  const plain = await idTokenClaims(conformant);
  t.is(plain.sub, 'alice');
  t.is(typeof plain.sid, 'string');
  for (const claim of ['name', 'email', 'email_verified', 'auth_time'])
    t.false(claim in plain, `no ${claim} by default`);
  t.is(typeof (await idTokenClaims(conformant, 300)).auth_time, 'number', 'max_age brings auth_time');

  const keycloakLike = await start(t, { config: { idToken: { scopeClaims: true } } });
  const full = await idTokenClaims(keycloakLike);
  t.like(full, { sub: 'alice', name: 'Alice Anderson', email: 'alice@example.com' });
  t.false('auth_time' in full);
});
