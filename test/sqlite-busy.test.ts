/**
 * SQLITE_BUSY on a SQLite file database: another process (here a second sqlite3 handle) holds the write lock with
 * `BEGIN IMMEDIATE` and writes, while a Gatehouse write is in flight.
 *
 * What the database gateway does (stores/sequelize/database.ts): a writer waits `database.sqliteBusyTimeoutMs` for the
 * lock (the busy timeout every connection gets as it opens, stores/sequelize/sqlite-driver.ts), then fails with
 * SQLITE_BUSY, which the gateway retries: five attempts in all, 100/110/121/133 ms apart. So a lock held a little longer
 * than the busy timeout costs a retry and nothing else; a lock held past 5 x busy timeout (+ ~0.5 s) fails the write:
 * a 503 over HTTP, SessionStoreError `storage` from the session store, and nothing is written.
 *
 * The server-side session store runs its writes in transactions, which Sequelize runs on a connection of their own,
 * with the same busy timeout; the gateway runs a transaction that met SQLITE_BUSY again as a whole, on the same budget.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { QueryTypes } from 'sequelize';
import sqlite3 from 'sqlite3';
import { SessionStoreError } from '../stores/session-store.js';
import { systemClock } from '../stores/clock.js';
import { Database, type StatementEvent } from '../stores/sequelize/database.js';
import { createOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { Browser } from './helpers/browser.js';
import { authorizationPath, discover, REDIRECT_URI, signIn } from './helpers/relying-party.js';
import type { GatehouseConfigInput } from '../config/schema.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { sessionRecord } from './helpers/session-records.js';

/** The busy timeout configured for the HTTP tests: short, so the whole retry budget is about 2.5 s. */
const BUSY_MS = 400;
/** Five attempts, each waiting the busy timeout, with Sequelize's default backoff between them. */
const ATTEMPTS = 5;
const BACKOFF_MS = [100, 110, 121, 133.1].reduce((sum, delay) => sum + delay, 0);

const CLIENTS = [{ client_id: 'web', client_secret: 'web-secret', redirect_uris: [REDIRECT_URI], skipConsent: true }];

/** A second connection to the database file that takes the write lock and writes, like another process would. */
class WriteLock {
  static async take(file: string): Promise<WriteLock> {
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) =>
        error ? reject(error) : resolve(opened),
      );
    });
    const lock = new WriteLock(db);
    await lock.#run('BEGIN IMMEDIATE');
    const now = new Date().toISOString();
    await lock.#run(
      'INSERT INTO login_attempts (key, failures, window_start, lockouts, updated_at) VALUES (?, 0, ?, 0, ?)',
      ['lock-holder', now, now],
    );
    return lock;
  }

  readonly #db: sqlite3.Database;
  private constructor(db: sqlite3.Database) {
    this.#db = db;
  }

  #run(sql: string, params: unknown[] = []): Promise<void> {
    return new Promise((resolve, reject) => this.#db.run(sql, params, (error) => (error ? reject(error) : resolve())));
  }

  /** Commits the holder's own write and closes its connection. */
  async release(): Promise<void> {
    await this.#run('COMMIT');
    await new Promise<void>((resolve, reject) => this.#db.close((error) => (error ? reject(error) : resolve())));
  }
}

interface BusyServer extends TestServer {
  file: string;
  /** Every statement sent (each retry attempt counts), in order, as the gateway saw it. */
  statements: StatementEvent[];
}

