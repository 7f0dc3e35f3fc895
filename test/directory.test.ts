/**
 * Users and clients in the database, seeded from the configuration on every start: idempotent over restarts, entries
 * that leave the configuration disabled (not deleted) with the sessions of such users ended, CLI- and API-added entries
 * untouched, disabled users and clients locked out, and clients added with the CLI picked up by a running server
 * without a restart.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { QueryTypes } from 'sequelize';
import type { GatehouseConfigInput } from '../config/schema.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { discover, LogoutReceiver, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { freePort, startTestServer, TEST_HASHING, type TestServer } from './helpers/server.js';
import { hashPassword } from '../server/provider/passwords.js';
import { openDatabase } from '../stores/sequelize/connection.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `gatehouse ...` through the bin, on this test's Node and without the caller's GATEHOUSE_* settings. */
function runCli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(ROOT, 'server/bin.js'), ...args],
      { cwd: ROOT, env: { ...env, PATH: [dirname(process.execPath), env.PATH].join(':') }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

const user = async (subject: string, name: string, extra: object = {}) => ({
  subject,
  username: subject,
  passwordHash: await hashPassword(`${subject}-password`, TEST_HASHING),
  claims: { name, email: `${subject}@example.com` },
  ...extra,
});

type ClientInput = NonNullable<GatehouseConfigInput['clients']>[number];

const client = (clientId: string, extra: Partial<ClientInput> = {}): ClientInput => ({
  client_id: clientId,
  client_secret: `${clientId}-secret`,
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  skipConsent: true,
  ...extra,
});

interface Row {
  key: string;
  disabled: boolean;
  source: string;
  updated: string;
}

/** The directory rows read straight from the tables (not through the directory code). */
async function rows(server: TestServer): Promise<{ users: Row[]; clients: Row[] }> {
  const sequelize = server.server.sequelize;
  const read = async (sql: string) =>
    (
      await sequelize.query<{ key: string; disabled: number | boolean; source: string; updated_at: string | Date }>(
        sql,
        { type: QueryTypes.SELECT },
      )
    ).map((row) => ({
      key: row.key,
      disabled: Boolean(row.disabled),
      source: row.source,
      updated: new Date(row.updated_at).toISOString(),
    }));
  return {
    users: await read('SELECT subject AS "key", disabled, source, updated_at FROM gatehouse_users ORDER BY subject'),
    clients: await read(
      'SELECT client_id AS "key", disabled, source, updated_at FROM gatehouse_clients ORDER BY client_id',
    ),
  };
}

/** A server on `databaseUrl`, closed at teardown at the latest (closing twice is fine). */
async function start(
  t: { teardown(fn: () => Promise<void>): void },
  databaseUrl: string,
  config: GatehouseConfigInput,
): Promise<TestServer> {
  const server = await startTestServer({ databaseUrl, config: { directory: { cacheMs: 200 }, ...config } });
  t.teardown(async () => {
    await server.server.close();
  });
  return server;
}

test('seeding over restarts on one SQLite file: unchanged entries are not rewritten, changes applied, nothing duplicated, removed entries disabled', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const [ann, ben] = await Promise.all([user('ann', 'Ann Archer'), user('ben', 'Ben Baker')]);
  const first = { accounts: [ann, ben], clients: [client('app'), client('tool')] };

  let server = await start(t, database.url, first);
  const initial = await rows(server);
  t.deepEqual(
    initial.users.map((r) => [r.key, r.disabled, r.source]),
    [
      ['ann', false, 'config'],
      ['ben', false, 'config'],
    ],
  );
  t.deepEqual(
    initial.clients.map((r) => [r.key, r.disabled, r.source]),
    [
      ['app', false, 'config'],
      ['tool', false, 'config'],
    ],
  );
  await server.close();

  server = await start(t, database.url, first);
  t.deepEqual(await rows(server), initial, 'the same configuration writes nothing');
  await server.close();

  const cid = await user('cid', 'Cid Carter');
  server = await start(t, database.url, {
    accounts: [{ ...ann, claims: { name: 'Ann Archer-Smith', email: 'ann@example.org' }, roles: ['admin'] }, cid],
    clients: [client('app', { redirect_uris: [REDIRECT_URI, 'http://127.0.0.1:9/other'] })],
  });
  const after = await rows(server);
  t.deepEqual(
    after.users.map((r) => [r.key, r.disabled]),
    [
      ['ann', false],
      ['ben', true],
      ['cid', false],
    ],
    'one row per subject; ben disabled, not deleted',
  );
  t.deepEqual(
    after.clients.map((r) => [r.key, r.disabled]),
    [
      ['app', false],
      ['tool', true],
    ],
  );
  t.not(after.users[0].updated, initial.users[0].updated, 'ann was updated');
  t.deepEqual((await server.server.accounts.find('ann'))?.claims, {
    name: 'Ann Archer-Smith',
    email: 'ann@example.org',
  });
  t.deepEqual((await server.server.accounts.find('ann'))?.roles, ['admin']);
  t.is(await server.server.accounts.find('ben'), undefined, 'a disabled user is not found');
  t.deepEqual((await server.server.provider.Client.find('app'))?.redirectUris, [
    REDIRECT_URI,
    'http://127.0.0.1:9/other',
  ]);
  t.is(await server.server.provider.Client.find('tool'), undefined, 'a disabled client is unknown');
  await t.throwsAsync(signIn(new Browser(), await discover(server.issuer, 'app', 'app-secret'), { username: 'ben' }), {
    message: 'login failed',
  });
  await server.close();

  // Back in the configuration: enabled again, still one row.
  server = await start(t, database.url, first);
  const again = await rows(server);
  t.deepEqual(
    again.users.map((r) => [r.key, r.disabled]),
    [
      ['ann', false],
      ['ben', false],
      ['cid', true],
    ],
  );
  t.deepEqual(
    again.clients.map((r) => [r.key, r.disabled]),
    [
      ['app', false],
      ['tool', false],
    ],
  );
  t.is(
    (await signIn(new Browser(), await discover(server.issuer, 'tool', 'tool-secret'), { username: 'ben' })).claims.sub,
    'ben',
  );
  await server.close();
});

