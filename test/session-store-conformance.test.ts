/**
 * The session store conformance suite against every built-in store and the Redis example. Each SQL test gets its own
 * freshly migrated database (created and dropped around the test), each Redis test its own key prefix.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { QueryTypes, type Sequelize } from 'sequelize';
import { runSessionStoreConformance } from '../stores/conformance/index.js';
import { rejects } from '../stores/conformance/assertions.js';
import { ManualClock } from '../stores/clock.js';
import { MemorySessionStore } from '../stores/memory/session-store.js';
import { SequelizeSessionStore } from '../stores/sequelize/session-store.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { createMigrator, migrate } from '../stores/sequelize/migrate.js';
import { decodePagingToken, encodePagingToken } from '../stores/paging-token.js';
import type {
  ServerSideSession,
  SessionStoreContext,
  SessionStoreErrorCode,
  StoreLogger,
} from '../stores/session-store.js';
import { RedisSessionStore } from '../examples/redis-session-store/redis-session-store.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

/**
 * These tests check the store's rules, not the database bounds: connecting may take long on a machine running several
 * suites at once (MariaDB once took 3 s), so the connect bound is generous and statements are unbounded.
 */
const CONNECTION = (url: string) => ({ url, poolMax: 6, timeoutMs: 20_000, boundStatements: false });

const silent: StoreLogger = { debug() {}, info() {}, warn() {}, error() {} };
const REDIS_URL = process.env.GATEHOUSE_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** At most this many test databases per server at once (each holds a small connection pool). */
const DATABASE_SLOTS = 6;
const slots = new Map<TestDialect, Semaphore>();

