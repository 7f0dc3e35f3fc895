/**
 * Configuring APIs, the device flow, PAR and DPoP: defaults, every bad value named by its path (file, GATEHOUSE_APIS),
 * clients that ask for a feature the configuration turns off, the CLI's --require-par / --dpop-bound, and the demo
 * configuration turning every feature on.
 */
import { rmSync } from 'node:fs';
import test from 'ava';
import { defaults } from '../config/defaults.js';
import { loadConfig, validateConfig } from '../config/load.js';
import { clients } from '../server/cli/clients.js';
import { UsageError } from '../server/cli/errors.js';
import { SequelizeDirectory } from '../stores/sequelize/directory.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { systemClock } from '../stores/clock.js';
import { createTestDatabase } from './helpers/databases.js';
import { problemsOf, tempFiles } from './helpers/config-files.js';

const { dir, file } = tempFiles('gatehouse-apis-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const ORDERS = {
  identifier: 'https://api.example.com/orders',
  scopes: [{ name: 'orders:read', description: 'See your orders' }],
};
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

test('defaults: no APIs, device flow off, PAR and DPoP (with nonces) on, PAR not required', (t) => {
  const config = validateConfig({});
  t.deepEqual(config.apis, []);
  t.false(config.deviceFlow.enabled);
  t.is(config.deviceFlow.userCodeMask, defaults.deviceFlow.userCodeMask);
  t.deepEqual(config.pushedAuthorizationRequests, { enabled: true, required: false });
  t.deepEqual(config.dpop, { enabled: true, requireNonce: true });
  t.is(config.ttl.deviceCode, defaults.ttl.deviceCode);
});

test('an API gets its defaults: JWT tokens signed with RS256, any client, the configured lifetimes', (t) => {
  const [api] = validateConfig({ apis: [ORDERS] }).apis;
  t.like(api, { identifier: ORDERS.identifier, tokenFormat: 'jwt', signingAlg: 'RS256' });
  t.is(api.accessTokenTtl, undefined);
  t.is(api.allowedClients, undefined);
});

test('bad API entries are named by path', (t) => {
  const problems = problemsOf(() =>
    validateConfig({
      apis: [
        { identifier: 'not a uri', scopes: [{ name: 'a b' }] },
        { identifier: 'https://api.example.com/x#frag', scopes: [], tokenFormat: 'paseto', color: 'blue' },
      ],
    }),
  );
  t.deepEqual(problems.sort(), [
    'apis[0].identifier: expected an absolute URI without a fragment (e.g. https://api.example.com/orders)',
    'apis[0].scopes[0].name: expected a scope: 1 to 128 printable ASCII characters without spaces, quotes or backslashes',
    'apis[1].color: unknown key',
    'apis[1].identifier: expected an absolute URI without a fragment (e.g. https://api.example.com/orders)',
    'apis[1].scopes: Too small: expected array to have >=1 items',
    'apis[1].tokenFormat: Invalid option: expected one of "jwt"|"opaque"',
  ]);
});

test('identifiers are unique as URLs; scope names say which API a request is for, so they are unique and not Gatehouse’s', (t) => {
  const problems = problemsOf(() =>
    validateConfig({
      clients: [{ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost/cb'] }],
      apis: [
        ORDERS,
        { identifier: 'https://ledger.example.com/', scopes: [{ name: 'other' }] },
        {
          identifier: 'https://ledger.example.com',
          scopes: [{ name: 'orders:read' }, { name: 'openid' }, { name: 'x' }, { name: 'x' }],
          introspectionClientId: 'spa',
        },
      ],
    }),
  );
  t.deepEqual(problems, [
    'apis[2].identifier: "https://ledger.example.com" is already used by apis[1]',
    'apis[2].scopes[0].name: "orders:read" is already a scope of apis[0]',
    'apis[2].scopes[1].name: "openid" is one of Gatehouse\'s own scopes',
    'apis[2].scopes[3].name: "x" is listed twice',
    'apis[2].introspectionClientId: "spa" is a public client; an API introspects as a confidential one',
  ]);
});

test('a client asking for a feature the configuration turns off is refused by path', (t) => {
  const problems = problemsOf(() =>
    validateConfig({
      pushedAuthorizationRequests: { enabled: false },
      dpop: { enabled: false },
      clients: [
        { client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT] },
        {
          client_id: 'web',
          client_secret: 's',
          redirect_uris: ['http://localhost/cb'],
          require_pushed_authorization_requests: true,
          dpop_bound_access_tokens: true,
        },
      ],
    }),
  );
  t.deepEqual(problems, [
    `clients[0].grant_types: ${DEVICE_GRANT} needs deviceFlow.enabled: true`,
    'clients[1].require_pushed_authorization_requests: needs pushedAuthorizationRequests.enabled: true',
    'clients[1].dpop_bound_access_tokens: needs dpop.enabled: true',
  ]);
  // With the features on (the device flow turned on), the same clients are fine.
  const config = validateConfig({
    deviceFlow: { enabled: true },
    clients: [
      { client_id: 'tv', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT] },
      {
        client_id: 'web',
        client_secret: 's',
        redirect_uris: ['http://localhost/cb'],
        require_pushed_authorization_requests: true,
        dpop_bound_access_tokens: true,
      },
    ],
  });
  t.like(config.clients[1], { require_pushed_authorization_requests: true, dpop_bound_access_tokens: true });
});

