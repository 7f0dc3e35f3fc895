import test from 'ava';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
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

let gatehouse: TestServer;
const receiver = new LogoutReceiver();

test.before(async () => {
  await receiver.start();
  gatehouse = await startTestServer({
    config: {
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: [POST_LOGOUT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile email offline_access',
          backchannel_logout_uri: receiver.url,
          backchannel_logout_session_required: true,
        },
        {
          client_id: 'spa',
          token_endpoint_auth_method: 'none',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
        },
        { client_id: 'service', client_secret: 'service-secret', grant_types: ['client_credentials'] },
      ],
    },
  });
});

test.after.always(async () => {
  await gatehouse?.close();
  await receiver.close();
});

test('discovery advertises the supported protocol', async (t) => {
  const response = await fetch(`${gatehouse.issuer}/.well-known/openid-configuration`);
  t.is(response.status, 200);
  const metadata = (await response.json()) as Record<string, unknown>;
  t.is(metadata.issuer, gatehouse.issuer);
  t.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  t.true((metadata.grant_types_supported as string[]).includes('client_credentials'));
  t.false((metadata.grant_types_supported as string[]).includes('implicit'));
  t.true(metadata.backchannel_logout_supported as boolean);
  t.truthy(metadata.introspection_endpoint);
  t.truthy(metadata.revocation_endpoint);
  t.truthy(metadata.end_session_endpoint);
  const jwks = (await (await fetch(String(metadata.jwks_uri))).json()) as { keys: { alg: string; d?: string }[] };
  t.deepEqual(jwks.keys.map((key) => key.alg).sort(), ['ES256', 'RS256']);
  t.true(
    jwks.keys.every((key) => key.d === undefined),
    'private key material is never published',
  );
});

test('authorization code with PKCE: login, consent, ID token, userinfo, refresh, introspection, revocation', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const result = await signIn(browser, config, { username: 'alice', scope: 'openid profile email offline_access' });
  t.true(result.sawLogin);
  t.true(result.sawConsent);

  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  const { payload, protectedHeader } = await jwtVerify(result.tokens.id_token!, jwks, {
    issuer: gatehouse.issuer,
    audience: 'web',
  });
  t.is(protectedHeader.alg, 'RS256');
  t.is(payload.sub, 'alice');
  t.is(payload.nonce, result.nonce);
  t.is(typeof payload.sid, 'string');

  const userinfo = await oidc.fetchUserInfo(config, result.tokens.access_token, 'alice');
  t.is(userinfo.email, 'alice@example.com');
  t.is(userinfo.name, 'Alice Anderson');

  t.truthy(result.tokens.refresh_token);
  const refreshed = await oidc.refreshTokenGrant(config, result.tokens.refresh_token!);
  t.truthy(refreshed.access_token);
  t.not(refreshed.refresh_token, result.tokens.refresh_token, 'refresh tokens rotate');

  const introspection = await oidc.tokenIntrospection(config, refreshed.access_token);
  t.true(introspection.active);
  t.is(introspection.sub, 'alice');

  await oidc.tokenRevocation(config, refreshed.access_token);
  t.false((await oidc.tokenIntrospection(config, refreshed.access_token)).active);

  // Re-using a rotated refresh token is treated as theft: it fails and revokes the whole grant.
  const reuse = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.refreshTokenGrant(config, result.tokens.refresh_token!),
  );
  t.is(reuse?.error, 'invalid_grant');
  const afterReuse = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.refreshTokenGrant(config, refreshed.refresh_token!),
  );
  t.is(afterReuse?.error, 'invalid_grant');
});

test('a second authorization in the same browser reuses the session and the remembered consent', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  await signIn(browser, config, { username: 'bob' });
  const again = await signIn(browser, config, { username: 'bob' });
  t.false(again.sawLogin);
  t.false(again.sawConsent);
  t.is(again.claims.sub, 'bob');
});

test('public clients must use PKCE', async (t) => {
  const config = await discover(gatehouse.issuer, 'spa');
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 'xyz' });
  const page = await new Browser().navigate(url, {}, gatehouse.issuer);
  const redirect = new URL(page.url);
  t.is(redirect.origin + redirect.pathname, REDIRECT_URI);
  t.is(redirect.searchParams.get('error'), 'invalid_request');
  t.regex(redirect.searchParams.get('error_description') ?? '', /PKCE/);
  t.is(redirect.searchParams.get('state'), 'xyz');

  const signedIn = await signIn(new Browser(), config, { username: 'carol' });
  t.is(signedIn.claims.sub, 'carol');
});

test('client credentials issue a token that introspects active', async (t) => {
  const config = await discover(gatehouse.issuer, 'service', 'service-secret');
  const tokens = await oidc.clientCredentialsGrant(config);
  t.truthy(tokens.access_token);
  t.true((await oidc.tokenIntrospection(config, tokens.access_token)).active);
  const wrong = await discover(gatehouse.issuer, 'service', 'not-the-secret');
  const error = await t.throwsAsync<oidc.ResponseBodyError>(oidc.clientCredentialsGrant(wrong));
  t.is(error?.error, 'invalid_client');
});

