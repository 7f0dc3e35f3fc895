/**
 * The admin API's clients: PUT /admin/api/v1/clients/{clientId} creates or replaces a client (the fields of clients[]
 * in a config file), GET reads one or all without secrets, DELETE removes one; the running server uses a change at
 * once (openid-client authenticates with the new client, a disabled or deleted one is refused, its tokens stop
 * working); bad bodies are named by field and never echo a secret.
 */
import test, { type ExecutionContext } from 'ava';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import type { JsonBody } from './helpers/json-body.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import type { Logger } from 'pino';
import type { TestDialect } from './helpers/databases.js';
import { captureLogs, LEVEL } from './helpers/log-capture.js';
import { startTestServer } from './helpers/server.js';
import { Browser } from './helpers/browser.js';

const PREFIX = '/admin/api/v1/clients';
const ADMIN_CLIENT = {
  client_id: 'gatehouse-admin',
  client_secret: 'admin-secret',
  grant_types: ['client_credentials' as const],
  scope: 'gatehouse:admin',
};

async function setup(t: ExecutionContext, config: Record<string, unknown> = {}) {
  const { dialect, logger, ...rest } = config as { dialect?: TestDialect; logger?: Logger };
  const gatehouse = await startTestServer({
    dialect,
    logger,
    config: {
      clients: [
        ADMIN_CLIENT,
        { client_id: 'from-config', client_secret: 'config-secret', grant_types: ['client_credentials'] },
      ],
      ...rest,
    },
  });
  t.teardown(() => gatehouse.close());
  const admin = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  const api = async (method: string, path: string, body?: unknown, token: string | undefined = admin) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${gatehouse.issuer}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: JSON.parse(text) as JsonBody };
  };
  return { gatehouse, admin, api };
}

test('a client created through the API authenticates at once; GET shows it without its secret', async (t) => {
  const { gatehouse, api } = await setup(t);
  const created = await api('PUT', `${PREFIX}/reports-job`, {
    client_secret: 'reports-job-secret',
    client_name: 'Nightly reports',
    grant_types: ['client_credentials'],
  });
  t.is(created.status, 201, created.text);
  t.is(created.headers.get('location'), `${PREFIX}/reports-job`);
  t.like(created.body, {
    client_id: 'reports-job',
    client_name: 'Nightly reports',
    grant_types: ['client_credentials'],
    hasSecret: true,
    disabled: false,
    source: 'api',
  });
  t.false(created.text.includes('reports-job-secret'), 'the secret is never shown');

  const tokens = await oidc.clientCredentialsGrant(
    await discover(gatehouse.issuer, 'reports-job', 'reports-job-secret'),
  );
  t.truthy(tokens.access_token, 'the running server knows the client without a restart');

  const one = await api('GET', `${PREFIX}/reports-job`);
  t.is(one.status, 200);
  t.false(one.text.includes('reports-job-secret'));
  const list = await api('GET', PREFIX);
  t.deepEqual(list.body.clients.map((client: { client_id: string }) => client.client_id).sort(), [
    'from-config',
    'gatehouse-admin',
    'reports-job',
  ]);
  t.false(list.text.includes('secret"'), 'no client_secret field in the list');
  t.false(list.text.includes('admin-secret'));
});

