/**
 * A database that accepts connections and never answers (a partition, a stopped VM, a full queue), through a real TCP
 * proxy that black-holes the traffic: every request answers 503 with Retry-After within the bound of
 * `database.timeoutMs` (each kind of request: the provider's pages and endpoints, Gatehouse's API), `/readyz` within its
 * own shorter bound, the outage is logged once at warn with its cause and its end once at info, and the server serves
 * again by itself when the database answers. Writes cut by the bound are whole or absent.
 *
 * On PostgreSQL, MariaDB (the mariadb driver) and a mysql:// URL (mysql2, against MariaDB). On SQLite, whose database
 * cannot go silent over a network, the same bound applies to waiting for another process's write lock.
 */
import test, { type ExecutionContext } from 'ava';
import type { GatehouseConfigInput } from '../config/schema.js';
import * as oidc from 'openid-client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import sqlite3 from 'sqlite3';
import { openDatabase } from '../stores/sequelize/connection.js';
import { Browser } from './helpers/browser.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { captureLogs, LEVEL } from './helpers/log-capture.js';
import { authorizationPath, discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { sessionRecord } from './helpers/session-records.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const TIMEOUT_MS = 1500;
const READY_TIMEOUT_MS = 800;
/** Generous: the machine is shared. A wait for a pooled connection and then a statement may each take the bound. */
const MARGIN_MS = 2500;
const DEFAULT_PORTS: Record<string, number> = { postgres: 5432, mariadb: 3306, mysql: 3306 };

const CLIENTS: GatehouseConfigInput['clients'] = [
  {
    client_id: 'web',
    client_secret: 'web-secret',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid offline_access',
    skipConsent: true,
  },
  { client_id: 'admin', client_secret: 'admin-secret', grant_types: ['client_credentials'], scope: 'gatehouse:admin' },
];

interface Setup {
  gatehouse: TestServer;
  proxy: TcpProxy;
  lines: ReturnType<typeof captureLogs>['lines'];
  /** A connection straight to the database, beside the proxy. */
  direct: Sequelize;
}

async function setup(t: ExecutionContext, dialect: TestDialect): Promise<Setup> {
  const database = await createTestDatabase(dialect);
  const target = new URL(database.url);
  const proxy = await new TcpProxy({
    host: target.hostname,
    port: Number(target.port || DEFAULT_PORTS[dialect]),
  }).start();
  const url = new URL(database.url);
  url.port = String(proxy.port);
  const { logger, lines } = captureLogs('info');
  const gatehouse = await startTestServer({
    databaseUrl: url.toString(),
    logger,
    config: {
      database: { url: url.toString(), poolMax: 3, timeoutMs: TIMEOUT_MS, readyTimeoutMs: READY_TIMEOUT_MS },
      serverSideSessions: { enabled: true },
      clients: CLIENTS,
    },
  });
  const direct = await openDatabase({ url: database.url });
  t.teardown(async () => {
    proxy.resume();
    await gatehouse.close();
    await proxy.close();
    await direct.close();
    await database.drop();
  });
  return { gatehouse, proxy, lines, direct };
}

async function timed(
  request: () => Promise<Response>,
): Promise<{ status: number; retryAfter: string | null; ms: number; type: string }> {
  const started = performance.now();
  const response = await request();
  await response.arrayBuffer();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    ms: Math.round(performance.now() - started),
    type: response.headers.get('content-type') ?? '',
  };
}

