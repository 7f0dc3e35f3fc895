/**
 * `private_key_jwt` clients (RFC 7523 client assertions) over real HTTP, with openid-client as the client: keys given
 * inline (`jwks`) or fetched from the client's own `jwks_uri`; an assertion signed with another key is refused; an
 * assertion replayed (same `jti`) is refused; configuration that cannot work (no keys, a private key) is refused by
 * name, without echoing the key.
 */
import { createServer, type Server } from 'node:http';
import test from 'ava';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { validateConfig } from '../config/load.js';
import { clients } from '../server/cli/clients.js';
import { UsageError } from '../server/cli/errors.js';
import { problemsOf } from './helpers/config-files.js';
import { createTestDatabase } from './helpers/databases.js';
import { startTestServer, type TestServer } from './helpers/server.js';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A signing key pair and its public JWK (with a kid). */
async function clientKey(kid: string, alg: 'ES256' | 'RS256' = 'ES256') {
  const pair = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  return { pair, kid, alg, jwk: { ...jwk, kty: jwk.kty as 'RSA' | 'EC', kid, alg, use: 'sig' } };
}

/** A relying party's own JWKS endpoint: real HTTP on loopback, counting fetches. */
async function serveJwks(jwks: { keys: object[] }): Promise<{ url: string; fetches: () => number; server: Server }> {
  let fetches = 0;
  const server = createServer((request, response) => {
    fetches++;
    if (request.url !== '/jwks') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/jwks`, fetches: () => fetches, server };
}

/** openid-client configured for a private_key_jwt client signing with `key`. */
function signingClient(issuer: string, clientId: string, key: { pair: KeyPair; kid: string }) {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    undefined,
    oidc.PrivateKeyJwt({ key: key.pair.privateKey, kid: key.kid }),
    {
      execute: [oidc.allowInsecureRequests],
    },
  );
}

let gatehouse: TestServer;
let inline: Awaited<ReturnType<typeof clientKey>>;
let rotated: Awaited<ReturnType<typeof clientKey>>;
let published: Awaited<ReturnType<typeof clientKey>>;
let stranger: Awaited<ReturnType<typeof clientKey>>;
let relyingParty: Awaited<ReturnType<typeof serveJwks>>;

test.before(async () => {
  [inline, rotated, published, stranger] = await Promise.all([
    clientKey('inline-1'),
    clientKey('inline-2', 'RS256'),
    clientKey('published-1'),
    clientKey('stranger-1'),
  ]);
  relyingParty = await serveJwks({ keys: [published.jwk] });
  gatehouse = await startTestServer({
    config: {
      clients: [
        {
          client_id: 'signed-svc',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [inline.jwk, rotated.jwk] },
          grant_types: ['client_credentials'],
        },
        {
          client_id: 'published-svc',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks_uri: relyingParty.url,
          grant_types: ['client_credentials'],
        },
      ],
      apis: [{ identifier: 'https://api.example.com/orders', scopes: [{ name: 'orders:read' }] }],
    },
  });
});

test.after.always(async () => {
  await gatehouse?.close();
  relyingParty?.server.close();
});

test('keys given inline: client credentials with a signed client assertion, with either of its keys', async (t) => {
  for (const key of [inline, rotated]) {
    const client = await signingClient(gatehouse.issuer, 'signed-svc', key);
    const tokens = await oidc.clientCredentialsGrant(client, { scope: 'orders:read' });
    t.truthy(tokens.access_token, `signed with ${key.kid} (${key.alg})`);
    t.is(tokens.scope, 'orders:read');
  }
});

test('keys at the client’s jwks_uri: fetched over HTTP and used', async (t) => {
  const client = await signingClient(gatehouse.issuer, 'published-svc', published);
  const tokens = await oidc.clientCredentialsGrant(client, { scope: 'orders:read' });
  t.truthy(tokens.access_token);
  t.true(relyingParty.fetches() >= 1, 'the JWKS was fetched from the client');
});

test('an assertion signed with a key the client did not register is refused as invalid_client', async (t) => {
  for (const clientId of ['signed-svc', 'published-svc']) {
    const client = await signingClient(gatehouse.issuer, clientId, { pair: stranger.pair, kid: inline.kid });
    const error = await t.throwsAsync(oidc.clientCredentialsGrant(client, { scope: 'orders:read' }));
    t.is((error as oidc.ResponseBodyError).error, 'invalid_client', clientId);
  }
});

test('a client assertion is good once: the same jti again is refused', async (t) => {
  const tokenEndpoint = new URL('/token', gatehouse.issuer).href;
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: inline.kid })
    .setIssuer('signed-svc')
    .setSubject('signed-svc')
    .setAudience(gatehouse.issuer)
    .setJti(`jti-${Date.now()}`)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(inline.pair.privateKey);
  const send = () =>
    fetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'orders:read',
        client_id: 'signed-svc',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
  const first = await send();
  t.is(first.status, 200, await first.clone().text());
  const again = await send();
  t.is(again.status, 401);
  t.like(await again.json(), { error: 'invalid_client' });
});

test('configuration: a private_key_jwt client without keys, with both forms, or with a private key is refused by name', async (t) => {
  const base = { client_id: 'svc', token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'] };
  t.deepEqual(
    problemsOf(() => validateConfig({ clients: [base] })),
    ['clients[0].jwks: a private_key_jwt client needs its public keys, as jwks or jwks_uri'],
  );
  t.deepEqual(
    problemsOf(() =>
      validateConfig({ clients: [{ ...base, jwks: { keys: [inline.jwk] }, jwks_uri: 'https://rp.example.com/jwks' }] }),
    ),
    ['clients[0].jwks_uri: give jwks or jwks_uri, not both'],
  );

  const secret = await exportJWK(inline.pair.privateKey);
  const problems = problemsOf(() => validateConfig({ clients: [{ ...base, jwks: { keys: [secret] } }] }));
  t.deepEqual(problems, ["clients[0].jwks.keys[0]: a private key (it has d): give the client's public key only"]);
  t.false(problems.join('\n').includes(String(secret.d)), 'the private member is not echoed');

  t.deepEqual(
    problemsOf(() => validateConfig({ clients: [{ ...base, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }] })),
    ['clients[0].jwks.keys[0].kty: Invalid option: expected one of "RSA"|"EC"|"OKP"'],
    'a symmetric key is not a public key',
  );

  // Keys the provider would refuse (or drop) at the first token request are refused at load.
  const keyProblem = (key: object) =>
    problemsOf(() => validateConfig({ clients: [{ ...base, jwks: { keys: [key] } }] }));
  t.deepEqual(keyProblem({ kty: 'EC', x: 'abc' }), [
    'clients[0].jwks.keys[0]: an EC key needs crv, y (non-empty strings)',
  ]);
  t.deepEqual(keyProblem({ ...inline.jwk, crv: 'secp256k1' }), [
    'clients[0].jwks.keys[0]: crv: expected one of P-256, P-384, P-521 for EC keys (the provider ignores others)',
  ]);
  t.deepEqual(keyProblem({ ...inline.jwk, x: 'AAAA' }), [
    'clients[0].jwks.keys[0]: its members do not form an EC public key',
  ]);
  t.deepEqual(keyProblem({ ...rotated.jwk, kid: 7 }), [
    'clients[0].jwks.keys[0].kid: Invalid input: expected string, received number',
  ]);
});

test('gatehouse clients add --auth-method private_key_jwt: refused without keys, and with --jwks-uri a running server takes it', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const log = console.log;
  console.log = () => undefined;
  t.teardown(() => {
    console.log = log;
  });
  const add = (...extra: string[]) =>
    clients.run([
      'clients',
      'add',
      '--db',
      database.url,
      '--client-id',
      'cli-signed',
      '--grant-type',
      'client_credentials',
      '--auth-method',
      'private_key_jwt',
      ...extra,
    ]);
  const error = await t.throwsAsync(add(), { instanceOf: UsageError });
  t.regex(error!.message, /--jwks-uri: a private_key_jwt client needs its public keys, as jwks or jwks_uri/);
  await add('--jwks-uri', relyingParty.url);

  const server = await startTestServer({ databaseUrl: database.url });
  t.teardown(() => server.close());
  const client = await signingClient(server.issuer, 'cli-signed', published);
  t.truthy((await oidc.clientCredentialsGrant(client)).access_token);
});