test('PUT changes the fields given, keeps the others and the secret, null clears one; a GET answer can be sent back', async (t) => {
  const { gatehouse, api } = await setup(t);
  await api('PUT', `${PREFIX}/web`, {
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    scope: 'openid profile',
    skipConsent: true,
  });
  const read = await api('GET', `${PREFIX}/web`);
  const changed = await api('PUT', `${PREFIX}/web`, { ...read.body, client_name: 'The web app' });
  t.is(changed.status, 200, changed.text);
  t.like(changed.body, { client_name: 'The web app', hasSecret: true, redirect_uris: [REDIRECT_URI] });
  // The secret kept: a real sign-in with the client's secret works after the change.
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const { claims } = await signIn(new Browser(), web, {
    username: 'alice',
    password: 'alice-password',
    scope: 'openid profile',
  });
  t.is(claims.sub, 'alice');

  const partial = await api('PUT', `${PREFIX}/web`, { client_name: null, client_secret: 'new-web-secret' });
  t.is(partial.status, 200, partial.text);
  t.is(partial.body.client_name, undefined, 'null cleared the name');
  t.like(partial.body, { scope: 'openid profile', skipConsent: true, redirect_uris: [REDIRECT_URI] }, 'the rest kept');
  const old = await discover(gatehouse.issuer, 'web', 'web-secret');
  const error = await t.throwsAsync(oidc.refreshTokenGrant(old, 'x'));
  t.is((error as oidc.ResponseBodyError).error, 'invalid_client', 'the old secret no longer authenticates');

  const pkjwt = await api('PUT', `${PREFIX}/web`, {
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: 'https://web.example.com/jwks',
  });
  t.like(pkjwt.body, { hasSecret: false }, 'switching to private_key_jwt drops the secret');
});

test('disabling or deleting a client: it can no longer authenticate and its tokens stop working', async (t) => {
  const { gatehouse, api } = await setup(t, {
    apis: [
      {
        identifier: 'urn:example:jobs',
        tokenFormat: 'opaque',
        scopes: [{ name: 'jobs:run' }],
        introspectionClientId: 'jobs-api',
      },
    ],
  });
  await api('PUT', `${PREFIX}/jobs-api`, { client_secret: 'jobs-api-secret', grant_types: [] });
  await api('PUT', `${PREFIX}/job`, { client_secret: 'job-secret', grant_types: ['client_credentials'] });
  const job = await discover(gatehouse.issuer, 'job', 'job-secret');
  const before = await oidc.clientCredentialsGrant(job, { scope: 'jobs:run', resource: 'urn:example:jobs' });
  const jobsApi = await discover(gatehouse.issuer, 'jobs-api', 'jobs-api-secret');
  const introspect = async () => (await oidc.tokenIntrospection(jobsApi, before.access_token)).active;
  t.true(await introspect(), 'the API sees the job’s token');

  const disabled = await api('PUT', `${PREFIX}/job`, { disabled: true });
  t.like(disabled.body, { disabled: true });
  const refused = await t.throwsAsync(oidc.clientCredentialsGrant(job));
  t.is((refused as oidc.ResponseBodyError).error, 'invalid_client');
  t.false(await introspect(), 'a disabled client’s token is not active at the API');

  const enabled = await api('PUT', `${PREFIX}/job`, { disabled: false });
  t.like(enabled.body, { disabled: false, hasSecret: true });
  t.truthy((await oidc.clientCredentialsGrant(job)).access_token, 'enabled again, with the secret it kept');
  t.true(await introspect(), 'disabling suspends: the token lives again with its client');

  const removed = await api('DELETE', `${PREFIX}/job`);
  t.like(removed.body, { clientId: 'job', removed: true });
  t.true(removed.body.revoked >= 2, `its tokens were revoked (${removed.body.revoked})`);
  t.is((await api('GET', `${PREFIX}/job`)).status, 404);
  t.is((await api('DELETE', `${PREFIX}/job`)).status, 404);
  const gone = await t.throwsAsync(oidc.clientCredentialsGrant(job));
  t.is((gone as oidc.ResponseBodyError).error, 'invalid_client');
  t.false(await introspect(), 'a token of the deleted client is no longer active');
  await api('PUT', `${PREFIX}/job`, { client_secret: 'job-secret', grant_types: ['client_credentials'] });
  t.false(await introspect(), 'deleting revoked it: a client created again with the id does not bring it back');
});

