/**
 * The shared SQLite connection and libuv's thread pool. Token statements go to sqlite3 directly on Sequelize's shared
 * connection (stores/sequelize/direct-sql.ts), and each statement holds a pool thread while it runs or waits for the
 * connection. Session-store transactions run on their own connections, holding the write lock between statements.
 * If token writes could take every thread, one of them waiting for a transaction's write lock would leave that
 * transaction no thread to commit on: both stall for the whole busy timeout. Real SQLite file, real server.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ServerSideSession } from '../stores/session-store.js';
import { createOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { systemClock } from '../stores/clock.js';
import { startTestServer } from './helpers/server.js';

const BUSY_MS = 3000;

function sessionRecord(sessionId: string): ServerSideSession {
  const now = new Date();
  return {
    key: `key-${sessionId}`, sessionId, subjectId: 'alice', displayName: 'Alice Anderson',
    clients: [{ clientId: 'web', sid: `sid-${sessionId}` }],
    created: now, renewed: now, expires: new Date(now.getTime() + 3_600_000), authTime: now,
    loginIp: '127.0.0.1', loginUserAgent: 'threads-test', lastIp: '127.0.0.1', lastUserAgent: 'threads-test',
    data: { uid: sessionId, accountId: 'alice' },
  };
}

test('token writes and session-store transactions at once on a SQLite file: none waits out the busy timeout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-threads-'));
  const url = `sqlite:${join(dir, 'gatehouse.sqlite')}`;
  const gatehouse = await startTestServer({ databaseUrl: url, config: { database: { url, sqliteBusyTimeoutMs: BUSY_MS }, serverSideSessions: { enabled: true } } });
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
    const transactions = Array.from({ length: 12 }, () => timed(() => store.create(sessionRecord(randomUUID()))));
    slowest = Math.max(slowest, ...(await Promise.all([...writes, ...transactions])));
  }
  t.log(`slowest statement or transaction: ${Math.round(slowest)} ms (busy timeout ${BUSY_MS} ms)`);
  t.true(slowest < BUSY_MS, `something waited out the busy timeout (${Math.round(slowest)} ms)`);
});
