/**
 * The shared SQLite connection and libuv's thread pool. Token statements go to sqlite3 directly on Sequelize's shared
 * connection (the gateway's fast path, stores/sequelize/prepared-path.ts), and each statement holds a pool thread while
 * it runs or waits for the connection. Transactions run on their own connections, holding the write lock between
 * statements. If token writes could take every thread, one of them waiting for a transaction's write lock would leave
 * that transaction no thread to commit on: both stall for the whole busy timeout. The gateway's write queue
 * (stores/sequelize/database.ts) is what prevents it. Real SQLite file, real server.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomUUID, scrypt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../stores/clock.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { isDatabaseUnavailable } from '../stores/sequelize/errors.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { createOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { Database } from '../stores/sequelize/database.js';
import { startTestServer } from './helpers/server.js';
import { sessionRecord } from './helpers/session-records.js';

const require = createRequire(import.meta.url);

const BUSY_MS = 3000;

test('token writes and session-store transactions at once on a SQLite file: none waits out the busy timeout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-threads-'));
  const url = `sqlite:${join(dir, 'gatehouse.sqlite')}`;
  const gatehouse = await startTestServer({
    databaseUrl: url,
    config: { database: { url, sqliteBusyTimeoutMs: BUSY_MS }, serverSideSessions: { enabled: true } },
  });
  t.teardown(async () => {
    await gatehouse.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const store = gatehouse.server.sessionStore!;
  const tokens = new (createOperationalAdapter(gatehouse.server.sequelize, systemClock))('AccessToken');
  const timed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  let slowest = 0;
  for (let round = 0; round < 5; round++) {
    const writes = Array.from({ length: 200 }, () => {
      const id = randomUUID();
      return timed(() => tokens.upsert(id, { jti: id, grantId: `g-${id}` }, 60));
    });
    const transactions = Array.from({ length: 12 }, () =>
      timed(() => store.create(sessionRecord(randomUUID(), 'threads-test'))),
    );
    slowest = Math.max(slowest, ...(await Promise.all([...writes, ...transactions])));
  }
  t.log(`slowest statement or transaction: ${Math.round(slowest)} ms (busy timeout ${BUSY_MS} ms)`);
  t.true(slowest < BUSY_MS, `something waited out the busy timeout (${Math.round(slowest)} ms)`);
});

async function migratedFile(t: ExecutionContext, busyMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-threads-'));
  const file = join(dir, 'gatehouse.sqlite');
  const sequelize = await openDatabase({ url: `sqlite:${file}`, sqliteBusyTimeoutMs: busyMs });
  await migrate(sequelize);
  t.teardown(async () => {
    await sequelize.close().catch(() => undefined); // a test may have closed it already
    rmSync(dir, { recursive: true, force: true });
  });
  return { file, sequelize, tokens: new (createOperationalAdapter(sequelize, systemClock))('AccessToken') };
}

const since = (started: number) => Math.round(performance.now() - started);

test("look-ups arriving while a shared-connection write waits for a session transaction's lock leave the transaction a thread to commit on", async (t) => {
  const busyMs = 3000;
  const { sequelize, tokens } = await migratedFile(t, busyMs);
  await tokens.upsert('t1', { jti: 't1' }, 60);
  const started = performance.now();
  // A gateway transaction on its own connection, holding the write lock across an await.
  const transaction = Database.of(sequelize)
    .transaction(async (tx) => {
      await tx.write(
        `INSERT INTO gatehouse_secrets (name, value, created_at, updated_at) VALUES ('held', 'x', '2030-01-01', '2030-01-01')`,
      );
      await sleep(100);
      await tx.select('SELECT 1');
    })
    .then(() => since(started));
  await sleep(20);
  // A write on the shared connection (through Sequelize, as revokeByGrantId is) waits for that transaction...
  const revoke = tokens.revokeByGrantId('g').then(() => since(started));
  await sleep(10);
  // ...while look-ups of every kind arrive on the same connection.
  const finds = Promise.all(
    Array.from(
      { length: 12 },
      (_, index) => [tokens.find('t1'), tokens.findByUid('u'), tokens.findByUserCode('c')][index % 3],
    ),
  ).then(() => since(started));
  const [committed, revoked, found] = await Promise.all([transaction, revoke, finds]);
  t.log(`transaction ${committed} ms, revocation ${revoked} ms, look-ups ${found} ms (busy timeout ${busyMs} ms)`);
  t.true(Math.max(committed, revoked, found) < busyMs, 'nothing waited out the busy timeout');
});

test('while another process holds the write lock, waiting token statements leave the thread pool to the rest (scrypt)', async (t) => {
  const { file, tokens } = await migratedFile(t, 3000);
  await tokens.upsert('t1', { jti: 't1' }, 60);
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `
    const sqlite3 = require(${JSON.stringify(require.resolve('sqlite3'))});
    const db = new sqlite3.Database(${JSON.stringify(file)});
    db.exec('BEGIN IMMEDIATE', () => { console.log('locked'); setTimeout(() => db.exec('COMMIT', () => process.exit(0)), 1500); });
  `,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => void holder.kill());
  await new Promise((resolve) => holder.stdout.once('data', resolve));
  const write = tokens.upsert('t2', { jti: 't2' }, 60);
  await sleep(20);
  const finds = Promise.all(
    Array.from(
      { length: 12 },
      (_, index) => [tokens.find('t1'), tokens.findByUid('u'), tokens.findByUserCode('c')][index % 3],
    ),
  );
  await sleep(20);
  const started = performance.now();
  await new Promise((resolve, reject) =>
    scrypt('password', 'salt', 32, { N: 1024 }, (error) => (error ? reject(error) : resolve(undefined))),
  );
  const hashed = since(started);
  await Promise.all([write, finds]);
  t.log(`scrypt took ${hashed} ms while the token statements waited for the other process's lock`);
  t.true(hashed < 500, `scrypt waited for a pool thread (${hashed} ms)`);
  t.deepEqual(await tokens.find('t2'), { jti: 't2' }, 'the write landed once the lock was released');
});

test('closing the database while token statements are in flight: close succeeds, later statements get a 503-class error', async (t) => {
  const { sequelize, tokens } = await migratedFile(t, 1000);
  await tokens.upsert('x', { jti: 'x' }, 60);
  const inFlight = Array.from({ length: 20 }, (_, index) =>
    tokens.find(`x${index}`).then(
      () => 'done',
      (error: Error) => error,
    ),
  );
  const closing = sequelize.close();
  const late = [tokens.findByUserCode('late'), tokens.upsert('late', { jti: 'late' }, 60)].map((call) =>
    call.then(
      () => 'done',
      (error: Error) => error,
    ),
  );
  await t.notThrowsAsync(closing, 'sqlite3 refuses to close with unfinalized statements; none were left');
  for (const outcome of await Promise.all([...inFlight, ...late])) {
    if (outcome === 'done') continue;
    t.true(
      isDatabaseUnavailable(outcome),
      `a statement after close failed as "unavailable": ${(outcome as Error).message}`,
    );
  }
  t.true(
    (await Promise.all(late)).every((outcome) => outcome !== 'done'),
    'nothing ran after close',
  );
});