test('bad bodies are refused by field, without echoing a secret, and nothing is written', async (t) => {
  const { api } = await setup(t, { dpop: { enabled: false } });
  const bad = await api('PUT', `${PREFIX}/broken`, {
    client_secret: 'do-not-echo-me',
    redirect_uris: ['not a url'],
    grant_types: ['password'],
    colour: 'blue',
  });
  t.is(bad.status, 400);
  t.is(bad.body.error, 'invalid_request');
  t.deepEqual(Object.keys(bad.body.details).sort(), ['colour', 'grant_types[0]', 'redirect_uris[0]']);
  t.false(bad.text.includes('do-not-echo-me'));
  t.is((await api('GET', `${PREFIX}/broken`)).status, 404, 'nothing was written');

  const rules = await api('PUT', `${PREFIX}/broken`, { grant_types: ['authorization_code'] });
  t.deepEqual(Object.keys(rules.body.details).sort(), ['client_secret', 'redirect_uris']);
  const mismatch = await api('PUT', `${PREFIX}/broken`, { client_id: 'other', client_secret: 's' });
  t.regex(mismatch.body.details.client_id, /must be the client id in the path/);
  const long = await api('PUT', `${PREFIX}/broken`, { client_secret: 's', [`x${'y'.repeat(200)}`]: 1 });
  t.deepEqual(Object.keys(long.body.details), [`x${'y'.repeat(60)}...`], 'an unknown field is named in 64 characters');
  const reserved = await api('PUT', `${PREFIX}/gatehouse-console`, { client_secret: 's' });
  t.is(reserved.status, 400);
  t.regex(reserved.text, /reserved/);
  const off = await api('PUT', `${PREFIX}/broken`, {
    client_secret: 's',
    dpop_bound_access_tokens: true,
    grant_types: [],
  });
  t.is(off.status, 400, 'a feature the configuration turns off');
  t.regex(off.body.details.dpop_bound_access_tokens, /dpop\.enabled/);
  t.is((await api('PUT', `${PREFIX}/broken`, '[1]')).status, 400);
  t.is((await api('PUT', `${PREFIX}/broken`, 'not json')).status, 400);
  t.is((await api('GET', `${PREFIX}/broken`)).status, 404);
});

test('only an administrator: no token 401, a token without the admin scope 403', async (t) => {
  const { gatehouse, api } = await setup(t);
  t.is((await api('GET', PREFIX, undefined, '')).status, 401);
  const other = (await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'from-config', 'config-secret')))
    .access_token;
  t.is((await api('PUT', `${PREFIX}/sneaky`, { client_secret: 's', grant_types: [] }, other)).status, 403);
  t.is((await api('GET', `${PREFIX}/sneaky`)).status, 404);
});

test('a private_key_jwt client with its public keys, through the API', async (t) => {
  const { gatehouse, api } = await setup(t);
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  const privateJwk = await exportJWK(pair.privateKey);
  const refused = await api('PUT', `${PREFIX}/signer`, {
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [privateJwk] },
    grant_types: ['client_credentials'],
  });
  t.is(refused.status, 400);
  t.regex(refused.body.details['jwks.keys[0]'], /a private key/);
  t.false(refused.text.includes(String(privateJwk.d)));

  const saved = await api('PUT', `${PREFIX}/signer`, {
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [jwk] },
    grant_types: ['client_credentials'],
  });
  t.is(saved.status, 201, saved.text);
  t.like(saved.body, { hasSecret: false, jwks: { keys: [{ kid: 'k1' }] } });
  const client = await oidc.discovery(
    new URL(gatehouse.issuer),
    'signer',
    undefined,
    oidc.PrivateKeyJwt({ key: pair.privateKey, kid: 'k1' }),
    { execute: [oidc.allowInsecureRequests] },
  );
  t.truthy((await oidc.clientCredentialsGrant(client)).access_token);
});

test('a public client cannot be the one an API introspects as', async (t) => {
  const { api } = await setup(t, {
    apis: [
      {
        identifier: 'urn:example:ledger',
        tokenFormat: 'opaque',
        scopes: [{ name: 'ledger:read' }],
        introspectionClientId: 'ledger-api',
      },
    ],
  });
  const refused = await api('PUT', `${PREFIX}/ledger-api`, {
    token_endpoint_auth_method: 'none',
    grant_types: [],
  });
  t.is(refused.status, 400);
  t.regex(refused.body.details.token_endpoint_auth_method, /the API urn:example:ledger introspects as this client/);
  t.is((await api('PUT', `${PREFIX}/ledger-api`, { client_secret: 'ledger-secret', grant_types: [] })).status, 201);
});

