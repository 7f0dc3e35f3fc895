/**
 * The example APIs (examples/apis) against a Gatehouse from `gatehouse-idp/testing`, with openid-client as their callers:
 * the JWT API verifies tokens itself with jose and the JWKS; the introspecting API asks Gatehouse, so a revoked
 * session's reference token is refused on the next request. Both check DPoP proofs of bound tokens.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { createIntrospectingApi } from '../examples/apis/introspecting-api.js';
import { createJwtApi } from '../examples/apis/jwt-api.js';
import { startGatehouse, type TestGatehouse } from '../testing/index.js';
import type { JsonBody } from './helpers/json-body.js';

const ORDERS = 'https://orders.example.test/';
const LEDGER = 'https://ledger.example.test/';
const REPORTS = 'https://reports.example.test/';

let gatehouse: TestGatehouse;
const servers: Server[] = [];
let ordersUrl: string;
let ledgerUrl: string;

/** Listens on a loopback port first (an API's DPoP proofs name its URL), then serves the API made for that URL. */
async function serve(
  make: (url: string) => { handle(req: IncomingMessage, res: ServerResponse): Promise<void> },
): Promise<string> {
  const server = createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api = make(url);
  server.on('request', (req, res) => {
    api.handle(req, res).catch(() => res.writeHead(502).end());
  });
  return url;
}

test.before(async () => {
  gatehouse = await startGatehouse({
    users: [{ subject: 'alice', password: 'alice-pw' }],
    clients: [
      { client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'] },
      {
        client_id: 'svc-dpop',
        client_secret: 'svc-dpop-secret',
        grant_types: ['client_credentials'],
        dpop_bound_access_tokens: true,
      },
      {
        client_id: 'app',
        client_secret: 'app-secret',
        redirect_uris: ['http://127.0.0.1:9/cb'],
        grant_types: ['authorization_code'],
      },
      { client_id: 'ledger-api', client_secret: 'ledger-api-secret', grant_types: [] },
    ],
    apis: [
      { identifier: ORDERS, scopes: [{ name: 'orders:read' }, { name: 'orders:write' }] },
      {
        identifier: LEDGER,
        scopes: [{ name: 'ledger:read' }],
        tokenFormat: 'opaque',
        introspectionClientId: 'ledger-api',
      },
      { identifier: REPORTS, scopes: [{ name: 'reports:read' }] },
    ],
  });
  ordersUrl = await serve((publicUrl) => createJwtApi({ issuer: gatehouse.issuer, audience: ORDERS, publicUrl }));
  ledgerUrl = await serve((publicUrl) =>
    createIntrospectingApi({
      issuer: gatehouse.issuer,
      audience: LEDGER,
      clientId: 'ledger-api',
      clientSecret: 'ledger-api-secret',
      publicUrl,
    }),
  );
});

test.after.always(async () => {
  for (const server of servers) server.close();
  await gatehouse?.stop();
});

async function client(clientId: string, secret: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(gatehouse.issuer), clientId, secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

async function call(
  url: string,
  token?: string,
  scheme = 'Bearer',
): Promise<{ status: number; challenge: string | null; body: JsonBody }> {
  const response = await fetch(url, { headers: token ? { authorization: `${scheme} ${token}` } : {} });
  return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.json() };
}

test('the JWT API accepts its own tokens, verified locally, and refuses every other', async (t) => {
  const svc = await client('svc', 'svc-secret');
  const ok = await call(
    `${ordersUrl}/orders`,
    (await oidc.clientCredentialsGrant(svc, { scope: 'orders:read' })).access_token,
  );
  t.is(ok.status, 200);
  t.like(ok.body, { subject: 'svc', client: 'svc' });

  const none = await call(`${ordersUrl}/orders`);
  t.is(none.status, 401);
  t.is(none.challenge, 'Bearer realm="orders"');

  const forReports = await call(
    `${ordersUrl}/orders`,
    (await oidc.clientCredentialsGrant(svc, { scope: 'reports:read' })).access_token,
  );
  t.is(forReports.status, 401);
  t.regex(forReports.challenge ?? '', /error="invalid_token"/);
  t.regex(forReports.body.error_description, /aud/);

  const writeOnly = await call(
    `${ordersUrl}/orders`,
    (await oidc.clientCredentialsGrant(svc, { scope: 'orders:write' })).access_token,
  );
  t.is(writeOnly.status, 403);
  t.regex(writeOnly.challenge ?? '', /error="insufficient_scope", .*scope="orders:read"/);

  const token = (await oidc.clientCredentialsGrant(svc, { scope: 'orders:read' })).access_token;
  const [header, payload, signature] = token.split('.');
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'someone-else' }),
  ).toString('base64url');
  t.is(
    (await call(`${ordersUrl}/orders`, `${header}.${forged}.${signature}`)).status,
    401,
    'a changed payload fails the signature',
  );
  t.is(
    (await call(`${ordersUrl}/orders`, (await oidc.clientCredentialsGrant(svc)).access_token)).status,
    401,
    'an opaque token for Gatehouse itself',
  );
});