// MariaDB too (its DATETIME columns drop milliseconds; nothing here may depend on them).
for (const dialect of ['sqlite-file', 'mariadb'] as TestDialect[]) {
  test(`a start that disables a user the configuration no longer lists ends their sessions, tokens and grants (${dialect})`, async (t) => {
    const database = await createTestDatabase(dialect);
    const receiver = await new LogoutReceiver().start();
    t.teardown(async () => {
      await receiver.close();
      await database.drop();
    });
    const port = await freePort(); // one issuer over the restart: the tokens stay meaningful
    const [ann, ben] = await Promise.all([user('ann', 'Ann Archer'), user('ben', 'Ben Baker')]);
    const config = {
      port,
      issuer: `http://localhost:${port}`,
      serverSideSessions: { enabled: true },
      clients: [client('app', { backchannel_logout_uri: receiver.url })],
    };

    let server = await start(t, database.url, { ...config, accounts: [ann, ben] } as never);
    const app = await discover(server.issuer, 'app', 'app-secret');
    const browser = new Browser();
    const { tokens, claims } = await signIn(browser, app, { username: 'ben', scope: 'openid profile offline_access' });
    await signIn(new Browser(), app, { username: 'ann' });
    const [session] = await server.server.sessions.sessionsOf('ben');
    await server.close();

    server = await start(t, database.url, { ...config, accounts: [ann] } as never);
    t.deepEqual(
      (await rows(server)).users.map((r) => [r.key, r.disabled]),
      [
        ['ann', false],
        ['ben', true],
      ],
    );
    t.deepEqual(await server.server.sessions.sessionsOf('ben'), [], 'the session record is gone');
    t.is((await server.server.sessions.sessionsOf('ann')).length, 1, "ann's session is untouched");
    const [logoutToken] = await receiver.waitFor(1);
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const { payload } = await jwtVerify(logoutToken, jwks, {
      issuer: server.issuer,
      audience: 'app',
      typ: 'logout+jwt',
    });
    t.is(payload.sub, 'ben');
    t.is(payload.sid, claims.sid);
    const outbox = await server.server.backchannel.outbox.list({ sessionId: session.sessionId });
    t.like(outbox[0], { reason: 'terminated', status: 'delivered' });
    const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(app, tokens.refresh_token!));
    t.is(refresh?.error, 'invalid_grant');
    t.true((await startAuthorization(browser, app)).body.includes('name="password"'), 'the browser must sign in again');
    await server.close();

    // An unchanged configuration disables no one and ends nothing more.
    server = await start(t, database.url, { ...config, accounts: [ann] } as never);
    t.is((await server.server.sessions.sessionsOf('ann')).length, 1);
    t.is(receiver.tokens.length, 1);
    await server.close();
  });
}

