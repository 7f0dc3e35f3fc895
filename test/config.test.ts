import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { loadConfig, validateConfig } from '../config/load.js';
import { defaults } from '../config/defaults.js';
import { problemsOf, tempFiles } from './helpers/config-files.js';

const run = promisify(execFile);
const { dir, file } = tempFiles('gatehouse-config-');

test('defaults apply when nothing is configured', (t) => {
  const config = validateConfig({});
  t.is(config.port, defaults.port);
  t.is(config.issuer, 'http://localhost:3000');
  t.is(config.database.url, defaults.database.url);
  t.false(config.serverSideSessions.enabled);
  t.is(config.serverSideSessions.idleTimeout, defaults.serverSideSessions.idleTimeout);
  t.false(config.backchannelLogout.allowPrivateNetworks);
});

test('an explicit 0 is kept, not replaced by a default', (t) => {
  const config = validateConfig({ serverSideSessions: { renewalWriteInterval: 0 } });
  t.is(config.serverSideSessions.renewalWriteInterval, 0);
});

test('an invalid value is reported with its exact path', (t) => {
  const problems = problemsOf(() => validateConfig({ serverSideSessions: { idleTimeout: -1 } }));
  t.is(problems.length, 1);
  t.regex(problems[0], /^serverSideSessions\.idleTimeout: /);
});

test('an unknown key is reported with its path', (t) => {
  const problems = problemsOf(() => validateConfig({ database: { url: 'sqlite::memory:', urll: 'x' } }));
  t.deepEqual(problems, ['database.urll: unknown key']);
});

test('array entries are named by index', (t) => {
  const problems = problemsOf(() =>
    validateConfig({
      accounts: [
        { subject: 'a', passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g' },
        { subject: 'b', passwordHash: 'plain-text' },
      ],
    }),
  );
  t.is(problems.length, 1);
  t.regex(problems[0], /^accounts\[1\]\.passwordHash: expected a PHC string/);
});

test('a clear-text password is never echoed back in the error', (t) => {
  const problems = problemsOf(() => validateConfig({ accounts: [{ subject: 'a', passwordHash: 'hunter2-secret' }] }));
  t.false(problems.join('\n').includes('hunter2-secret'));
});

test('cross-field rules: duplicate client ids, missing secrets, lifetimes', (t) => {
  const problems = problemsOf(() =>
    validateConfig({
      clients: [
        { client_id: 'x', client_secret: 's', redirect_uris: ['http://localhost/cb'] },
        { client_id: 'x', redirect_uris: ['http://localhost/cb'] },
      ],
      serverSideSessions: { idleTimeout: 100, absoluteLifetime: 50 },
    }),
  );
  t.true(problems.some((p) => p.startsWith('clients[1].client_id:')));
  t.true(problems.some((p) => p.startsWith('clients[1].client_secret:')));
  t.true(problems.some((p) => p.startsWith('serverSideSessions.absoluteLifetime:')));
});

test('YAML and JSON files load; environment overrides win', (t) => {
  const yaml = file('a.yaml', 'port: 4100\nserverSideSessions:\n  enabled: false\n');
  const config = loadConfig({
    file: yaml,
    env: {
      GATEHOUSE_SERVER_SIDE_SESSIONS: 'true',
      GATEHOUSE_DATABASE_URL: 'sqlite::memory:',
      GATEHOUSE_ISSUER: 'https://id.example.com/',
    },
  });
  t.is(config.port, 4100);
  t.true(config.serverSideSessions.enabled);
  t.is(config.database.url, 'sqlite::memory:');
  t.is(config.issuer, 'https://id.example.com');
  const json = file('b.json', JSON.stringify({ port: 4200 }));
  const fromJson = loadConfig({ file: json, env: { PORT: '4300' } });
  t.is(fromJson.port, 4300);
  t.is(fromJson.issuer, 'http://localhost:4300');
});

test('bad environment values are named', (t) => {
  t.deepEqual(
    problemsOf(() => loadConfig({ env: { GATEHOUSE_SERVER_SIDE_SESSIONS: 'yes' } })),
    ['GATEHOUSE_SERVER_SIDE_SESSIONS: expected true or false, got "yes"'],
  );
  t.regex(problemsOf(() => loadConfig({ env: { PORT: 'eighty' } }))[0], /^PORT: expected a number, got "eighty"/);
});

test('an unparsable or missing file is a clear error', (t) => {
  t.regex(
    problemsOf(() => loadConfig({ file: file('bad.yaml', 'port: [1, 2\n'), env: {} }))[0],
    /cannot parse .*bad\.yaml/,
  );
  t.regex(
    problemsOf(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }))[0],
    /cannot read config file .*missing\.yaml: ENOENT/,
  );
});

test('the server refuses to start on an invalid config file, naming the path, with exit code 2', async (t) => {
  const bad = file('invalid.yaml', 'database:\n  url: "sqlite::memory:"\nserverSideSessions:\n  batchSize: -1\n');
  const error = await t.throwsAsync<Error & { code: number; stderr: string }>(
    run('npx', ['tsx', 'server/cli.ts', 'start', '--config', bad], { env: { ...process.env, PORT: '0' } }),
  );
  t.is(error?.code, 2);
  t.regex(error?.stderr ?? '', /serverSideSessions\.batchSize: unknown key/);
});

test('the shipped demo config is valid and has exactly the documented users and clients', (t) => {
  const config = loadConfig({ file: 'config/demo.yaml', env: {} });
  t.deepEqual(
    config.accounts.map((a) => a.username),
    ['alice', 'bob'],
  );
  t.deepEqual(
    config.clients.map((c) => c.client_id),
    ['demo-web', 'demo-spa', 'demo-service', 'demo-tv', 'demo-ledger-api', 'gatehouse-admin'],
  );
  t.true(config.serverSideSessions.enabled);
  t.true(config.backchannelLogout.allowPrivateNetworks);
  t.true(config.pages.showDemoAccounts);
});
