/**
 * Pushed authorization requests (RFC 9126) and DPoP (RFC 9449) end to end with openid-client: PAR required for a
 * client (and for every client) and enforced; DPoP-bound access and refresh tokens refused without a matching proof
 * at the token, userinfo and introspection steps; a public client's DPoP-bound refresh token; nonces required and
 * shared by every instance on one database; discovery advertising exactly what is on.
 */
import test from 'ava';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { randomUUID } from 'node:crypto';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let gatehouse: TestServer;

const CLIENTS = [
  {
    client_id: 'par-web',
    client_secret: 'par-web-secret',
    redirect_uris: [REDIRECT_URI],
    skipConsent: true,
    require_pushed_authorization_requests: true,
  },
  { client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true },
  {
    client_id: 'dpop-spa',
    token_endpoint_auth_method: 'none' as const,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code' as const, 'refresh_token' as const],
    scope: 'openid profile offline_access',
    skipConsent: true,
    dpop_bound_access_tokens: true,
  },
  {
    client_id: 'dpop-svc',
    client_secret: 'dpop-svc-secret',
    grant_types: ['client_credentials' as const],
    dpop_bound_access_tokens: true,
  },
];

test.before(async () => {
  gatehouse = await startTestServer({ config: { clients: CLIENTS } });
});

test.after.always(async () => {
  await gatehouse?.close();
});

/** Authorization code + PKCE through the login page; `url` builds the authorization request (plain or pushed). */
async function signIn(
  config: oidc.Configuration,
  username: string,
  options: { scope?: string; par?: boolean; dpop?: oidc.DPoPHandle; prompt?: string } = {},
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  const verifier = oidc.randomPKCECodeVerifier();
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope: options.scope ?? 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(options.prompt ? { prompt: options.prompt } : {}),
  };
  const url = options.par
    ? await oidc.buildAuthorizationUrlWithPAR(config, parameters, { DPoP: options.dpop })
    : oidc.buildAuthorizationUrl(config, parameters);
  const browser = new Browser();
  let page: Page = await browser.navigate(url, {}, gatehouse.issuer);
  if (page.body.includes('name="password"')) {
    const form = formWithAction(page.body, '/login');
    page = await browser.navigate(
      new URL(form.action, page.url),
      { form: { ...form.fields, username, password: `${username}-password` } },
      gatehouse.issuer,
    );
  }
  const landed = new URL(page.url);
  if (landed.searchParams.get('error'))
    throw Object.assign(new Error(landed.searchParams.get('error_description') ?? ''), {
      error: landed.searchParams.get('error'),
    });
  return oidc.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier }, undefined, { DPoP: options.dpop });
}

test('PAR required for a client: its plain authorization request is refused, a pushed one signs in', async (t) => {
  const config = await discover(gatehouse.issuer, 'par-web', 'par-web-secret');
  const refused = await t.throwsAsync<Error & { error?: string }>(signIn(config, 'alice'));
  t.is(refused?.error, 'invalid_request');
  t.regex(refused?.message ?? '', /Pushed Authorization Request must be used/);
  const tokens = await signIn(config, 'alice', { par: true });
  t.is(tokens.claims()?.sub, 'alice');
  // Other clients may still send their requests through the browser.
  t.is((await signIn(await discover(gatehouse.issuer, 'web', 'web-secret'), 'bob')).claims()?.sub, 'bob');
});

test('DPoP: a public client’s bound access and refresh tokens work only with proofs of its key', async (t) => {
  const config = await discover(gatehouse.issuer, 'dpop-spa');
  const key = await oidc.randomDPoPKeyPair('ES256');
  const dpop = oidc.getDPoPHandle(config, key);
  const tokens = await signIn(config, 'carol', {
    scope: 'openid profile offline_access',
    prompt: 'consent',
    par: true,
    dpop,
  });
  t.is(tokens.token_type, 'dpop');
  t.truthy(tokens.refresh_token);

  // userinfo checks the proof: with it, fine; as a bearer token or with another key's proof, refused.
  t.is((await oidc.fetchUserInfo(config, tokens.access_token, 'carol', { DPoP: dpop })).name, 'Carol Clark');
  const asBearer = await t.throwsAsync<oidc.WWWAuthenticateChallengeError>(
    oidc.fetchUserInfo(config, tokens.access_token, 'carol'),
  );
  t.is(asBearer?.cause?.[0]?.parameters.error, 'invalid_token');
  const stranger = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  const wrongKey = await t.throwsAsync<oidc.WWWAuthenticateChallengeError>(
    oidc.fetchUserInfo(config, tokens.access_token, 'carol', { DPoP: stranger }),
  );
  t.is(wrongKey?.cause?.[0]?.parameters.error, 'invalid_token');

  // Introspection says the token is bound, and to which key, for the API to check the proof against.
  const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
  t.is(introspection.token_type, 'DPoP');
  t.is(
    (introspection.cnf as { jkt?: string } | undefined)?.jkt,
    await calculateJwkThumbprint(await exportJWK(key.publicKey)),
  );

  // The public client's refresh token is bound to the key too: refused without its proof or with another key's (the
  // provider says only invalid_grant), refreshed with it.
  const withoutProof = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.refreshTokenGrant(config, tokens.refresh_token!),
  );
  t.is(withoutProof?.error, 'invalid_grant');
  const otherKey = await t.throwsAsync<oidc.ResponseBodyError>(
    oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: stranger }),
  );
  t.is(otherKey?.error, 'invalid_grant');
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: dpop });
  t.is(refreshed.token_type, 'dpop');
  t.is((await oidc.fetchUserInfo(config, refreshed.access_token, 'carol', { DPoP: dpop })).sub, 'carol');
});