test('a start also ends the access of a user an earlier start disabled but stopped before ending it', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const port = await freePort();
  const [ann, ben] = await Promise.all([user('ann', 'Ann Archer'), user('ben', 'Ben Baker')]);
  const config = {
    port,
    issuer: `http://localhost:${port}`,
    serverSideSessions: { enabled: true },
    clients: [client('app')],
  };
  let server = await start(t, database.url, { ...config, accounts: [ann, ben] } as never);
  const app = await discover(server.issuer, 'app', 'app-secret');
  const { tokens } = await signIn(new Browser(), app, { username: 'ben', scope: 'openid profile offline_access' });
  t.is((await server.server.sessions.sessionsOf('ben')).length, 1);
  await server.close();

  // What a start that crashed right after its seeding leaves behind: ben disabled, his session and tokens alive.
  const sequelize = await openDatabase({ url: database.url });
  await sequelize.query(`UPDATE gatehouse_users SET disabled = 1, username_key = NULL WHERE subject = 'ben'`);
  await sequelize.close();

  server = await start(t, database.url, { ...config, accounts: [ann] } as never);
  t.deepEqual(await server.server.sessions.sessionsOf('ben'), [], 'the next start ended it');
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(app, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');
  await server.close();
});

test('users and clients added with the CLI or the admin API survive a restart and are never disabled by seeding', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const config = {
    accounts: [await user('ann', 'Ann Archer')],
    clients: [
      client('app'),
      client('admin', { grant_types: ['client_credentials'], redirect_uris: [], scope: 'gatehouse:admin' }),
    ],
  };
  let server = await start(t, database.url, config);

  const cli = await runCli(
    ['users', 'add', '--db', database.url, '--subject', 'dot', '--password-stdin', '--claim', 'name=Dot Dawson'],
    'dot-password\n',
  );
  t.is(cli.code, 0, cli.stderr);
  const cliClient = await runCli([
    'clients',
    'add',
    '--db',
    database.url,
    '--client-id',
    'late',
    '--secret',
    'late-secret',
    '--redirect-uri',
    REDIRECT_URI,
    '--skip-consent',
  ]);
  t.is(cliClient.code, 0, cliClient.stderr);
  const token = (
    await oidc.clientCredentialsGrant(await discover(server.issuer, 'admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  const put = await fetch(`${server.issuer}/admin/api/v1/users/eve`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ claims: { name: 'Eve Evans' }, password: 'eve-password' }),
  });
  t.is(put.status, 201);
  await server.close();

  // Restart with a configuration that names none of them (and drops ann).
  server = await start(t, database.url, { ...config, accounts: [] });
  const after = await rows(server);
  t.deepEqual(
    after.users.map((r) => [r.key, r.disabled, r.source]),
    [
      ['ann', true, 'config'],
      ['dot', false, 'cli'],
      ['eve', false, 'api'],
    ],
  );
  t.deepEqual(
    after.clients.map((r) => [r.key, r.disabled, r.source]),
    [
      ['admin', false, 'config'],
      ['app', false, 'config'],
      ['late', false, 'cli'],
    ],
  );
  const late = await discover(server.issuer, 'late', 'late-secret');
  const dot = await signIn(new Browser(), late, { username: 'dot' });
  t.is((await oidc.fetchUserInfo(late, dot.tokens.access_token, 'dot')).name, 'Dot Dawson');
  t.is((await signIn(new Browser(), late, { username: 'eve' })).claims.sub, 'eve');
  await server.close();
});

test('a configured username that a CLI-added user holds stops the start with a message naming both', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const server = await start(t, database.url, { accounts: [] });
  await server.server.accounts.save({
    subject: 'cli-fay',
    username: 'fay',
    passwordHash: null,
    claims: {},
    roles: [],
    disabled: false,
    source: 'cli',
  });
  await server.close();
  const error = await t.throwsAsync(start(t, database.url, { accounts: [await user('fay', 'Fay Fox')] }));
  t.regex(error!.message, /accounts\[0\]\.username: username "fay" is already used by user "cli-fay" \(source cli\)/);
});