for (const dialect of ['postgres', 'mariadb', 'mysql'] as TestDialect[]) {
  test(`${dialect}: a black-holed database gives every request 503 with Retry-After within the bound, logged once, and the server recovers`, async (t) => {
    const { gatehouse, proxy, lines } = await setup(t, dialect);
    const { issuer } = gatehouse;
    const web = await discover(issuer, 'web', 'web-secret');
    const browser = new Browser();
    const { tokens } = await signIn(browser, web, { username: 'alice', scope: 'openid offline_access' });
    const adminToken = (
      await oidc.clientCredentialsGrant(await discover(issuer, 'admin', 'admin-secret'), { scope: 'gatehouse:admin' })
    ).access_token;
    const form = (body: Record<string, string>, client: string) => ({
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(client).toString('base64')}`,
      },
      body: new URLSearchParams(body),
    });

    proxy.blackHole();
    const silentAt = performance.now();
    const requests: Record<string, () => Promise<Response>> = {
      readiness: () => fetch(`${issuer}/readyz`),
      'authorization page': () =>
        fetch(`${issuer}${authorizationPath()}`, { headers: { accept: 'text/html' }, redirect: 'manual' }),
      'refresh grant': () =>
        fetch(
          `${issuer}/token`,
          form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, 'web:web-secret'),
        ),
      'client credentials': () =>
        fetch(
          `${issuer}/token`,
          form({ grant_type: 'client_credentials', scope: 'gatehouse:admin' }, 'admin:admin-secret'),
        ),
      userinfo: () => fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      'admin API': () =>
        fetch(`${issuer}/admin/api/v1/sessions?subject=alice`, { headers: { authorization: `Bearer ${adminToken}` } }),
    };
    // Each kind twice at once, so some wait for a pooled connection (poolMax 3) while others wait for an answer.
    const names = [...Object.keys(requests), ...Object.keys(requests)];
    const results = await Promise.all(names.map((name) => timed(requests[name])));
    const worst: Record<string, number> = {};
    names.forEach((name, i) => {
      const { status, retryAfter, ms } = results[i];
      worst[name] = Math.max(worst[name] ?? 0, ms);
      t.is(status, 503, `${name}: ${status}`);
      t.is(retryAfter, '5', `${name} carries Retry-After`);
      const bound = name === 'readiness' ? READY_TIMEOUT_MS : 2 * TIMEOUT_MS;
      t.true(ms < bound + MARGIN_MS, `${name}: 503 after ${ms} ms (bound ${bound} ms)`);
    });
    t.log(
      `database.timeoutMs ${TIMEOUT_MS} ms, readyTimeoutMs ${READY_TIMEOUT_MS} ms; slowest 503 per request: ${JSON.stringify(worst)}`,
    );
    t.is((await fetch(`${issuer}/healthz`)).status, 200, 'the process is alive');

    // Later requests meet the same bound (connections to a silent server are dropped, not queued behind).
    const again = await timed(requests['refresh grant']);
    t.is(again.status, 503);
    t.true(again.ms < 2 * TIMEOUT_MS + MARGIN_MS, `a later request: ${again.ms} ms`);

    const unavailable = lines.filter((line) => line.event === 'database.unavailable');
    t.is(unavailable.length, 1, 'one line for the whole outage');
    t.is(unavailable[0].level, LEVEL.warn);
    t.truthy((unavailable[0].cause as { message?: string }).message, 'with its cause');
    t.deepEqual(
      lines.filter((line) => line.level >= LEVEL.error).map((line) => line.msg),
      [],
      'no error line',
    );

    proxy.resume();
    let ready = false;
    for (let i = 0; i < 60 && !ready; i++) {
      ready = (await fetch(`${issuer}/readyz`)).status === 200;
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    t.true(ready, 'ready again once the database answers');
    // The end of the outage is logged once nothing has failed for a while (2 x database.timeoutMs).
    for (let i = 0; i < 40 && !lines.some((line) => line.event === 'database.recovered'); i++)
      await new Promise((resolve) => setTimeout(resolve, 250));
    const recovered = lines.filter((line) => line.event === 'database.recovered');
    t.is(recovered.length, 1);
    t.true((recovered[0].failures as number) >= names.length, `every failure counted (${recovered[0].failures})`);
    t.log(
      `outage logged as ${recovered[0].downtimeMs} ms from ${Math.round(performance.now() - silentAt)} ms of silence`,
    );
    const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
    t.truthy(refreshed.access_token, 'the refresh token survived the outage');
  });
}

/** Another connection holds `table` (writes to it wait) until the returned function is called. */
async function holdTable(direct: Sequelize, dialect: TestDialect, table: string): Promise<() => Promise<void>> {
  const transaction = await direct.transaction();
  if (dialect === 'postgres') {
    await direct.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`, { transaction });
    return () => transaction.commit();
  }
  await direct.query(`LOCK TABLES ${table} WRITE`, { transaction });
  return async () => {
    await direct.query('UNLOCK TABLES', { transaction });
    await transaction.commit();
  };
}

async function count(direct: Sequelize, sql: string, replacements: Record<string, unknown> = {}): Promise<number> {
  const [row] = await direct.query<{ n: number | string }>(sql, { type: QueryTypes.SELECT, replacements });
  return Number(row.n);
}

/**
 * Every stored session is whole (its payload parses and agrees with its columns, its client rows match its clients
 * list) and every client row belongs to a stored session; every token payload parses. Returns the number of sessions.
 */
async function assertWhole(t: ExecutionContext, direct: Sequelize): Promise<number> {
  const sessions = await direct.query<{ session_id: string; subject_id: string | null; clients: string; data: string }>(
    'SELECT session_id, subject_id, clients, data FROM server_side_sessions',
    { type: QueryTypes.SELECT },
  );
  const clientRows = await direct.query<{ session_id: string; client_id: string }>(
    'SELECT session_id, client_id FROM server_side_session_clients',
    { type: QueryTypes.SELECT },
  );
  for (const row of sessions) {
    const data = JSON.parse(row.data) as { uid?: string; accountId?: string };
    t.is(data.uid, row.session_id, 'payload and row agree');
    t.is(data.accountId ?? null, row.subject_id);
    const listed = (JSON.parse(row.clients) as { clientId: string }[]).map((client) => client.clientId).sort();
    t.deepEqual(
      clientRows
        .filter((client) => client.session_id === row.session_id)
        .map((client) => client.client_id)
        .sort(),
      [...new Set(listed)],
      'client rows match',
    );
  }
  const ids = new Set(sessions.map((row) => row.session_id));
  t.deepEqual(
    clientRows.filter((row) => !ids.has(row.session_id)),
    [],
    'no client row without its session',
  );
  for (const { payload } of await direct.query<{ payload: string }>('SELECT payload FROM oidc_payloads', {
    type: QueryTypes.SELECT,
  }))
    JSON.parse(payload);
  return sessions.length;
}

async function waitReady(issuer: string): Promise<boolean> {
  for (let i = 0; i < 80; i++) {
    if ((await fetch(`${issuer}/readyz`)).status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

for (const dialect of ['postgres', 'mariadb', 'mysql'] as TestDialect[]) {
  test(`${dialect}: a session write that passes the bound half-way is rolled back whole, and the next one is stored whole`, async (t) => {
    const { gatehouse, direct } = await setup(t, dialect);
    const store = gatehouse.server.sessionStore!;
    const session = sessionRecord(`straddle-${dialect}`, 'silent-database-test');
    // The create inserts the session row, then its client rows: with the client table held, the first statement goes
    // through and the second waits past the bound, inside one transaction.
    const release = await holdTable(direct, dialect, 'server_side_session_clients');
    const started = performance.now();
    await t.throwsAsync(store.create(session));
    const ms = Math.round(performance.now() - started);
    await release();
    t.log(`the create failed after ${ms} ms`);
    t.true(ms < 2 * TIMEOUT_MS + MARGIN_MS, `within the bound (${ms} ms)`);
    const where = { id: session.sessionId };
    t.is(
      await count(direct, 'SELECT COUNT(*) AS n FROM server_side_sessions WHERE session_id = :id', where),
      0,
      'no session row',
    );
    t.is(
      await count(direct, 'SELECT COUNT(*) AS n FROM server_side_session_clients WHERE session_id = :id', where),
      0,
      'no client row',
    );

    await store.create(session);
    t.is(await count(direct, 'SELECT COUNT(*) AS n FROM server_side_sessions WHERE session_id = :id', where), 1);
    t.is(await count(direct, 'SELECT COUNT(*) AS n FROM server_side_session_clients WHERE session_id = :id', where), 1);
    await assertWhole(t, direct);
  });

  test(`${dialect}: sign-ins cut at any moment by a black hole leave every session and token whole or absent`, async (t) => {
    const { gatehouse, proxy, direct } = await setup(t, dialect);
    const web = await discover(gatehouse.issuer, 'web', 'web-secret');
    const warmUp = performance.now();
    await signIn(new Browser(), web, { username: 'bob', scope: 'openid offline_access' });
    const signInMs = performance.now() - warmUp;
    const outcomes: string[] = [];
    // The black hole falls at different points of a sign-in: its requests, its writes, its commits.
    for (const fraction of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      const signingIn = signIn(new Browser(), web, { username: 'alice', scope: 'openid offline_access' }).then(
        () => 'completed',
        (error: Error) => `cut: ${error.message.slice(0, 80)}`,
      );
      await new Promise((resolve) => setTimeout(resolve, fraction * signInMs));
      proxy.blackHole();
      outcomes.push(await signingIn);
      proxy.resume();
      t.true(await waitReady(gatehouse.issuer), 'ready again');
    }
    t.log(`a sign-in takes ~${Math.round(signInMs)} ms; outcomes: ${outcomes.join(' | ')}`);
    t.true(
      outcomes.some((outcome) => outcome.startsWith('cut')),
      'at least one sign-in was cut',
    );
    const sessions = await assertWhole(t, direct);
    t.true(
      sessions >= 1 + outcomes.filter((outcome) => outcome === 'completed').length,
      'every completed sign-in left its session',
    );
  });
}

test('sqlite-file: a write lock held by another process past database.timeoutMs gives 503 with Retry-After within the bound', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-silent-'));
  const file = join(dir, 'gatehouse.sqlite');
  const { logger, lines } = captureLogs('info');
  const gatehouse = await startTestServer({
    databaseUrl: `sqlite:${file}`,
    logger,
    // Only the bound: the busy wait per attempt is derived from it.
    config: { database: { url: `sqlite:${file}`, timeoutMs: TIMEOUT_MS }, clients: CLIENTS },
  });
  t.teardown(async () => {
    await gatehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) =>
      error ? reject(error) : resolve(opened),
    );
  });
  const run = (sql: string) =>
    new Promise<void>((resolve, reject) => db.run(sql, (error) => (error ? reject(error) : resolve())));
  await run('BEGIN IMMEDIATE');
  // Authorization requests write an Interaction each: they wait for the lock, in turn.
  const results = await Promise.all(
    Array.from({ length: 3 }, () =>
      timed(() =>
        fetch(`${gatehouse.issuer}${authorizationPath()}`, { headers: { accept: 'text/html' }, redirect: 'manual' }),
      ),
    ),
  );
  await run('COMMIT');
  await new Promise<void>((resolve) => db.close(() => resolve()));
  t.log(`database.timeoutMs ${TIMEOUT_MS} ms: 503 after ${results.map((result) => result.ms).join(', ')} ms`);
  for (const { status, retryAfter, ms } of results) {
    t.is(status, 503);
    t.is(retryAfter, '5');
    t.true(ms < 2 * TIMEOUT_MS + MARGIN_MS, `${ms} ms`);
  }
  t.is(lines.filter((line) => line.event === 'database.unavailable').length, 1, 'logged once');
  const again = await fetch(`${gatehouse.issuer}${authorizationPath()}`, {
    headers: { accept: 'text/html' },
    redirect: 'manual',
  });
  t.is(again.status, 303, 'served again once the lock is gone');
});