class Semaphore {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

/** A freshly created and migrated database; `close` closes the connection and drops it. */
async function freshDatabase(
  dialect: TestDialect,
): Promise<{ sequelize: Sequelize; url: string; close: () => Promise<void> }> {
  const local = dialect === 'sqlite-memory' || dialect === 'sqlite-file';
  let semaphore = slots.get(dialect);
  if (!semaphore) {
    semaphore = new Semaphore(local ? 1000 : DATABASE_SLOTS);
    slots.set(dialect, semaphore);
  }
  const release = await semaphore.acquire();
  try {
    const database = await createTestDatabase(dialect);
    const sequelize = await openDatabase(CONNECTION(database.url));
    await migrate(sequelize);
    return {
      sequelize,
      url: database.url,
      close: async () => {
        try {
          await sequelize.close();
          await database.drop();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

function sqlDirectRead(sequelize: Sequelize) {
  return async (sessionId: string) => {
    const rows = await sequelize.query<Record<string, unknown>>(
      'SELECT * FROM server_side_sessions WHERE session_id = :sessionId',
      {
        type: QueryTypes.SELECT,
        replacements: { sessionId },
      },
    );
    return rows[0] ?? null;
  };
}

/** Damages a stored row behind the store's back: its `data` is no longer JSON. */
function sqlCorrupt(sequelize: Sequelize) {
  return async (sessionId: string) => {
    await sequelize.query(`UPDATE server_side_sessions SET data = '{"truncated": ' WHERE session_id = :sessionId`, {
      type: QueryTypes.UPDATE,
      replacements: { sessionId },
    });
  };
}

runSessionStoreConformance(test, {
  name: 'memory',
  provides: ['deleteMany'], // memory has no storage to read or damage behind the store's back
  async createStore(clock) {
    return { store: new MemorySessionStore({ clock, logger: silent }) };
  },
});

for (const dialect of ['sqlite-memory', 'sqlite-file', 'postgres', 'mariadb'] as const) {
  runSessionStoreConformance(test, {
    name: `sequelize ${dialect}`,
    provides: ['directRead', 'corrupt', 'deleteMany'],
    async createStore(clock, { logger }) {
      const { sequelize, close } = await freshDatabase(dialect);
      return {
        store: new SequelizeSessionStore({ clock, logger, sequelize }),
        directRead: sqlDirectRead(sequelize),
        corrupt: sqlCorrupt(sequelize),
        cleanup: close,
      };
    },
  });
}

const redisAdmin = new Redis(REDIS_URL, { lazyConnect: true });
test.after.always(async () => {
  if (redisAdmin.status !== 'wait') await redisAdmin.quit();
});

async function deleteKeys(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redisAdmin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redisAdmin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

runSessionStoreConformance(test, {
  name: 'redis example',
  provides: ['directRead', 'corrupt', 'deleteMany'],
  async createStore(clock, { logger }) {
    const keyPrefix = `gatehouse-test:${randomBytes(8).toString('hex')}:`;
    const store = new RedisSessionStore({ clock, logger, redisUrl: REDIS_URL, keyPrefix });
    return {
      store,
      async directRead(sessionId) {
        const hash = await redisAdmin.hgetall(`${keyPrefix}session:${sessionId}`);
        return Object.keys(hash).length ? hash : null;
      },
      async corrupt(sessionId) {
        await redisAdmin.hset(`${keyPrefix}session:${sessionId}`, 'data', '{"truncated": ');
      },
      async cleanup() {
        await store.close();
        await deleteKeys(keyPrefix);
      },
    };
  },
});

// --- beyond the shared suite -------------------------------------------------------------------------------------------

function expiredSession(clock: ManualClock, index: number): ServerSideSession {
  const now = clock.now().getTime();
  return {
    key: randomBytes(32).toString('base64url'),
    sessionId: `sid-${index}-${randomBytes(6).toString('hex')}`,
    subjectId: `subject-${index}`,
    displayName: null,
    clients: [{ clientId: 'app', sid: `s${index}` }],
    created: new Date(now - 10_000),
    renewed: new Date(now - 10_000),
    expires: new Date(now - 1000 - index),
    authTime: null,
    loginIp: null,
    loginUserAgent: null,
    lastIp: null,
    lastUserAgent: null,
    data: {},
  };
}

for (const dialect of ['sqlite-file', 'postgres', 'mariadb'] as const) {
  test(`sequelize ${dialect}: two instances on one database never hold the same expired session at once`, async (t) => {
    const database = await freshDatabase(dialect);
    t.teardown(database.close);
    const second = await openDatabase(CONNECTION(database.url));
    t.teardown(() => second.close());
    const clock = new ManualClock(Date.UTC(2001, 0, 1));
    const stores = [database.sequelize, second].map(
      (sequelize) => new SequelizeSessionStore({ clock, logger: silent, sequelize }),
    );
    const total = 300;
    const records = Array.from({ length: total }, (_, i) => expiredSession(clock, i));
    for (let i = 0; i < total; i += 30)
      await Promise.all(records.slice(i, i + 30).map((record) => stores[0].create(record)));
    // Each worker claims, "notifies", then completes every claim with delete (as the sweeper does).
    const drain = async (store: SequelizeSessionStore) => {
      const mine: string[] = [];
      for (let batch = await store.claimExpired(9, 60); batch.length; batch = await store.claimExpired(9, 60)) {
        mine.push(...batch.map((record) => record.sessionId));
        for (const record of batch) await store.delete(record.key);
      }
      return mine;
    };
    const claims = await Promise.all([...stores, ...stores, ...stores].map(drain));
    const claimed = claims.flat();
    t.is(claimed.length, total);
    t.is(new Set(claimed).size, total);
    const [{ remaining }] = await second.query<{ remaining: number }>(
      'SELECT COUNT(*) AS remaining FROM server_side_session_clients',
      { type: QueryTypes.SELECT },
    );
    t.is(Number(remaining), 0, 'the client rows went with their sessions');
  });

  test(`sequelize ${dialect}: a sweeper that dies after claiming loses nothing: another takes the session after the lease`, async (t) => {
    const database = await freshDatabase(dialect);
    t.teardown(database.close);
    const second = await openDatabase(CONNECTION(database.url));
    t.teardown(() => second.close());
    const clock = new ManualClock(Date.UTC(2001, 0, 1));
    const [crashed, survivor] = [database.sequelize, second].map(
      (sequelize) => new SequelizeSessionStore({ clock, logger: silent, sequelize }),
    );
    const records = Array.from({ length: 5 }, (_, i) => expiredSession(clock, i));
    for (const record of records) await crashed.create(record);
    t.is((await crashed.claimExpired(3, 120)).length, 3); // ... and never deletes them
    t.is((await survivor.claimExpired(10, 120)).length, 2);
    t.deepEqual(await survivor.claimExpired(10, 120), []);
    clock.advance(120_000);
    const retaken = await survivor.claimExpired(10, 120);
    t.is(retaken.length, 5, 'every abandoned claim is taken again');
    const [{ claimed }] = await second.query<{ claimed: number }>(
      'SELECT COUNT(*) AS claimed FROM server_side_sessions WHERE claimed_until IS NOT NULL',
      { type: QueryTypes.SELECT },
    );
    t.is(Number(claimed), 5);
  });
}

test('sequelize sqlite-file: migration 0004 goes down and up again, keeping the rows and the indexes', async (t) => {
  const database = await freshDatabase('sqlite-file');
  t.teardown(database.close);
  await migrationRoundTrip(t, database.sequelize);
});

for (const dialect of ['postgres', 'mariadb'] as const) {
  test(`sequelize ${dialect}: migration 0004 goes down and up again, keeping the rows and the indexes`, async (t) => {
    const database = await freshDatabase(dialect);
    t.teardown(database.close);
    await migrationRoundTrip(t, database.sequelize);
  });
}

async function migrationRoundTrip(t: ExecutionContext, sequelize: Sequelize): Promise<void> {
  const clock = new ManualClock(Date.UTC(2001, 0, 1));
  const store = new SequelizeSessionStore({ clock, logger: silent, sequelize });
  const record = expiredSession(clock, 1);
  await store.create(record);
  const migrator = createMigrator(sequelize);
  await migrator.down({ to: '0004-session-claims' });
  const columns = await sequelize.getQueryInterface().describeTable('server_side_sessions');
  t.false('claimed_until' in columns, 'down removes claimed_until');
  t.deepEqual(await store.getBySessionId(record.sessionId), record, 'the row survives');
  await migrator.up();
  t.true('claimed_until' in (await sequelize.getQueryInterface().describeTable('server_side_sessions')));
  const indexes = (await sequelize.getQueryInterface().showIndex('server_side_sessions')) as { name: string }[];
  const names = indexes.map((index) => index.name);
  t.true(names.includes('server_side_sessions_expires_claim'));
  t.true(names.includes('server_side_sessions_key'), 'the other indexes are intact');
  t.deepEqual(await store.claimExpired(10, 60), [record]);
  await t.throwsAsync(store.create(record), undefined, 'the unique key still holds');
}

test('sequelize sqlite-memory: a corrupt date or clients list is reported as corrupt too', async (t) => {
  const database = await freshDatabase('sqlite-memory');
  t.teardown(database.close);
  const clock = new ManualClock(Date.UTC(2001, 0, 1));
  const warnings: unknown[] = [];
  const logger = { ...silent, warn: (obj: object) => void warnings.push(obj) };
  const store = new SequelizeSessionStore({ clock, logger, sequelize: database.sequelize });
  const [badDate, badClients, badShape] = [1, 2, 3].map((i) => expiredSession(clock, i));
  for (const record of [badDate, badClients, badShape]) await store.create(record);
  const damage = (sql: string, sessionId: string) =>
    database.sequelize.query(sql, { type: QueryTypes.UPDATE, replacements: { sessionId } });
  await damage(
    `UPDATE server_side_sessions SET renewed = 'not a date' WHERE session_id = :sessionId`,
    badDate.sessionId,
  );
  await damage(
    `UPDATE server_side_sessions SET clients = '[{"clientId": 1}]' WHERE session_id = :sessionId`,
    badClients.sessionId,
  );
  await damage(`UPDATE server_side_sessions SET data = '[1, 2]' WHERE session_id = :sessionId`, badShape.sessionId);
  for (const record of [badDate, badClients, badShape]) {
    const error = await t.throwsAsync(store.getBySessionId(record.sessionId));
    t.is((error as { code?: string }).code, 'corrupt');
    t.truthy(error?.cause);
  }
  t.deepEqual(await store.claimExpired(10, 60), []);
  t.is(warnings.length, 3);
  for (const record of [badDate, badClients, badShape]) t.is(await store.getBySessionId(record.sessionId), null);
});

test('sequelize: the store refuses a context without a connection', (t) => {
  const context = { clock: new ManualClock(), logger: silent } as SessionStoreContext;
  t.throws(() => new SequelizeSessionStore(context), { message: /context\.sequelize/ });
});

test('sequelize sqlite-memory: a database failure rejects with code storage and keeps the cause', async (t) => {
  const database = await freshDatabase('sqlite-memory');
  t.teardown(database.close);
  const clock = new ManualClock(Date.UTC(2001, 0, 1));
  const store = new SequelizeSessionStore({ clock, logger: silent, sequelize: database.sequelize });
  await database.sequelize.query('DROP TABLE server_side_session_clients', { type: QueryTypes.RAW });
  const error = await t.throwsAsync(store.create(expiredSession(clock, 1)));
  t.is((error as { code?: string }).code, 'storage');
  t.truthy(error?.cause);
  t.is(await store.getBySessionId('nothing'), null, 'reads still work');
});

test('sequelize postgres: a database lost and refusing connections rejects with code unavailable, then recovers', async (t) => {
  const database = await createTestDatabase('postgres');
  const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
  const url = new URL(database.url);
  url.port = String(proxy.port);
  const sequelize = await openDatabase(CONNECTION(url.toString()));
  t.teardown(async () => {
    await sequelize.close();
    await proxy.close();
    await database.drop();
  });
  await migrate(sequelize);
  const clock = new ManualClock(Date.UTC(2001, 0, 1));
  const store = new SequelizeSessionStore({ clock, logger: silent, sequelize });
  const session = expiredSession(clock, 1);

  proxy.cut(); // open connections dropped, new ones refused: a passing condition, answered with 503
  for (const call of [() => store.getBySessionId(session.sessionId), () => store.create(session)]) {
    const error = await t.throwsAsync(call());
    t.is((error as { code?: string }).code, 'unavailable', error?.message);
    t.regex(error!.message, /^\w+: database unavailable: /);
    t.truthy(error?.cause);
  }
  proxy.restore();
  // A connection the pool still holds from before may fail once more (the same code) before it is replaced.
  for (let attempt = 1; ; attempt++) {
    const outcome = await store.create(session).then(
      () => 'stored',
      (error: { code?: string }) => error.code,
    );
    if (outcome === 'stored') break;
    t.is(outcome, 'unavailable');
    if (attempt === 20) throw new Error('still unavailable after the database came back');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.like(await store.getBySessionId(session.sessionId), { key: session.key }, 'works again once the database is back');
});

test('sequelize sqlite-memory: a value longer than its column is refused, not truncated', async (t) => {
  const database = await freshDatabase('sqlite-memory');
  t.teardown(database.close);
  const clock = new ManualClock(Date.UTC(2001, 0, 1));
  const store = new SequelizeSessionStore({ clock, logger: silent, sequelize: database.sequelize });
  const record = { ...expiredSession(clock, 1), displayName: 'x'.repeat(256) };
  const error = await t.throwsAsync(store.create(record));
  t.is((error as { code?: string }).code, 'invalid_argument');
  t.is(await store.getBySessionId(record.sessionId), null);
});

test('paging tokens round-trip and anything else decodes to null', (t) => {
  const position = { direction: 'previous' as const, created: Date.UTC(2024, 0, 1, 0, 0, 0, 5), sessionId: 'sid-ü-1' };
  t.deepEqual(decodePagingToken(encodePagingToken(position)), position);
  for (const token of [undefined, null, 42, '', '!!', 'e30', encodePagingToken(position).slice(1)]) {
    t.is(decodePagingToken(token), null);
  }
});

test('a check that expects a rejection names the call when a store resolves instead, or rejects with another code', async (t) => {
  // A store that takes an empty string as a subject (the rule the suite checks, and a store's likeliest slip).
  class LenientStore extends MemorySessionStore {
    override async getSessions(filter: { subjectId?: string; sessionId?: string }) {
      return filter.subjectId === '' ? [] : super.getSessions(filter);
    }
  }
  const store = new LenientStore({ clock: new ManualClock(new Date()), logger: silent, options: {} });
  /** The failure messages of one `rejects` check (the attempt is discarded: its failing is what this test expects). */
  const failures = async (call: string, run: () => Promise<unknown>, code: SessionStoreErrorCode) => {
    const attempt = await t.try((tt) => rejects(tt, call, run, code));
    attempt.discard();
    return attempt.passed ? [] : attempt.errors.map((error) => error.message);
  };
  t.deepEqual(
    await failures("getSessions({ subjectId: '' })", () => store.getSessions({ subjectId: '' }), 'invalid_filter'),
    ["getSessions({ subjectId: '' }): expected a rejection with code invalid_filter, but it resolved"],
  );
  t.deepEqual(await failures('getSessions({})', () => store.getSessions({}), 'duplicate'), [
    "getSessions({}): the rejection's code",
  ]);
  t.deepEqual(
    await failures('getSessions({})', () => store.getSessions({}), 'invalid_filter'),
    [],
    'the right rejection passes',
  );
});