test('a disabled user cannot sign in, and their tokens stop working at once', async (t) => {
  const gatehouse = await startTestServer({ config: { clients: [client('app')] } });
  t.teardown(() => gatehouse.close());
  const app = await discover(gatehouse.issuer, 'app', 'app-secret');
  const { tokens } = await signIn(new Browser(), app, { username: 'carol', scope: 'openid profile offline_access' });
  t.is((await oidc.fetchUserInfo(app, tokens.access_token, 'carol')).name, 'Carol Clark');

  const carol = (await gatehouse.server.accounts.get('carol'))!;
  await gatehouse.server.accounts.save({ ...carol, disabled: true });

  await t.throwsAsync(signIn(new Browser(), app, { username: 'carol' }), { message: 'login failed' });
  await t.throwsAsync(oidc.fetchUserInfo(app, tokens.access_token, 'carol'));
  const refresh = await t.throwsAsync<oidc.ResponseBodyError>(oidc.refreshTokenGrant(app, tokens.refresh_token!));
  t.is(refresh?.error, 'invalid_grant');

  await gatehouse.server.accounts.save({ ...carol, disabled: false });
  t.is((await signIn(new Browser(), app, { username: 'carol' })).claims.sub, 'carol', 'enabled again');
});

test('a client and a user added with the CLI while a server runs work without a restart; removed ones stop working', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  const gatehouse = await startTestServer({ databaseUrl: database.url, config: { directory: { cacheMs: 200 } } });
  t.teardown(async () => {
    await gatehouse.close();
    await database.drop();
  });
  const added = await runCli([
    'clients',
    'add',
    '--db',
    database.url,
    '--client-id',
    'hot',
    '--secret',
    'hot-secret',
    '--redirect-uri',
    REDIRECT_URI,
    '--grant-type',
    'authorization_code',
    '--grant-type',
    'refresh_token',
    '--skip-consent',
  ]);
  t.is(added.code, 0, added.stderr);
  const user = await runCli([
    'users',
    'add',
    '--db',
    database.url,
    '--subject',
    'gus',
    '--password',
    'gus-password',
    '--claim',
    'name=Gus Grant',
    '--claim',
    'email_verified:=true',
  ]);
  t.is(user.code, 0, user.stderr);

  const hot = await discover(gatehouse.issuer, 'hot', 'hot-secret');
  const { claims, sawConsent, tokens } = await signIn(new Browser(), hot, {
    username: 'gus',
    scope: 'openid profile email',
  });
  t.is(claims.sub, 'gus');
  t.like(await oidc.fetchUserInfo(hot, tokens.access_token, 'gus'), { name: 'Gus Grant', email_verified: true });
  t.false(sawConsent, '--skip-consent applies');

  const removed = await runCli(['clients', 'remove', '--db', database.url, '--client-id', 'hot']);
  t.is(removed.code, 0, removed.stderr);
  await new Promise((resolve) => setTimeout(resolve, 300)); // past directory.cacheMs
  t.is(await gatehouse.server.provider.Client.find('hot'), undefined);
  const refused = await t.throwsAsync<oidc.ResponseBodyError>(oidc.clientCredentialsGrant(hot));
  t.is(refused?.error, 'invalid_client');
});

for (const dialect of ['postgres', 'mariadb'] as TestDialect[]) {
  test(`servers starting together on one ${dialect} database seed once: no errors, no duplicates`, async (t) => {
    const database = await createTestDatabase(dialect);
    t.teardown(() => database.drop());
    const config = {
      accounts: [await user('ann', 'Ann Archer'), await user('ben', 'Ben Baker')],
      clients: [client('app'), client('tool')],
    };
    const servers = await Promise.all([
      start(t, database.url, config),
      start(t, database.url, config),
      start(t, database.url, config),
    ]);
    const [first] = servers;
    const table = await rows(first);
    t.deepEqual(
      table.users.map((r) => r.key),
      ['ann', 'ben'],
    );
    t.deepEqual(
      table.clients.map((r) => r.key),
      ['app', 'tool'],
    );
    t.is(
      (await signIn(new Browser(), await discover(first.issuer, 'app', 'app-secret'), { username: 'ann' })).claims.sub,
      'ann',
    );
    for (const server of servers) await server.close();
  });
}