test('the JWT API sees the signed-in user of a login for its scope', async (t) => {
  const { tokens } = await gatehouse.login({ subject: 'alice', clientId: 'app', scope: 'openid orders:read' });
  const answer = await call(`${ordersUrl}/orders`, tokens.access_token);
  t.is(answer.status, 200);
  t.like(answer.body, { subject: 'alice', client: 'app' });
});

test('the introspecting API accepts a reference token until the session behind it is revoked', async (t) => {
  const { tokens, sessionId } = await gatehouse.login({
    subject: 'alice',
    clientId: 'app',
    scope: 'openid ledger:read',
  });
  const before = await call(`${ledgerUrl}/ledger`, tokens.access_token);
  t.is(before.status, 200);
  t.like(before.body, { subject: 'alice', client: 'app' });

  await gatehouse.sessions.removeSessions({ sessionId, actor: 'test' });
  const after = await call(`${ledgerUrl}/ledger`, tokens.access_token);
  t.is(after.status, 401);
  t.regex(after.challenge ?? '', /error="invalid_token"/);

  const svc = await client('svc', 'svc-secret');
  t.is(
    (await call(`${ledgerUrl}/ledger`, (await oidc.clientCredentialsGrant(svc, { scope: 'ledger:read' })).access_token))
      .status,
    200,
  );
  t.is(
    (await call(`${ledgerUrl}/ledger`, (await oidc.clientCredentialsGrant(svc, { scope: 'orders:read' })).access_token))
      .status,
    401,
    'a JWT for another API',
  );
  t.is(
    (await call(`${ledgerUrl}/ledger`, (await oidc.clientCredentialsGrant(svc)).access_token)).status,
    401,
    'a token of another audience',
  );
});

test('both APIs take DPoP-bound tokens only with a proof of the bound key', async (t) => {
  const config = await client('svc-dpop', 'svc-dpop-secret');
  const dpop = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  const stranger = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  for (const [url, scope] of [
    [`${ordersUrl}/orders`, 'orders:read'],
    [`${ledgerUrl}/ledger`, 'ledger:read'],
  ] as const) {
    const tokens = await oidc.clientCredentialsGrant(config, { scope }, { DPoP: dpop });
    t.is(tokens.token_type, 'dpop');
    const ok = await oidc.fetchProtectedResource(
      config,
      tokens.access_token,
      new URL(url),
      'GET',
      undefined,
      undefined,
      { DPoP: dpop },
    );
    t.is(ok.status, 200, url);
    const asBearer = await call(url, tokens.access_token);
    t.is(asBearer.status, 401);
    t.regex(asBearer.challenge ?? '', /^DPoP .*error="invalid_token"/);
    const wrongKey = await t.throwsAsync<oidc.WWWAuthenticateChallengeError>(
      oidc.fetchProtectedResource(config, tokens.access_token, new URL(url), 'GET', undefined, undefined, {
        DPoP: stranger,
      }),
    );
    t.is(wrongKey?.response?.status, 401, `${url}: another key's proof`);
    t.is(wrongKey?.cause?.[0]?.parameters.error, 'invalid_dpop_proof');
  }
});

test('a DPoP proof is good for one request: the same proof again is refused', async (t) => {
  const config = await client('svc-dpop', 'svc-dpop-secret');
  const keys = await oidc.randomDPoPKeyPair('ES256');
  const { access_token: token } = await oidc.clientCredentialsGrant(
    config,
    { scope: 'orders:read' },
    { DPoP: oidc.getDPoPHandle(config, keys) },
  );
  const proof = await new SignJWT({
    htm: 'GET',
    htu: `${ordersUrl}/orders`,
    jti: randomUUID(),
    ath: createHash('sha256').update(token).digest('base64url'),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
    .setIssuedAt()
    .sign(keys.privateKey);
  const send = () => fetch(`${ordersUrl}/orders`, { headers: { authorization: `DPoP ${token}`, dpop: proof } });
  t.is((await send()).status, 200);
  const replayed = await send();
  t.is(replayed.status, 401);
  t.regex(((await replayed.json()) as { error_description: string }).error_description, /already used/);
});
