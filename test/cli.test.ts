import { execFile } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Browser } from './helpers/browser.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { discover, LogoutReceiver, REDIRECT_URI, signIn, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, TEST_HASHING, testAccounts } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx tsx server/cli.ts ...` as a child process, on this test's Node and without the caller's GATEHOUSE_* settings. */
function cli(args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  env.PATH = [dirname(process.execPath), join(ROOT, 'node_modules/.bin'), env.PATH].join(':');
  return new Promise((resolve) => {
    execFile('npx', ['tsx', 'server/cli.ts', ...args], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A config file for the CLI, in a temporary directory removed at teardown. */
function configFile(t: { teardown(fn: () => void): void }, config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'gatehouse.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

for (const dialect of ['sqlite-file', 'postgres'] as TestDialect[]) {
  test(`sessions list and revoke work on ${dialect} while a server runs on the same database`, async (t) => {
    const database = await createTestDatabase(dialect);
    const receiver = await new LogoutReceiver().start();
    const web = {
      client_id: 'web',
      client_secret: 'web-secret',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      backchannel_logout_uri: receiver.url,
      skipConsent: true,
    };
    const sessions = { enabled: true, displayNameClaim: 'name' };
    const gatehouse = await startTestServer({
      databaseUrl: database.url,
      config: { serverSideSessions: sessions, clients: [web] } as never,
    });
    t.teardown(async () => {
      await gatehouse.close();
      await receiver.close();
      await database.drop();
    });
    const config = configFile(t, {
      issuer: gatehouse.issuer,
      database: { url: database.url },
      logging: { level: 'warn' },
      passwordHashing: TEST_HASHING,
      backchannelLogout: { allowPrivateNetworks: true },
      serverSideSessions: sessions,
      accounts: await testAccounts(),
      clients: [web],
    });

    const browser = new Browser();
    const rp = await discover(gatehouse.issuer, 'web', 'web-secret');
    const { claims } = await signIn(browser, rp, { username: 'alice' });
    await signIn(new Browser(), rp, { username: 'bob' });

    const listed = await cli(['sessions', 'list', '--subject', 'alice', '--json', '--config', config]);
    t.is(listed.code, 0, listed.stderr);
    const body = JSON.parse(listed.stdout);
    t.is(body.totalCount, 1);
    t.like(body.sessions[0], {
      subject: 'alice',
      displayName: 'Alice Anderson',
      clients: [{ clientId: 'web', sid: claims.sid }],
    });
    const sessionId: string = body.sessions[0].sessionId;

    const table = await cli(['sessions', 'list', '--config', config]);
    t.is(table.code, 0, table.stderr);
    t.regex(table.stdout, /^SUBJECT +SESSION ID +DISPLAY NAME/);
    t.regex(table.stdout, new RegExp(`alice +${sessionId} +Alice Anderson +web`));
    t.regex(table.stdout, /2 shown, 2 in total/);

    const revoked = await cli(['sessions', 'revoke', `--session-id=${sessionId}`, '--config', config]);
    t.is(revoked.code, 0, revoked.stderr);
    t.regex(revoked.stdout, new RegExp(`Revoked session ${sessionId}`));
    t.regex(revoked.stdout, /Back-channel logout: 1 queued, 1 delivered/);

    const [logoutToken] = await receiver.waitFor(1);
    const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`)), {
      issuer: gatehouse.issuer,
      audience: 'web',
    });
    t.is(payload.sub, 'alice');
    t.is(payload.sid, claims.sid);
    t.is(await gatehouse.server.sessions.getSession(sessionId), null, 'the running server no longer knows the session');
    t.true((await startAuthorization(browser, rp)).body.includes('name="password"'));
    t.is((await gatehouse.server.sessions.sessionsOf('bob')).length, 1);

    const again = await cli(['sessions', 'revoke', `--session-id=${sessionId}`, '--config', config]);
    t.is(again.code, 1);
    t.regex(again.stderr, /no session with id/);
  });
}

test('bad arguments exit 2 with a message naming the argument', async (t) => {
  const cases: [string[], RegExp][] = [
    [['sessions', 'list', '--page-size', '0'], /--page-size must be an integer from 1 to 200/],
    [['sessions', 'list', '--frobnicate'], /--frobnicate/],
    [['sessions', 'revoke'], /--session-id or --subject/],
    [
      ['sessions', 'revoke', '--session-id', 'a', '--page-size', '5'],
      /--page-size is not an option of sessions revoke/,
    ],
    [['sessions', 'revoke', '--subject', 'a', '--client-ids', 'web,,other'], /--client-ids/],
    [['sessions', 'purge'], /unknown subcommand "purge"/],
  ];
  // One after another: each run starts a Node process, and the dialect tests above run at the same time.
  for (const [args, message] of cases) {
    const run = await cli(args);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, message, args.join(' '));
  }
});

test('a session store that cannot be built stops start with exit code 2, naming serverSideSessions.store', async (t) => {
  const config = configFile(t, {
    database: { url: 'sqlite::memory:' },
    serverSideSessions: { enabled: true, store: './needs-url.mjs' },
  });
  writeFileSync(
    join(dirname(config), 'needs-url.mjs'),
    `export default class NeedsUrl {\n  constructor(context) { if (!context.options.url) throw new Error('storeOptions.url is required'); }\n}\n`,
  );
  const run = await cli(['start', '--config', config, '--port', '0']);
  t.is(run.code, 2, run.stderr);
  t.regex(
    run.stderr,
    /^gatehouse: serverSideSessions\.store: building "NeedsUrl" from module ".*needs-url\.mjs" failed: storeOptions\.url is required/m,
  );
});

test('a metrics port in use stops start with exit code 1, naming metrics.port; nothing stays half-started', async (t) => {
  const holder = createNetServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const taken = (holder.address() as AddressInfo).port;
  const config = configFile(t, { database: { url: 'sqlite::memory:' }, metrics: { enabled: true, port: taken } });
  // Before the fix the server went on serving the main port (and the run ended only at the child's timeout).
  const run = await cli(['start', '--config', config, '--port', '0']);
  t.is(run.code, 1, run.stderr);
  t.regex(
    run.stderr,
    new RegExp(
      `^gatehouse: metrics\\.port: cannot listen on 127\\.0\\.0\\.1:${taken}: the port is in use by another process \\(EADDRINUSE\\); choose another metrics\\.port \\(GATEHOUSE_METRICS__PORT\\)$`,
      'm',
    ),
  );
  t.notRegex(run.stderr, /listening on/);
});

test('an empty sessions list says why it may be empty: sessions off in the configuration, or --db alone', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  t.teardown(() => database.drop());
  const alone = await cli(['sessions', 'list', '--db', database.url]);
  t.is(alone.code, 0, alone.stderr);
  t.regex(
    alone.stdout,
    /^No sessions\.\nOnly server-side sessions are listed: servers record them with serverSideSessions\.enabled: true \(off by default\)\.\n/,
  );
  const off = await cli(['sessions', 'list', '--config', configFile(t, { database: { url: database.url } })]);
  t.is(off.code, 0, off.stderr);
  t.regex(
    off.stdout,
    /^No sessions\.\nServer-side sessions are off in this configuration \(serverSideSessions\.enabled: false\): sign-ins are not recorded\.\n/,
  );
  const on = await cli([
    'sessions',
    'list',
    '--config',
    configFile(t, { database: { url: database.url }, serverSideSessions: { enabled: true } }),
  ]);
  t.is(on.code, 0, on.stderr);
  t.regex(on.stdout, /^No sessions\.\n\n0 shown, 0 in total\.$/m);
});

test('sessions list and revoke work with --db alone, whatever a configuration says about server-side sessions', async (t) => {
  const database = await createTestDatabase('sqlite-file');
  const receiver = await new LogoutReceiver().start();
  const web = {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    backchannel_logout_uri: receiver.url,
    skipConsent: true,
  };
  const gatehouse = await startTestServer({
    databaseUrl: database.url,
    config: { serverSideSessions: { enabled: true }, clients: [web] },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await receiver.close();
    await database.drop();
  });
  const { claims } = await signIn(new Browser(), await discover(gatehouse.issuer, 'web', 'web-secret'), {
    username: 'carol',
  });

  const listed = await cli(['sessions', 'list', '--db', database.url, '--subject', 'carol', '--json']);
  t.is(listed.code, 0, listed.stderr);
  t.like(JSON.parse(listed.stdout), {
    totalCount: 1,
    sessions: [{ subject: 'carol', clients: [{ clientId: 'web', sid: claims.sid }] }],
  });
  const sessionsOff = configFile(t, { database: { url: database.url }, serverSideSessions: { enabled: false } });
  const again = await cli(['sessions', 'list', '--config', sessionsOff, '--subject', 'carol', '--json']);
  t.is(again.code, 0, again.stderr);
  t.is(JSON.parse(again.stdout).totalCount, 1, 'the session tables are read whatever the flag says');

  // Without a configuration the command does not know the issuer: it queues the logout token for the servers.
  const revoked = await cli(['sessions', 'revoke', '--db', database.url, '--subject', 'carol']);
  t.is(revoked.code, 0, revoked.stderr);
  t.regex(revoked.stdout, /Back-channel logout: 1 queued, 0 delivered, 1 to be delivered by the server/);
  t.deepEqual(await gatehouse.server.sessions.sessionsOf('carol'), []);
  await gatehouse.server.backchannel.runOnce(); // what the running server's delivery worker does on its next poll
  const [logoutToken] = await receiver.waitFor(1);
  const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${gatehouse.issuer}/jwks`)), {
    issuer: gatehouse.issuer,
    audience: 'web',
  });
  t.is(payload.sid, claims.sid);
});
