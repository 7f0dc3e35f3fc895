/**
 * Operators see and undo sign-in locks on a running server: the admin API (`GET` / `DELETE
 * /admin/api/v1/users/{subject}/lockout`) and `gatehouse users unlock` from another process on the same database.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import * as oidc from 'openid-client';
import { Browser, formWithAction, type Page } from './helpers/browser.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { Guesser, guessMany } from './helpers/guesser.js';
import type { JsonBody } from './helpers/json-body.js';
import { discover, REDIRECT_URI, startAuthorization } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const clients = [
  { client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true },
  {
    client_id: 'gatehouse-admin',
    client_secret: 'admin-secret',
    grant_types: ['client_credentials' as const],
    scope: 'gatehouse:admin',
  },
];

function gatehouse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('GATEHOUSE_')));
  env.PATH = [dirname(process.execPath), env.PATH].join(':');
  return new Promise((resolve) => {
    execFile(join(ROOT, 'server/bin.js'), args, { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

async function setup(t: ExecutionContext, dialect: TestDialect) {
  const database = await createTestDatabase(dialect);
  const server = await startTestServer({ databaseUrl: database.url, config: { clients, proxy: true } });
  t.teardown(async () => {
    await server.close();
    await database.drop();
  });
  const web = await discover(server.issuer, 'web', 'web-secret');
  const admin = (
    await oidc.clientCredentialsGrant(await discover(server.issuer, 'gatehouse-admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;
  return { server, web, admin, databaseUrl: database.url };
}

async function attempt(web: oidc.Configuration, username: string, password: string): Promise<Page> {
  const browser = new Browser();
  const login = await startAuthorization(browser, web);
  const form = formWithAction(login.body, '/login');
  return browser.navigate(
    new URL(form.action, login.url),
    { form: { ...form.fields, username, password } },
    new URL(login.url).origin,
  );
}

async function api(server: TestServer, method: string, path: string, token?: string) {
  const response = await fetch(`${server.issuer}/admin/api/v1${path}`, {
    method,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, body: (await response.json()) as JsonBody };
}

/** Ten guesses from ten forwarded addresses: the name's untrusted limit. */
async function lockOut(web: oidc.Configuration, username: string) {
  const guesser = await Guesser.open(web);
  await guessMany(guesser, username, 10, (i) => ({ forwardedFor: `198.18.20.${i + 1}` }));
}

test('the admin API shows a user’s lockout and lifts it; the user signs in from a new browser at once', async (t) => {
  const { server, web, admin } = await setup(t, 'sqlite-memory');
  const unlocked: unknown[] = [];
  server.server.events.on('login.unlocked', (detail) => unlocked.push(detail));
  const clear = await api(server, 'GET', '/users/alice/lockout', admin);
  t.is(clear.status, 200);
  t.deepEqual(clear.body, {
    subject: 'alice',
    username: 'alice',
    locked: false,
    untrustedClients: { lockedUntil: null, failures: 0, level: 0 },
    addresses: [],
    devices: { failing: 0, invalidated: 0 },
  });

  const guesser = await Guesser.open(web);
  for (let i = 0; i < 5; i++) await guesser.guess('alice', 'wrong'); // 127.0.0.1 is locked out of alice...
  await lockOut(web, 'alice'); // ...and 5 more failures from elsewhere lock every untrusted client out of it
  t.is((await attempt(web, 'alice', 'alice-password')).status, 429);
  const locked = await api(server, 'GET', '/users/alice/lockout', admin);
  t.is(locked.status, 200);
  t.like(locked.body, { locked: true, untrustedClients: { failures: 0, level: 1 } });
  t.true(Date.parse(locked.body.untrustedClients.lockedUntil) > Date.now());
  t.is(
    locked.body.addresses.length,
    6,
    '127.0.0.1, and five forwarded addresses with a failure each (the other five were refused unchecked)',
  );
  t.truthy(locked.body.addresses.find((entry: { address: string }) => entry.address === '127.0.0.1').lockedUntil);

  t.is((await api(server, 'GET', '/users/alice/lockout')).status, 401);
  t.is((await api(server, 'DELETE', '/users/alice/lockout')).status, 401);
  t.is((await api(server, 'GET', '/users/nobody/lockout', admin)).status, 404);
  t.is((await api(server, 'DELETE', '/users/nobody/lockout', admin)).status, 404);

  const lifted = await api(server, 'DELETE', '/users/alice/lockout', admin);
  t.is(lifted.status, 200);
  t.like(lifted.body, {
    subject: 'alice',
    locked: false,
    untrustedClients: { lockedUntil: null, failures: 0, level: 0 },
    addresses: [],
    cleared: 7,
  });
  t.deepEqual(unlocked, [{ subject: 'alice', actor: 'gatehouse-admin', cleared: 7 }]);
  const page = await attempt(web, 'alice', 'alice-password');
  t.true(page.url.startsWith(REDIRECT_URI), 'signed in from a new browser, no wait');
});

for (const dialect of ['sqlite-file', 'postgres'] as TestDialect[]) {
  test(`gatehouse users unlock lifts a lock on a running server (${dialect})`, async (t) => {
    const { server, web, databaseUrl } = await setup(t, dialect);
    await lockOut(web, 'bob');
    t.is((await attempt(web, 'bob', 'bob-password')).status, 429);

    const run = await gatehouse(['users', 'unlock', '--db', databaseUrl, '--subject', 'bob']);
    t.is(run.code, 0, run.stderr);
    t.regex(
      run.stdout,
      /^Unlocked user bob \(username bob\): 11 counters cleared\.\nLifted: untrusted clients \(locked until \d{4}-\d\d-\d\dT[\d:.]+Z\)\.\n$/,
    );
    t.true(
      (await attempt(web, 'bob', 'bob-password')).url.startsWith(REDIRECT_URI),
      'the running server lets bob in at once',
    );

    const again = await gatehouse(['users', 'unlock', '--db', databaseUrl, '--subject', 'bob', '--json']);
    t.is(again.code, 0, again.stderr);
    t.like(JSON.parse(again.stdout), { subject: 'bob', username: 'bob', before: { locked: false } });
    t.is((await server.server.throttle.status('bob')).untrustedLockedUntil, null);

    const unknown = await gatehouse(['users', 'unlock', '--db', databaseUrl, '--subject', 'nobody']);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /no user with subject "nobody"/);
    const usage = await gatehouse(['users', 'unlock', '--db', databaseUrl]);
    t.is(usage.code, 2);
    t.regex(usage.stderr, /--subject is required/);
  });
}