test('RP-initiated logout with id_token_hint echoes state, ends the session and sends one back-channel logout', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const { tokens, claims } = await signIn(browser, config, { username: 'dave' });
  const before = receiver.tokens.length;

  const endSession = oidc.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token!,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state: 'bye-123',
  });
  const confirmPage = await browser.navigate(endSession);
  t.is(confirmPage.status, 200);
  t.regex(confirmPage.body, /Sign out/);
  t.regex(confirmPage.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirmPage.body)![1];
  const done = await browser.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  const landed = new URL(done.url);
  t.is(landed.origin + landed.pathname, POST_LOGOUT_URI);
  t.is(landed.searchParams.get('state'), 'bye-123');

  await receiver.waitFor(before + 1);
  const logoutToken = receiver.tokens.find((token) => decodeJwt(token).sub === 'dave')!;
  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  const { payload } = await jwtVerify(logoutToken, jwks, {
    issuer: gatehouse.issuer,
    audience: 'web',
    typ: 'logout+jwt',
  });
  t.is(payload.sub, 'dave');
  t.is(payload.sid, claims.sid);
  t.truthy((payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Other tests share the receiver: count dave's notifications only.
  t.is(receiver.tokens.filter((token) => decodeJwt(token).sub === 'dave').length, 1, 'exactly one notification');

  const next = await startAuthorization(browser, config);
  t.true(next.body.includes('name="password"'), 'the next authorization request shows the login page');
});

test('a wrong password and an unknown user get the same generic error and no session', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  for (const [username, password] of [
    ['alice', 'wrong-password'],
    ['nobody', 'whatever'],
  ]) {
    const browser = new Browser();
    const login = await startAuthorization(browser, config);
    const action = /action="([^"]*\/login)"/.exec(login.body)![1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)![1];
    const page = await browser.navigate(new URL(action, login.url), { form: { csrf, username, password } });
    t.is(page.status, 200);
    t.true(page.body.includes('Invalid username or password.'), `${username}: generic message`);
    t.false(page.body.includes('unknown'), 'no hint about which part was wrong');
    t.true(page.body.includes('name="password"'), 'the form is shown again');
    const next = await startAuthorization(browser, config);
    t.true(next.body.includes('name="password"'), 'still not signed in');
  }
});

test('a login form without its CSRF token is refused', async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const login = await startAuthorization(browser, config);
  const action = /action="([^"]*\/login)"/.exec(login.body)![1];
  const page = await browser.request(new URL(action, login.url), {
    form: { username: 'alice', password: 'alice-password' },
  });
  t.is(page.status, 403);
});

test('malformed authorization requests get OAuth error responses', async (t) => {
  const authorize = `${gatehouse.issuer}/auth`;
  const unknownClient = await new Browser().request(
    `${authorize}?client_id=nope&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
  );
  t.is(unknownClient.status, 400);
  t.regex(unknownClient.body, /invalid_client/);

  const badRedirect = await new Browser().request(
    `${authorize}?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`,
  );
  t.is(badRedirect.status, 400);
  t.regex(badRedirect.body, /invalid_redirect_uri|redirect_uri did not match/);
  t.falsy(badRedirect.headers.get('location'), 'never redirects to an unregistered URI');

  const badResponseType = await new Browser().request(
    `${authorize}?client_id=web&response_type=token&scope=openid&state=s1&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
  );
  t.is(badResponseType.status, 303);
  const location = new URL(badResponseType.headers.get('location')!);
  const response = new URLSearchParams(location.hash.slice(1) || location.search);
  t.is(response.get('error'), 'unsupported_response_type');
  t.is(response.get('state'), 's1');

  const token = await fetch(`${gatehouse.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=authorization_code&code=bogus&client_id=web&client_secret=web-secret&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
  });
  t.is(token.status, 400);
  t.is(((await token.json()) as { error: string }).error, 'invalid_grant');
});

test('health, readiness, home page and security headers', async (t) => {
  const health = await fetch(`${gatehouse.issuer}/healthz`);
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${gatehouse.issuer}/readyz`);
  t.is(ready.status, 200);
  const home = await fetch(`${gatehouse.issuer}/`);
  const html = await home.text();
  t.true(html.includes(gatehouse.issuer));
  t.true(html.includes('/.well-known/openid-configuration'));
  t.false(html.includes('alice-password'), 'demo accounts only appear in the demo config');
  t.is(home.headers.get('x-content-type-options'), 'nosniff');
  t.truthy(home.headers.get('x-request-id'));
  t.regex(home.headers.get('content-security-policy') ?? '', /default-src 'none'/);
});

test("ending one session does not revoke another session's tokens of the same user and client", async (t) => {
  const config = await discover(gatehouse.issuer, 'web', 'web-secret');
  const laptop = new Browser();
  const phone = new Browser();
  const first = await signIn(laptop, config, { username: 'carol', scope: 'openid offline_access' });
  const second = await signIn(phone, config, { username: 'carol', scope: 'openid offline_access' });
  const confirm = await laptop.navigate(
    oidc.buildEndSessionUrl(config, {
      id_token_hint: first.tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    }),
  );
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)![1];
  await laptop.navigate(`${gatehouse.issuer}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
  const refreshed = await oidc.refreshTokenGrant(config, second.tokens.refresh_token!);
  t.truthy(refreshed.access_token, "the phone's tokens survive the laptop's logout");
});