async function startSqliteFileServer(t: ExecutionContext, config: GatehouseConfigInput = {}): Promise<BusyServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-busy-'));
  const file = join(dir, 'gatehouse.sqlite');
  const gatehouse = await startTestServer({
    databaseUrl: `sqlite:${file}`,
    config: { ...config, clients: CLIENTS, database: { url: `sqlite:${file}`, sqliteBusyTimeoutMs: BUSY_MS } },
  });
  t.teardown(async () => {
    await gatehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const statements: StatementEvent[] = [];
  Database.of(gatehouse.server.sequelize).observe((event) => statements.push(event));
  return { ...gatehouse, file, statements };
}

function authorizationUrl(issuer: string): string {
  return `${issuer}${authorizationPath()}`;
}

async function count(gatehouse: TestServer, sql: string, replacements: Record<string, unknown> = {}): Promise<number> {
  const [row] = await gatehouse.server.sequelize.query<{ n: number }>(sql, { type: QueryTypes.SELECT, replacements });
  return Number(row.n);
}

const interactionWrites = (statements: StatementEvent[]) =>
  statements.filter(({ sql, params }) => /^INSERT INTO oidc_payloads/.test(sql.trim()) && params?.[0] === 'Interaction')
    .length;

test('an authorization request that meets a held write lock is retried and succeeds once the lock is released', async (t) => {
  const gatehouse = await startSqliteFileServer(t);
  const holdMs = 2 * BUSY_MS + 200; // past two busy timeouts, well inside the ~2.5 s budget
  const lock = await WriteLock.take(gatehouse.file);
  const started = Date.now();
  const pending = fetch(authorizationUrl(gatehouse.issuer), { redirect: 'manual', headers: { accept: 'text/html' } });
  await sleep(holdMs);
  await lock.release();
  const response = await pending;
  const elapsed = Date.now() - started;

  t.is(response.status, 303, await response.clone().text());
  t.true(elapsed >= holdMs, `the request waited for the lock (${elapsed} ms)`);
  const attempts = interactionWrites(gatehouse.statements);
  t.log(`lock held ${holdMs} ms; the Interaction write took ${attempts} attempts, the request ${elapsed} ms`);
  t.true(attempts >= 2, `SQLITE_BUSY was retried (${attempts} attempts)`);
  t.true(attempts <= ATTEMPTS);

  // The interaction was written and is readable: its login page renders.
  const uid = /^\/interaction\/([\w-]+)$/.exec(response.headers.get('location') ?? '')?.[1];
  t.truthy(uid);
  t.truthy(await gatehouse.server.provider.Interaction.find(uid!), 'the Interaction is stored');
  const browser = new Browser();
  browser.store(response.headers.getSetCookie());
  const page = await browser.request(`${gatehouse.issuer}/interaction/${uid}`);
  t.is(page.status, 200);
  t.true(page.body.includes('name="password"'));
  t.is(
    await count(gatehouse, `SELECT COUNT(*) AS n FROM login_attempts WHERE key = 'lock-holder'`),
    1,
    "the other writer's commit is there too",
  );
});

test('a sign-in whose writes meet a held write lock completes once the lock is released, with no 5xx', async (t) => {
  const gatehouse = await startSqliteFileServer(t);
  const web = await discover(gatehouse.issuer, 'web', 'web-secret');
  // Hold the lock across the whole sign-in (authorization request, login, resume, code): every write waits and retries.
  const lock = await WriteLock.take(gatehouse.file);
  const statuses: number[] = [];
  const browser = new (class extends Browser {
    override async request(url: string | URL, init: Parameters<Browser['request']>[1] = {}) {
      const page = await super.request(url, init);
      statuses.push(page.status);
      return page;
    }
  })();
  const signingIn = signIn(browser, web, { username: 'alice', scope: 'openid' });
  await sleep(BUSY_MS + 300);
  await lock.release();
  const { claims } = await signingIn;
  t.is(claims.sub, 'alice');
  t.true(
    statuses.every((status) => status < 500),
    `statuses: ${statuses.join(', ')}`,
  );
  t.true(interactionWrites(gatehouse.statements) >= 2, 'the first write was retried');
});

test('a write lock held past the whole retry budget: 503, nothing half-written, and the next request works', async (t) => {
  const gatehouse = await startSqliteFileServer(t);
  const budgetMs = ATTEMPTS * BUSY_MS + BACKOFF_MS;
  const interactionsBefore = await count(
    gatehouse,
    `SELECT COUNT(*) AS n FROM oidc_payloads WHERE model = 'Interaction'`,
  );
  const lock = await WriteLock.take(gatehouse.file);
  const started = Date.now();
  let released = false;
  const releasing = (async () => {
    await sleep(budgetMs + 3000);
    released = true;
    await lock.release();
  })();
  const response = await fetch(authorizationUrl(gatehouse.issuer), {
    redirect: 'manual',
    headers: { accept: 'text/html' },
  });
  const elapsed = Date.now() - started;
  const body = await response.text();
  t.false(released, 'the answer came while the lock was still held');
  t.is(response.status, 503);
  t.regex(response.headers.get('content-type') ?? '', /text\/html/);
  t.false(body.includes('SQLITE_BUSY'), 'no driver details on the page');
  t.is(interactionWrites(gatehouse.statements), ATTEMPTS, 'every attempt of the budget was used');
  t.true(elapsed >= ATTEMPTS * BUSY_MS, `the budget was spent waiting (${elapsed} ms)`);
  t.log(`503 after ${elapsed} ms (budget ~${Math.round(budgetMs)} ms)`);
  t.deepEqual(response.headers.getSetCookie(), [], 'no cookie points at an interaction that was never stored');

  await releasing;
  t.is(
    await count(gatehouse, `SELECT COUNT(*) AS n FROM oidc_payloads WHERE model = 'Interaction'`),
    interactionsBefore,
    'no Interaction row',
  );
  const again = await fetch(authorizationUrl(gatehouse.issuer), {
    redirect: 'manual',
    headers: { accept: 'text/html' },
  });
  t.is(again.status, 303, 'served again once the lock is gone');
});

test('a session-store create that meets a held write lock retries past its busy timeout and is stored whole', async (t) => {
  const gatehouse = await startSqliteFileServer(t, { serverSideSessions: { enabled: true } });
  const store = gatehouse.server.sessionStore!;
  const session = sessionRecord('busy-retried', 'busy-test');
  const holdMs = BUSY_MS + 300; // one busy timeout of the store's transaction, then a retry that gets the lock
  const lock = await WriteLock.take(gatehouse.file);
  const started = Date.now();
  const creating = store.create(session).then(
    () => 'stored',
    (error: unknown) => error,
  );
  await sleep(holdMs);
  await lock.release();
  const outcome = await creating;
  const elapsed = Date.now() - started;
  t.is(outcome, 'stored', String((outcome as Error)?.message ?? outcome));
  const attempts = gatehouse.statements.filter(({ sql }) =>
    /^INSERT INTO server_side_sessions /.test(sql.trim()),
  ).length;
  t.log(`lock held ${holdMs} ms; the session INSERT took ${attempts} attempts, the create ${elapsed} ms`);
  t.true(attempts >= 2, `SQLITE_BUSY was retried (${attempts} attempts)`);

  const stored = await store.getBySessionId(session.sessionId);
  t.truthy(stored);
  t.like(stored, { key: session.key, subjectId: 'alice', clients: session.clients, data: session.data });
  t.is(
    await count(gatehouse, 'SELECT COUNT(*) AS n FROM server_side_session_clients WHERE session_id = :id', {
      id: session.sessionId,
    }),
    1,
  );
});

test('a session-store create with the write lock held past the whole retry budget rejects with `unavailable` and writes nothing', async (t) => {
  const gatehouse = await startSqliteFileServer(t, { serverSideSessions: { enabled: true } });
  const store = gatehouse.server.sessionStore!;
  const session = sessionRecord('busy-failed', 'busy-test');
  const lock = await WriteLock.take(gatehouse.file);
  const started = Date.now();
  const error = await t.throwsAsync(store.create(session), { instanceOf: SessionStoreError });
  const elapsed = Date.now() - started;
  await lock.release();
  t.is((error as SessionStoreError).code, 'unavailable', 'a passing condition, not a failure of the store');
  t.regex(error!.message, /^create: database unavailable: SQLITE_BUSY/);
  const attempts = gatehouse.statements.filter(({ sql }) =>
    /^INSERT INTO server_side_sessions /.test(sql.trim()),
  ).length;
  t.log(`rejected after ${elapsed} ms and ${attempts} attempts`);
  t.is(attempts, ATTEMPTS);
  t.true(elapsed >= ATTEMPTS * BUSY_MS, `the configured busy timeout was waited on each attempt (${elapsed} ms)`);
  t.true(elapsed < ATTEMPTS * 5000, `not the 5 s default (${elapsed} ms)`);

  t.is(await store.getBySessionId(session.sessionId), null);
  t.is(
    await count(gatehouse, 'SELECT COUNT(*) AS n FROM server_side_sessions WHERE session_id = :id', {
      id: session.sessionId,
    }),
    0,
  );
  t.is(
    await count(gatehouse, 'SELECT COUNT(*) AS n FROM server_side_session_clients WHERE session_id = :id', {
      id: session.sessionId,
    }),
    0,
  );
  // The store works again once the lock is gone.
  await store.create(session);
  t.truthy(await store.getBySessionId(session.sessionId));
});

test("a token write through the operational adapter waits for another connection's write lock and lands after it, never beside it", async (t) => {
  // Guards the locking between Gatehouse's connections and any other one: the write must not be visible while the
  // lock is held (a second copy of SQLite in the process, e.g. node:sqlite beside the sqlite3 module, would not see
  // the other connection's POSIX locks and would write at once).
  const gatehouse = await startSqliteFileServer(t);
  const adapter = new (createOperationalAdapter(gatehouse.server.sequelize, systemClock))('AccessToken');
  const lock = await WriteLock.take(gatehouse.file);
  const writing = adapter.upsert('after-the-lock', { jti: 'after-the-lock' }, 60);
  await sleep(BUSY_MS / 2);
  t.is(
    await count(gatehouse, `SELECT COUNT(*) AS n FROM oidc_payloads WHERE id = 'after-the-lock'`),
    0,
    'nothing written while the lock is held',
  );
  await lock.release();
  await writing;
  t.deepEqual(await adapter.find('after-the-lock'), { jti: 'after-the-lock' });
});
