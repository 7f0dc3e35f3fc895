/**
 * APIs (resource servers) end to end, with openid-client as the client: client credentials for an API give an RFC 9068
 * JWT that jose verifies against the JWKS; authorization code + refresh for an API with reference tokens give tokens
 * the API introspects, inactive once an administrator revokes the session; consent lists the API's scopes; the
 * introspection policy; the admin views of which APIs a session's clients hold tokens for.
 */
import test from 'ava';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import type { JsonBody } from './helpers/json-body.js';
import { discover, REDIRECT_URI } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { ManualClock, startGatehouse } from '../testing/index.js';

const ORDERS = 'https://api.example.com/orders';
const LEDGER = 'https://ledger.example.com/';
const REPORTS = 'urn:example:reports';

let gatehouse: TestServer;
let admin: string;

test.before(async () => {
  gatehouse = await startTestServer({
    config: {
      serverSideSessions: { enabled: true, displayNameClaim: 'name' },
      clients: [
        {
          client_id: 'gatehouse-admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
        { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'] },
        { client_id: 'other-svc', client_secret: 'other-svc-secret', grant_types: ['client_credentials'] },
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile email offline_access',
          coordinateLifetimeWithUserSession: true,
        },
        // The ledger API itself: a confidential client that only introspects.
        { client_id: 'ledger-api', client_secret: 'ledger-api-secret', grant_types: [] },
      ],
      apis: [
        {
          identifier: ORDERS,
          name: 'Orders',
          scopes: [
            { name: 'orders:read', description: 'See your orders' },
            { name: 'orders:write', description: 'Place orders for you' },
          ],
        },
        {
          identifier: LEDGER,
          name: 'Ledger',
          scopes: [{ name: 'ledger:read', description: 'Read your ledger' }],
          tokenFormat: 'opaque',
          accessTokenTtl: 300,
          introspectionClientId: 'ledger-api',
        },
        { identifier: REPORTS, scopes: [{ name: 'reports:read' }], signingAlg: 'ES256', allowedClients: ['svc'] },
      ],
    },
  });
  admin = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
});

test.after.always(async () => {
  await gatehouse?.close();
});

const jwks = () => createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`));

/** Authorization code + PKCE through the real login and consent pages; keeps the consent page's HTML. */
async function signIn(
  config: oidc.Configuration,
  username: string,
  scope: string,
): Promise<{ tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers; consent?: string }> {
  const browser = new Browser();
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    prompt: 'consent',
  });
  let page: Page = await browser.navigate(url, {}, gatehouse.issuer);
  let consent: string | undefined;
  for (let step = 0; step < 4 && !page.url.startsWith(REDIRECT_URI); step++) {
    const form = page.body.includes('name="password"')
      ? formWithAction(page.body, '/login')
      : formWithAction(page.body, '/confirm');
    if (form.action.endsWith('/confirm')) consent = page.body;
    const fields = form.action.endsWith('/login')
      ? { ...form.fields, username, password: `${username}-password` }
      : form.fields;
    page = await browser.navigate(new URL(form.action, page.url), { form: fields }, gatehouse.issuer);
  }
  const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { tokens, consent };
}

async function adminApi(path: string, method = 'GET'): Promise<{ status: number; body: JsonBody }> {
  const response = await fetch(`${gatehouse.issuer}/admin/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}` },
  });
  return { status: response.status, body: await response.json() };
}

test('client credentials for an API: an RFC 9068 JWT that jose verifies against the JWKS', async (t) => {
  const svc = await discover(gatehouse.issuer, 'svc', 'svc-secret');
  // Named by its scope alone, or with the resource indicator: the same API.
  for (const parameters of [
    { scope: 'orders:read' },
    { resource: ORDERS, scope: 'orders:read orders:write' },
  ] as Record<string, string>[]) {
    const tokens = await oidc.clientCredentialsGrant(svc, parameters);
    t.is(tokens.token_type, 'bearer');
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks(), {
      issuer: gatehouse.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
    });
    t.is(protectedHeader.alg, 'RS256');
    t.is(payload.scope, parameters.scope);
    t.is(payload.client_id, 'svc');
    t.is(payload.sub, 'svc');
    t.is(payload.exp! - payload.iat!, 600, 'ttl.clientCredentials, since the API sets no lifetime of its own');
    t.truthy(payload.jti);
  }
  // An API with ES256 gets tokens signed with the published ES256 key.
  const reports = await oidc.clientCredentialsGrant(svc, { scope: 'reports:read' });
  const { protectedHeader } = await jwtVerify(reports.access_token, jwks(), {
    issuer: gatehouse.issuer,
    audience: REPORTS,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  t.is(protectedHeader.alg, 'ES256');
  // Without an API scope or resource, the token stays what it was: opaque, for Gatehouse itself.
  const plain = await oidc.clientCredentialsGrant(svc);
  t.throws(() => decodeJwt(plain.access_token));
});

test('a token for one API carries only that API’s scopes; allowedClients and unknown APIs give invalid_target', async (t) => {
  const svc = await discover(gatehouse.issuer, 'svc', 'svc-secret');
  const mixed = await oidc.clientCredentialsGrant(svc, { resource: ORDERS, scope: 'orders:read ledger:read' });
  t.is(decodeJwt(mixed.access_token).scope, 'orders:read');
  const both = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.clientCredentialsGrant(svc, { scope: 'orders:read ledger:read' }),
  );
  t.is(both?.error, 'invalid_target', 'client credentials name one API at a time');

  const other = await discover(gatehouse.issuer, 'other-svc', 'other-svc-secret');
  const refused = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.clientCredentialsGrant(other, { scope: 'reports:read' }),
  );
  t.is(refused?.error, 'invalid_target');
  t.regex(refused?.error_description ?? '', /may not request tokens for this API/);
  const unknown = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.clientCredentialsGrant(svc, { resource: 'https://unknown.example.com/' }),
  );
  t.is(unknown?.error, 'invalid_target');
});

test('authorization code and refresh for an API with reference tokens: the API introspects them until the session is revoked', async (t) => {
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const ledgerApi = await discover(gatehouse.issuer, 'ledger-api', 'ledger-api-secret');
  const { tokens, consent } = await signIn(web, 'dave', 'openid profile offline_access ledger:read');

  t.regex(consent ?? '', /Ledger/);
  t.regex(consent ?? '', /Read your ledger/, 'the consent page lists the API scope with its description');
  t.throws(() => decodeJwt(tokens.access_token), undefined, 'a reference token, not a JWT');
  t.is(tokens.scope, 'ledger:read');
  t.is(
    tokens.claims()?.name,
    'Dave Davis',
    'the ID token carries the profile claims: the access token cannot call userinfo',
  );

  const introspected = await oidc.tokenIntrospection(ledgerApi, tokens.access_token);
  t.like(introspected, {
    active: true,
    aud: LEDGER,
    scope: 'ledger:read',
    sub: 'dave',
    client_id: 'web',
    token_type: 'Bearer',
  });
  t.is(introspected.exp! - introspected.iat!, 300, 'the API’s own lifetime');

  // Refresh keeps the API.
  const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
  t.like(await oidc.tokenIntrospection(ledgerApi, refreshed.access_token), {
    active: true,
    aud: LEDGER,
    scope: 'ledger:read',
  });

  // The admin view says which APIs the session's clients hold tokens for, and how those end.
  const [session] = await gatehouse.server.sessions.sessionsOf('dave');
  const shown = await adminApi(`/sessions/${session.sessionId}`);
  t.deepEqual(shown.body.apis, [
    {
      clientId: 'web',
      api: LEDGER,
      name: 'Ledger',
      tokenFormat: 'opaque',
      accessTokenTtl: 300,
      tokensEnd: 'revoked-with-session',
    },
  ]);
  const listed = await adminApi('/sessions?subject=dave');
  t.deepEqual(listed.body.sessions[0].apis, shown.body.apis);

  t.is((await adminApi(`/sessions/${session.sessionId}`, 'DELETE')).status, 200);
  t.false((await oidc.tokenIntrospection(ledgerApi, tokens.access_token)).active);
  t.false((await oidc.tokenIntrospection(ledgerApi, refreshed.access_token)).active);
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, refreshed.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
});

test('a coordinated client’s reference tokens for an API stop introspecting when its session expires', async (t) => {
  const clock = new ManualClock();
  const expiring = await startTestServer({
    clock,
    config: {
      serverSideSessions: { enabled: true, idleTimeout: 3600, coordinateClientLifetimesWithUserSession: true },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid offline_access',
          skipConsent: true,
        },
        { client_id: 'ledger-api', client_secret: 'ledger-api-secret', grant_types: [] },
      ],
      apis: [
        {
          identifier: LEDGER,
          scopes: [{ name: 'ledger:read' }],
          tokenFormat: 'opaque',
          introspectionClientId: 'ledger-api',
        },
      ],
    },
  });
  t.teardown(() => expiring.close());
  const web = await discover(expiring.issuer, 'web', 'web-secret');
  const ledgerApi = await discover(expiring.issuer, 'ledger-api', 'ledger-api-secret');
  const browser = new Browser();
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(web, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid offline_access ledger:read',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const login = await browser.navigate(url, {}, expiring.issuer);
  const form = formWithAction(login.body, '/login');
  const back = await browser.navigate(
    new URL(form.action, login.url),
    { form: { ...form.fields, username: 'alice', password: 'alice-password' } },
    expiring.issuer,
  );
  const tokens = await oidc.authorizationCodeGrant(web, new URL(back.url), {
    pkceCodeVerifier: verifier,
    idTokenExpected: true,
  });
  t.true((await oidc.tokenIntrospection(ledgerApi, tokens.access_token)).active);

  clock.advance(3600 * 1000 + 1000);
  t.false((await oidc.tokenIntrospection(ledgerApi, tokens.access_token)).active, 'bound to the expired session');
  await expiring.server.sweeper.runOnce();
  t.false((await oidc.tokenIntrospection(web, tokens.access_token)).active);
  t.is(
    (await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(web, tokens.refresh_token!)))?.error,
    'invalid_grant',
  );
});

test('JWT access tokens from a sign-in: audience, subject and scope of the API; the session view says they live out their lifetime', async (t) => {
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { tokens, consent } = await signIn(web, 'bob', 'openid orders:read');
  t.regex(consent ?? '', /See your orders/);
  t.notRegex(consent ?? '', /Place orders for you/, 'only the scopes asked for are listed');
  const { payload } = await jwtVerify(tokens.access_token, jwks(), {
    issuer: gatehouse.issuer,
    audience: ORDERS,
    typ: 'at+jwt',
  });
  t.like(payload, { sub: 'bob', client_id: 'web', scope: 'orders:read' });
  t.is(payload.exp! - payload.iat!, 3600, 'ttl.accessToken');
  const [session] = await gatehouse.server.sessions.sessionsOf('bob');
  const shown = await adminApi(`/sessions/${session.sessionId}`);
  t.deepEqual(shown.body.apis, [
    {
      clientId: 'web',
      api: ORDERS,
      name: 'Orders',
      tokenFormat: 'jwt',
      accessTokenTtl: 3600,
      tokensEnd: 'until-expiry',
    },
  ]);
});

test('introspection: a client sees its own tokens, an API the tokens of its audience, nobody anything else', async (t) => {
  const svc = await discover(gatehouse.issuer, 'svc', 'svc-secret');
  const other = await discover(gatehouse.issuer, 'other-svc', 'other-svc-secret');
  const ledgerApi = await discover(gatehouse.issuer, 'ledger-api', 'ledger-api-secret');
  const forLedger = (await oidc.clientCredentialsGrant(svc, { scope: 'ledger:read' })).access_token;
  const forGatehouse = (await oidc.clientCredentialsGrant(svc)).access_token;

  t.true((await oidc.tokenIntrospection(svc, forLedger)).active, 'its own token');
  t.true((await oidc.tokenIntrospection(ledgerApi, forLedger)).active, 'a token for its API');
  t.false((await oidc.tokenIntrospection(other, forLedger)).active, 'another confidential client: no longer');
  t.false((await oidc.tokenIntrospection(ledgerApi, forGatehouse)).active, 'not for its API');
  t.true((await oidc.tokenIntrospection(svc, forGatehouse)).active);
});

test('the testing harness takes APIs: login for an API scope returns its JWT access token', async (t) => {
  const harness = await startGatehouse({
    users: [{ subject: 'erin', password: 'erin-pw' }],
    clients: [
      {
        client_id: 'app',
        client_secret: 'app-secret',
        redirect_uris: ['http://127.0.0.1:9/cb'],
        grant_types: ['authorization_code'],
      },
    ],
    apis: [{ identifier: ORDERS, scopes: [{ name: 'orders:read' }] }],
  });
  t.teardown(() => harness.stop());
  const { tokens } = await harness.login({ subject: 'erin', clientId: 'app', scope: 'openid orders:read' });
  const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${harness.issuer}/jwks`)), {
    issuer: harness.issuer,
    audience: ORDERS,
    typ: 'at+jwt',
  });
  t.is(payload.sub, 'erin');
});

test('the admin sessions page shows which APIs a session’s clients hold tokens for', async (t) => {
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  await signIn(web, 'carol', 'openid orders:read');
  const browser = new Browser();
  let page = await browser.navigate(`${gatehouse.issuer}/admin/sessions?subject=carol`);
  const login = formWithAction(page.body, '/login');
  // carol is no administrator: alice looks at carol's sessions.
  page = await browser.navigate(new URL(login.action, page.url), {
    form: { ...login.fields, username: 'alice', password: 'alice-password' },
  });
  t.is(page.status, 200);
  t.regex(page.body, /<th>APIs<\/th>/);
  t.regex(page.body, /Orders <span class="muted">\(web: JWT, valid until expiry \(≤ 1 h\)\)<\/span>/);
});