for (const dialect of ['sqlite-memory', 'postgres'] as const) {
  test(`${dialect}: concurrent PUTs of one new client: one creates it, none fails with a server error`, async (t) => {
    const { api } = await setup(t, { dialect });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        api('PUT', `${PREFIX}/racer`, { client_secret: `racer-secret-${index}`, grant_types: ['client_credentials'] }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    t.is(statuses.filter((status) => status === 201).length, 1, statuses.join(' '));
    t.true(
      statuses.every((status) => status === 200 || status === 201 || status === 409),
      statuses.join(' '),
    );
  });
}

test('what the provider would refuse at the client’s first request is refused when it is saved, by field', async (t) => {
  const { api } = await setup(t);
  const cases: [string, Record<string, unknown>, string][] = [
    ['caf%C3%A9', { client_secret: 's', grant_types: ['client_credentials'] }, 'client_id'],
    ['accents', { client_secret: 'sécret-do-not-echo', grant_types: ['client_credentials'] }, 'client_secret'],
    ['fragment', { client_secret: 's', redirect_uris: ['http://localhost:8080/cb#frag'] }, 'redirect_uris[0]'],
    [
      'unknown-scope',
      { client_secret: 's', grant_types: ['client_credentials'], scope: 'openid nonexistent' },
      'scope',
    ],
    ['empty-name', { client_secret: 's', grant_types: ['client_credentials'], client_name: '' }, 'client_name'],
    [
      'native',
      { client_secret: 's', application_type: 'native', redirect_uris: ['http://example.com/cb'] },
      'redirect_uris[0]',
    ],
    [
      'credentials',
      {
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: 'http://user:do-not-echo@127.0.0.1:9/jwks',
        grant_types: [],
      },
      'jwks_uri',
    ],
    [
      'slashes',
      { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http:///user:do-not-echo@127.0.0.1:9/jwks' },
      'jwks_uri',
    ],
    ['spaces', { client_secret: 's', grant_types: ['client_credentials'], scope: 'openid  profile' }, 'scope'],
    [
      'native-logout',
      {
        client_secret: 's',
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1:8080/cb'],
        post_logout_redirect_uris: ['http://example.com/'],
      },
      'post_logout_redirect_uris[0]',
    ],
    // Public clients: nothing keeps anyone else from using their id.
    ['public-cc', { token_endpoint_auth_method: 'none', grant_types: ['client_credentials'] }, 'grant_types'],
    [
      'public-admin',
      {
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1:8080/cb'],
        scope: 'openid gatehouse:admin',
      },
      'scope',
    ],
    // Only the provider's own check knows this one: a code response type needs a redirect URI.
    [
      'provider-only',
      { client_secret: 's', grant_types: ['client_credentials'], response_types: ['code'] },
      'redirect_uris',
    ],
  ];
  for (const [id, body, field] of cases) {
    const answer = await api('PUT', `${PREFIX}/${id}`, body);
    t.is(answer.status, 400, `${id}: ${answer.text}`);
    t.truthy(answer.body.details?.[field], `${id}: ${field} named in ${answer.text}`);
    t.false(answer.text.includes('do-not-echo'), `${id}: nothing secret echoed`);
  }
  const list = await api('GET', PREFIX);
  t.deepEqual(
    list.body.clients.map((client: { client_id: string }) => client.client_id).sort(),
    ['from-config', 'gatehouse-admin'],
    'none of them was written',
  );
});

test('an administrator client cannot lock itself out: disabling, deleting or taking its admin scope is refused', async (t) => {
  const { api } = await setup(t);
  for (const [method, body] of [
    ['PUT', { disabled: true }],
    ['PUT', { scope: 'openid' }],
    ['PUT', { grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1:8080/cb'] }],
    ['PUT', { dpop_bound_access_tokens: true }],
    ['DELETE', undefined],
  ] as const) {
    const answer = await api(method, `${PREFIX}/gatehouse-admin`, body);
    t.is(answer.status, 409, answer.text);
    t.regex(answer.body.message, /lock it out of the admin API/);
  }
  t.like((await api('GET', `${PREFIX}/gatehouse-admin`)).body, { disabled: false, scope: 'gatehouse:admin' });
});

test('bodies that are not a JSON object, or none at all, and control characters in the path get the API’s error shape', async (t) => {
  const { gatehouse, admin, api } = await setup(t);
  for (const raw of ['null', '"x"', '1']) {
    const answer = await api('PUT', `${PREFIX}/shape`, raw);
    t.is(answer.status, 400);
    t.is(answer.body.details.body, 'must be a JSON object', raw);
  }
  const send = (headers: Record<string, string>, body?: string) =>
    fetch(`${gatehouse.issuer}${PREFIX}/shape`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, ...headers },
      body,
    });
  const empty = await send({ 'content-type': 'application/json' });
  t.is(empty.status, 400);
  t.like(await empty.json(), { error: 'invalid_request', details: { body: 'is required' } });
  t.is((await send({ 'content-type': 'text/plain' }, '{}')).status, 415);
  const control = await api('GET', `${PREFIX}/a%00b`);
  t.is(control.status, 400);
  t.like(control.body, { error: 'invalid_request', message: 'control characters are not allowed in the URL' });
  t.truthy(control.body.requestId);
});

test('a failed client authentication says why in the log; a stored client the provider refuses is reported at start', async (t) => {
  const { logger, lines } = captureLogs('info');
  const { gatehouse, api } = await setup(t, { logger, dialect: 'sqlite-file' });
  await api('PUT', `${PREFIX}/job`, { client_secret: 'job-secret', grant_types: ['client_credentials'] });
  await t.throwsAsync(oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'job', 'wrong-secret')));
  const failed = lines.find((line) => line.event === 'client.authentication_failed');
  t.like(failed, { level: LEVEL.info, endpoint: 'token', clientId: 'job', error: 'invalid_client' });
  t.regex(String(failed?.reason), /invalid secret/);
  t.false(JSON.stringify(lines).includes('wrong-secret'), 'the secret sent is not logged');

  // A client stored with metadata the provider refuses (as an older version could have written it) is named at start.
  await gatehouse.server.clients.save({
    clientId: 'legacy',
    metadata: {
      client_id: 'legacy',
      client_secret: 's',
      grant_types: ['client_credentials'],
      response_types: ['code'],
    },
    settings: {},
    disabled: false,
    source: 'cli',
  });
  const restarted = captureLogs('info');
  const again = await startTestServer({
    databaseUrl: gatehouse.databaseUrl,
    logger: restarted.logger,
    config: { clients: [ADMIN_CLIENT] },
  });
  t.teardown(() => again.close());
  t.like(
    restarted.lines.find((line) => line.event === 'client.unusable'),
    { level: LEVEL.warn, clientId: 'legacy', source: 'cli' },
  );
  // Its authentication attempts say why they fail (the client id from HTTP Basic), and it can still be disabled.
  await t.throwsAsync(oidc.clientCredentialsGrant(await discover(again.issuer, 'legacy', 's')));
  const refused = restarted.lines.find((line) => line.event === 'client.authentication_failed');
  t.like(refused, { level: LEVEL.warn, clientId: 'legacy', endpoint: 'token' });
  t.regex(String(refused?.reason), /redirect_uris/);
  const admin = (
    await oidc.clientCredentialsGrant(await discover(again.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  const disable = await fetch(`${again.issuer}${PREFIX}/legacy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'Application/JSON; charset=utf-8' },
    body: JSON.stringify({ disabled: true }),
  });
  t.is(disable.status, 200, 'a client the provider refuses can be disabled (media type matched as HTTP says)');
  t.like(await disable.json(), { client_id: 'legacy', disabled: true });
});
