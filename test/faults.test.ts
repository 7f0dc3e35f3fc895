import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import * as oidc from 'openid-client';
import { QueryTypes } from 'sequelize';
import { createServer } from '../server/create-server.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase } from './helpers/databases.js';
import { discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { freePort, startTestServer } from './helpers/server.js';
import { hashPassword } from '../server/provider/passwords.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const run = promisify(execFile);

test('an unreachable database at start is a clear error and a non-zero exit', async (t) => {
  const error = await t.throwsAsync(
    createServer({ port: 0, logging: { level: 'silent' }, database: { url: 'postgres://root@127.0.0.1:1/nowhere' } }),
  );
  t.regex(error!.message, /^database: cannot connect to the postgres database: /);
  const cli = await t.throwsAsync<Error & { code: number; stderr: string }>(
    run('npx', ['tsx', 'server/cli.ts', 'start', '--db', 'postgres://root:s3cret@127.0.0.1:1/nowhere'], {
      env: { ...process.env, PORT: '0' },
    }),
  );
  t.is(cli?.code, 1);
  t.regex(cli?.stderr ?? '', /cannot connect to the postgres database/);
  t.false((cli?.stderr ?? '').includes('s3cret'), 'the password is not printed');
});

test('a database lost while running gives 503 pages and JSON, and the server recovers by itself', async (t) => {
  const database = await createTestDatabase('postgres');
  const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
  const url = new URL(database.url);
  url.port = String(proxy.port);
  const gatehouse = await startTestServer({
    databaseUrl: url.toString(),
    config: {
      database: { url: url.toString(), poolMax: 3 },
      serverSideSessions: { enabled: true },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid offline_access',
          skipConsent: true,
        },
        {
          client_id: 'admin',
          client_secret: 'admin-secret',
          grant_types: ['client_credentials'],
          scope: 'gatehouse:admin',
        },
      ],
    },
  });
  t.teardown(async () => {
    await gatehouse.close();
    await proxy.close();
    await database.drop();
  });
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  const browser = new Browser();
  const { tokens } = await signIn(browser, web, { username: 'alice', scope: 'openid offline_access' });
  const adminToken = (
    await oidc.clientCredentialsGrant(await discover(gatehouse.issuer, 'admin', 'admin-secret'), {
      scope: 'gatehouse:admin',
    })
  ).access_token;

  proxy.cut();
  const ready = await fetch(`${gatehouse.issuer}/readyz`);
  t.is(ready.status, 503);
  const page = await browser.request(
    `${gatehouse.issuer}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
  );
  t.is(page.status, 503);
  t.regex(page.headers.get('content-type') ?? '', /text\/html/);
  const token = await fetch(`${gatehouse.issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('web:web-secret').toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
  });
  t.is(token.status, 503);
  t.is(((await token.json()) as { error: string }).error, 'server_error');
  const api = await fetch(`${gatehouse.issuer}/admin/api/v1/sessions?subject=alice`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  t.is(api.status, 503);
  t.like(await api.json(), { error: 'temporarily_unavailable' });
  t.is((await fetch(`${gatehouse.issuer}/healthz`)).status, 200, 'the process is alive');

  proxy.restore();
  let recovered = false;
  for (let i = 0; i < 50 && !recovered; i++) {
    recovered = (await fetch(`${gatehouse.issuer}/readyz`)).status === 200;
    if (!recovered) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.true(recovered, 'ready again once the database is back');
  const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
  t.truthy(refreshed.access_token);
  t.false(
    (await signIn(browser, web, { username: 'alice', scope: 'openid' })).sawLogin,
    'the session survived the outage',
  );
});

test('SIGTERM under load finishes in-flight requests and leaves no half-written session', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sigterm-'));
  const port = await freePort();
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      port,
      database: { url: `sqlite:${join(dir, 'db.sqlite')}` },
      logging: { level: 'info' },
      serverSideSessions: { enabled: true },
      passwordHashing: { algorithm: 'scrypt', log2N: 14 },
      accounts: [{ subject: 'alice', passwordHash: await hashPassword('alice-password', { log2N: 14, r: 8, p: 1 }) }],
      clients: [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }],
    }),
  );
  // One process (no npx/tsx wrapper in between), so the signal reaches the server itself.
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'start', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  for (let i = 0; i < 600 && !output.includes('listening'); i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  t.true(output.includes('listening'), 'server started');
  const issuer = `http://localhost:${port}`;
  const web = await discover(issuer, 'web', 'web-secret');

  // Many sign-ins in flight (each costs a 16 MiB scrypt), then SIGTERM to the server process.
  const browsers = Array.from({ length: 12 }, () => new Browser());
  const logins = browsers.map((browser) =>
    signIn(browser, web, { username: 'alice', scope: 'openid' }).then(
      () => 'ok',
      (error: Error) => `failed: ${error.message}`,
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
  child.kill('SIGTERM');
  const results = await Promise.all(logins);
  const code = await exited;
  t.is(code, 0, 'clean exit');
  const completed = results.filter((r) => r === 'ok').length;
  t.log(`${completed} of ${results.length} sign-ins completed; the rest were refused after the signal`);
  t.true(
    results.every((r) => r === 'ok' || /fetch failed|ECONNREFUSED|socket/.test(r)),
    results.join('\n'),
  );

  // Nothing half-written: every stored session is readable and signed-in ones are complete.
  const { openDatabase } = await import('../stores/sequelize/connection.js');
  const sequelize = await openDatabase({ url: `sqlite:${join(dir, 'db.sqlite')}` });
  t.teardown(() => sequelize.close());
  const rows = await sequelize.query<{ data: string; subject_id: string | null; clients: string }>(
    'SELECT data, subject_id, clients FROM server_side_sessions',
    { type: QueryTypes.SELECT },
  );
  for (const row of rows) {
    const data = JSON.parse(row.data) as { uid: string; accountId?: string };
    t.truthy(data.uid);
    t.is(data.accountId ?? null, row.subject_id);
    JSON.parse(row.clients);
  }
  t.true(rows.filter((row) => row.subject_id).length >= completed, 'every completed sign-in left its session');
});