test('a client registered with dpop_bound_access_tokens gets no token without a proof', async (t) => {
  const config = await discover(gatehouse.issuer, 'dpop-svc', 'dpop-svc-secret');
  const refused = await t.throwsAsync<oidc.ResponseBodyError>(oidc.clientCredentialsGrant(config));
  t.is(refused?.error, 'invalid_grant');
  const dpop = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  const tokens = await oidc.clientCredentialsGrant(config, undefined, { DPoP: dpop });
  t.is(tokens.token_type, 'dpop');
  t.like(await oidc.tokenIntrospection(config, tokens.access_token), { active: true, token_type: 'DPoP' });
});

/** A DPoP proof for a token request, made by hand (so the test controls the nonce). */
async function proof(issuer: string, keys: CryptoKeyPair, nonce?: string): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: `${issuer}/token`, jti: randomUUID(), ...(nonce ? { nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
    .setIssuedAt()
    .sign(keys.privateKey);
}

async function tokenRequest(issuer: string, dpopProof: string): Promise<Response> {
  return fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('dpop-svc:dpop-svc-secret').toString('base64')}`,
      dpop: dpopProof,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
}

test('DPoP nonces are required, and every instance on one database accepts the nonces of the others', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const first = await startTestServer({ databaseUrl: database.url, config: { clients: CLIENTS } });
  t.teardown(() => first.close());
  const second = await startTestServer({
    databaseUrl: database.url,
    config: { clients: CLIENTS, issuer: first.issuer } as never,
  });
  t.teardown(() => second.close());
  const secondUrl = `http://localhost:${(await second.server.listen()).port}`;
  t.not(secondUrl, first.issuer);
  const keys = (await generateKeyPair('ES256')) as CryptoKeyPair;

  const withoutNonce = await tokenRequest(first.issuer, await proof(first.issuer, keys));
  t.is(withoutNonce.status, 400);
  t.is(((await withoutNonce.json()) as { error: string }).error, 'use_dpop_nonce');
  const nonce = withoutNonce.headers.get('dpop-nonce');
  t.truthy(nonce);

  // The second instance (same issuer, same database) accepts the first one's nonce.
  const elsewhere = await fetch(`${secondUrl}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('dpop-svc:dpop-svc-secret').toString('base64')}`,
      dpop: await proof(secondUrl, keys, nonce!),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  t.is(elsewhere.status, 200, await elsewhere.clone().text());
  t.is(((await elsewhere.json()) as { token_type: string }).token_type, 'DPoP');
});

test('discovery advertises PAR and DPoP when on, PAR as required when required, and neither when off', async (t) => {
  const on = (await (await fetch(`${gatehouse.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    unknown
  >;
  t.is(on.pushed_authorization_request_endpoint, `${gatehouse.issuer}/request`);
  t.is(on.require_pushed_authorization_requests, undefined);
  t.deepEqual(on.dpop_signing_alg_values_supported, ['ES256', 'Ed25519', 'EdDSA']);

  const required = await startTestServer({
    config: { pushedAuthorizationRequests: { required: true }, clients: [CLIENTS[1]] },
  });
  t.teardown(() => required.close());
  const strict = (await (await fetch(`${required.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    unknown
  >;
  t.true(strict.require_pushed_authorization_requests);
  const page = await new Browser().navigate(
    oidc.buildAuthorizationUrl(await discover(required.issuer, 'web', 'web-secret'), {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
    }),
    {},
    required.issuer,
  );
  t.is(new URL(page.url).searchParams.get('error'), 'invalid_request', 'every client must push its requests');

  const off = await startTestServer({
    config: { pushedAuthorizationRequests: { enabled: false }, dpop: { enabled: false } },
  });
  t.teardown(() => off.close());
  const metadata = (await (await fetch(`${off.issuer}/.well-known/openid-configuration`)).json()) as Record<
    string,
    unknown
  >;
  t.is(metadata.pushed_authorization_request_endpoint, undefined);
  t.is(metadata.dpop_signing_alg_values_supported, undefined);
  t.is((await fetch(`${off.issuer}/request`, { method: 'POST' })).status, 404);
});
