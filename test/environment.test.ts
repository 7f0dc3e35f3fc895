/**
 * Configuration from the environment: GATEHOUSE_USERS / GATEHOUSE_CLIENTS as inline JSON, inline YAML or a file path,
 * plain passwords hashed at start (and never logged), the testing preset, and bad values named by variable and index.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import type { GatehouseConfigInput } from '../config/schema.js';
import { createServer } from '../server/create-server.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { problemsOf, tempFiles } from './helpers/config-files.js';

const { dir, file } = tempFiles('gatehouse-env-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const WEB = { client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true };

const USERS_JSON = JSON.stringify([{ subject: 'ivy', password: 'ivy-password', claims: { name: 'Ivy Irwin' } }]);
const USERS_YAML = `- subject: ivy
  password: ivy-password
  claims:
    name: Ivy Irwin
`;
const CLIENTS_JSON = JSON.stringify([WEB]);
const CLIENTS_YAML = `- client_id: web
  client_secret: web-secret
  redirect_uris: [${REDIRECT_URI}]
  skipConsent: true
`;

const forms: [string, () => { users: string; clients: string }][] = [
  ['inline JSON', () => ({ users: USERS_JSON, clients: CLIENTS_JSON })],
  ['inline YAML', () => ({ users: USERS_YAML, clients: CLIENTS_YAML })],
  ['a JSON file path', () => ({ users: file('users.json', USERS_JSON), clients: file('clients.json', CLIENTS_JSON) })],
  ['a YAML file path', () => ({ users: file('users.yaml', USERS_YAML), clients: file('clients.yml', CLIENTS_YAML) })],
];

for (const [form, values] of forms) {
  test(`GATEHOUSE_USERS and GATEHOUSE_CLIENTS as ${form}`, (t) => {
    const { users, clients } = values();
    const config = loadConfig({ env: { GATEHOUSE_USERS: users, GATEHOUSE_CLIENTS: clients } });
    t.like(config.accounts[0], { subject: 'ivy', password: 'ivy-password', claims: { name: 'Ivy Irwin' } });
    t.like(config.clients[0], {
      client_id: 'web',
      redirect_uris: [REDIRECT_URI],
      skipConsent: true,
      grant_types: ['authorization_code'],
    });
  });
}

test('environment entries replace file entries with the same subject or client_id and add the others', (t) => {
  const base = file(
    'base.yaml',
    `accounts:\n  - { subject: ivy, username: old-ivy, passwordHash: "$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA" }\n  - { subject: jon, passwordHash: "$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA" }\n` +
      `clients:\n  - { client_id: web, client_secret: old, redirect_uris: ["http://localhost/old"] }\n`,
  );
  const config = loadConfig({
    file: base,
    env: {
      GATEHOUSE_USERS: USERS_JSON,
      GATEHOUSE_CLIENTS: JSON.stringify([
        { ...WEB, client_id: 'api', grant_types: ['client_credentials'], redirect_uris: [] },
      ]),
    },
  });
  t.deepEqual(
    config.accounts.map((a) => [a.subject, a.username]),
    [
      ['jon', undefined],
      ['ivy', undefined],
    ],
  );
  t.deepEqual(
    config.clients.map((c) => c.client_id),
    ['web', 'api'],
  );
});

test('a user from the environment signs in with the plain password, which is hashed, reused over restarts and never logged', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk, _encoding, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  const env = {
    GATEHOUSE_USERS: USERS_YAML,
    GATEHOUSE_CLIENTS: CLIENTS_JSON,
    GATEHOUSE_DATABASE_URL: database.url,
    PORT: '0',
  };
  const start = async () => {
    const config = loadConfig({ env: { ...env, GATEHOUSE_PRESET: 'testing' } });
    const server = await createServer(config as GatehouseConfigInput, { logger });
    t.teardown(() => server.close());
    await server.listen();
    return server;
  };

  const first = await start();
  const { claims } = await signIn(new Browser(), await discover(first.config.issuer, 'web', 'web-secret'), {
    username: 'ivy',
  });
  t.is(claims.sub, 'ivy');
  const hash = (await first.accounts.get('ivy'))!.passwordHash!;
  t.regex(hash, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/, 'hashed with the preset cost');
  t.false(JSON.stringify(first.config).includes('ivy-password'), 'the server keeps no clear-text password');
  await first.close();

  const second = await start();
  t.is((await second.accounts.get('ivy'))!.passwordHash, hash, 'an unchanged password keeps its stored hash');
  await second.close();
  t.true(lines.length > 10);
  t.false(lines.join('\n').includes('ivy-password'), 'the password is in no log line');
});

test('the testing preset: in-memory database, fast hashing, loopback back-channel, sessions on, mode testing, auto-consent', (t) => {
  const config = loadConfig({
    env: {
      GATEHOUSE_PRESET: 'testing',
      GATEHOUSE_CLIENTS: CLIENTS_JSON.replace('"skipConsent":true', '"skipConsent":false').replace(
        ',"skipConsent":false',
        '',
      ),
    },
  });
  t.is(config.mode, 'testing');
  t.is(config.database.url, 'sqlite::memory:');
  t.deepEqual(config.passwordHashing, {
    algorithm: 'argon2id',
    memory: 1024,
    passes: 1,
    parallelism: 1,
    log2N: 10,
    r: 8,
    p: 1,
  });
  t.deepEqual(
    [config.login.lockout, config.login.maxLockout],
    [1, 5],
    'sign-in protection stays on, with lockouts of seconds',
  );
  t.true(config.backchannelLogout.allowPrivateNetworks);
  t.true(config.serverSideSessions.enabled);
  t.true(config.clients[0].skipConsent, 'configured clients skip consent');

  const fromFile = loadConfig({
    file: file(
      'preset.yaml',
      `preset: testing\ndatabase:\n  url: sqlite:${join(dir, 'kept.sqlite')}\nserverSideSessions:\n  enabled: false\nclients:\n  - { client_id: c, client_secret: s, redirect_uris: ["${REDIRECT_URI}"], skipConsent: false }\n`,
    ),
    env: {},
  });
  t.is(fromFile.mode, 'testing', '`preset: testing` in a file works too');
  t.is(fromFile.database.url, `sqlite:${join(dir, 'kept.sqlite')}`, 'explicit values win over the preset');
  t.false(fromFile.serverSideSessions.enabled);
  t.false(fromFile.clients[0].skipConsent);
  t.is(loadConfig({ env: { GATEHOUSE_PRESET: 'testing', GATEHOUSE_MODE: 'development' } }).mode, 'development');
  t.is(loadConfig({ env: {} }).mode, 'production', 'production is the default mode');
});

test('a server from the testing preset alone signs a user in without a consent page', async (t) => {
  const config = loadConfig({
    env: {
      GATEHOUSE_PRESET: 'testing',
      GATEHOUSE_USERS: USERS_JSON,
      GATEHOUSE_CLIENTS: JSON.stringify([{ ...WEB, skipConsent: undefined }]),
      PORT: '0',
      GATEHOUSE_LOG_LEVEL: 'silent',
    },
  });
  const server = await createServer(config as GatehouseConfigInput);
  t.teardown(() => server.close());
  await server.listen();
  const result = await signIn(new Browser(), await discover(server.config.issuer, 'web', 'web-secret'), {
    username: 'ivy',
  });
  t.true(result.sawLogin);
  t.false(result.sawConsent);
  t.truthy(server.sessionStore, 'server-side sessions are on');
});

test('bad values are named by variable and index, without echoing them', (t) => {
  const env = (vars: Record<string, string>) => problemsOf(() => loadConfig({ env: vars }));
  t.deepEqual(env({ GATEHOUSE_USERS: '[{"subject":"a","password":"hunter2-secret"},{"subject":"","password":"p"}]' }), [
    'GATEHOUSE_USERS[1].subject: Too small: expected string to have >=1 characters',
  ]);
  t.deepEqual(env({ GATEHOUSE_USERS: '- subject: a\n  pasword: x\n' }), ['GATEHOUSE_USERS[0].pasword: unknown key']);
  t.deepEqual(
    env({ GATEHOUSE_USERS: '[{"subject":"a","password":"p","passwordHash":"$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA"}]' }),
    ['GATEHOUSE_USERS[0].password: give either password or passwordHash, not both'],
  );
  t.deepEqual(env({ GATEHOUSE_USERS: '[{"subject":"a"},{"subject":"a"}]' }), [
    'GATEHOUSE_USERS[1]: subject/username "a" is already used by GATEHOUSE_USERS[0]',
  ]);
  t.deepEqual(env({ GATEHOUSE_USERS: '{"subject":"a"}' }), [
    'GATEHOUSE_USERS: expected a list (an array) of accounts, got object',
  ]);
  t.regex(
    env({ GATEHOUSE_USERS: '[{"subject": "a", "password": "hunter2-secret"' })[0],
    /^GATEHOUSE_USERS: cannot parse the inline value: /,
  );
  t.regex(
    env({ GATEHOUSE_USERS: join(dir, 'missing.yaml') })[0],
    /^GATEHOUSE_USERS: not inline JSON or YAML, and cannot read it as a file .*missing\.yaml: ENOENT/,
  );
  t.deepEqual(env({ GATEHOUSE_CLIENTS: JSON.stringify([WEB, { client_id: 'b', redirect_uris: ['not a url'] }]) }), [
    'GATEHOUSE_CLIENTS[1].redirect_uris[0]: expected an http(s) URL',
  ]);
  t.deepEqual(
    env({ GATEHOUSE_CLIENTS: JSON.stringify([{ client_id: 'b', redirect_uris: [REDIRECT_URI] }, WEB, WEB]) }),
    [
      'GATEHOUSE_CLIENTS[0].client_secret: required unless token_endpoint_auth_method is "none" (public client) or "private_key_jwt"',
      'GATEHOUSE_CLIENTS[2].client_id: "web" is already used by GATEHOUSE_CLIENTS[1]',
    ],
  );
  t.deepEqual(env({ GATEHOUSE_CLIENTS: JSON.stringify([{ ...WEB, client_id: 'gatehouse-console' }]) }), [
    `GATEHOUSE_CLIENTS[0].client_id: "gatehouse-console" is reserved for Gatehouse's own pages`,
  ]);
  t.deepEqual(env({ GATEHOUSE_PRESET: 'fast' }), ['GATEHOUSE_PRESET: expected one of testing, got "fast"']);
  t.deepEqual(env({ GATEHOUSE_MODE: 'prod' }), [
    'GATEHOUSE_MODE: expected one of production, development, testing, got "prod"',
  ]);
  const everything = JSON.stringify(
    problemsOf(() =>
      loadConfig({ env: { GATEHOUSE_USERS: '[{"subject": "a", "password": "hunter2-secret", "x": 1}' } }),
    ),
  );
  t.false(everything.includes('hunter2-secret'), 'a parse error does not quote the value');
  const error = t.throws(() => loadConfig({ env: { GATEHOUSE_USERS: '[{"subject": 1}]' } }));
  t.regex(error!.message, /^invalid configuration in the environment:\n {2}GATEHOUSE_USERS\[0\]\.subject: /);
});