const APIS_YAML = `- identifier: https://api.example.com/orders
  tokenFormat: opaque
  scopes:
    - name: orders:read
      description: See your orders
`;

for (const [form, value] of [
  ['inline JSON', () => JSON.stringify([{ ...ORDERS, tokenFormat: 'opaque' }])],
  ['inline YAML', () => APIS_YAML],
  ['a YAML file path', () => file('apis.yaml', APIS_YAML)],
] as const) {
  test(`GATEHOUSE_APIS as ${form}`, (t) => {
    const config = loadConfig({ env: { GATEHOUSE_APIS: value() } });
    t.like(config.apis[0], {
      identifier: ORDERS.identifier,
      tokenFormat: 'opaque',
      scopes: [{ name: 'orders:read', description: 'See your orders' }],
    });
  });
}

test('GATEHOUSE_APIS replaces file entries with the same identifier, keeps the others, and names its own problems', (t) => {
  const base = file(
    'base.yaml',
    `apis:\n  - { identifier: "https://api.example.com/orders", scopes: [{ name: "orders:read" }] }\n  - { identifier: "urn:reports", scopes: [{ name: "reports:read" }] }\n`,
  );
  const config = loadConfig({
    file: base,
    env: { GATEHOUSE_APIS: JSON.stringify([{ ...ORDERS, tokenFormat: 'opaque' }]) },
  });
  t.deepEqual(
    config.apis.map((api) => [api.identifier, api.tokenFormat]),
    [
      ['urn:reports', 'jwt'],
      [ORDERS.identifier, 'opaque'],
    ],
  );

  const problems = problemsOf(() =>
    loadConfig({
      file: base,
      env: {
        GATEHOUSE_APIS: JSON.stringify([
          { identifier: 'urn:other', scopes: [{ name: 'reports:read' }] },
          { identifier: 'x' },
        ]),
      },
    }),
  );
  t.deepEqual(problems, [
    'GATEHOUSE_APIS[1].identifier: expected an absolute URI without a fragment (e.g. https://api.example.com/orders)',
    'GATEHOUSE_APIS[1].scopes: Invalid input: expected array, received undefined',
  ]);
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_APIS: '{"identifier": "urn:x"}' } })),
    ['GATEHOUSE_APIS: expected a list (an array) of apis, got object'],
  );
});

test('the demo configuration turns every feature on and gives each a client', (t) => {
  const config = loadConfig({ file: 'config/demo.yaml', env: {} });
  t.true(config.deviceFlow.enabled);
  t.true(config.pushedAuthorizationRequests.enabled);
  t.true(config.dpop.enabled);
  t.true(config.apis.length >= 2);
  t.deepEqual(new Set(config.apis.map((api) => api.tokenFormat)), new Set(['jwt', 'opaque']));
  t.true(config.clients.some((client) => client.grant_types.includes(DEVICE_GRANT)));
  t.true(
    config.apis.some(
      (api) =>
        api.introspectionClientId && config.clients.some((client) => client.client_id === api.introspectionClientId),
    ),
  );
});

test('gatehouse clients add: --require-par and --dpop-bound, refused when the configuration turns the feature off', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const log = console.log;
  console.log = () => undefined;
  t.teardown(() => {
    console.log = log;
  });
  await clients.run([
    'clients',
    'add',
    '--db',
    database.url,
    '--client-id',
    'strict',
    '--secret',
    's3cret',
    '--redirect-uri',
    'http://localhost/cb',
    '--require-par',
    '--dpop-bound',
  ]);
  const sequelize = await openDatabase({ url: database.url, sqliteBusyTimeoutMs: 5000, poolMax: 1 });
  t.teardown(() => sequelize.close());
  const stored = await new SequelizeDirectory(sequelize, systemClock).getClient('strict');
  t.like(stored?.metadata, { require_pushed_authorization_requests: true, dpop_bound_access_tokens: true });

  const off = file('no-par.yaml', 'pushedAuthorizationRequests:\n  enabled: false\n');
  const error = await t.throwsAsync(
    clients.run([
      'clients',
      'add',
      '--config',
      off,
      '--db',
      database.url,
      '--client-id',
      'strict2',
      '--secret',
      's3cret',
      '--redirect-uri',
      'http://localhost/cb',
      '--require-par',
    ]),
    { instanceOf: UsageError }, // exit code 2: the arguments contradict the configuration
  );
  t.regex(error!.message, /--require-par: needs pushedAuthorizationRequests\.enabled: true/);
  t.is(await new SequelizeDirectory(sequelize, systemClock).getClient('strict2'), null);
});
