/**
 * The database gateway (stores/sequelize/database.ts) that every Sequelize store goes through: on SQLite one writer of
 * the process at a time, whichever store module writes; and what it counts (statements, commits, round trips). Real
 * databases, each test on its own.
 */
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Sequelize } from 'sequelize';
import sqlite3 from 'sqlite3';
import { systemClock } from '../stores/clock.js';
import type { StoreLogger } from '../stores/session-store.js';
import { openDatabase } from '../stores/sequelize/connection.js';
import { Database, type StatementEvent } from '../stores/sequelize/database.js';
import { SequelizeDirectory } from '../stores/sequelize/directory.js';
import { migrate } from '../stores/sequelize/migrate.js';
import { createOperationalAdapter } from '../stores/sequelize/operational-adapter.js';
import { SequelizeSessionStore } from '../stores/sequelize/session-store.js';
import { createTestDatabase, type TestDialect } from './helpers/databases.js';
import { sessionRecord } from './helpers/session-records.js';

const silent: StoreLogger = { debug() {}, info() {}, warn() {}, error() {} };

async function migrated(t: ExecutionContext, dialect: TestDialect, sqliteBusyTimeoutMs?: number): Promise<Sequelize> {
  const database = await createTestDatabase(dialect);
  const sequelize = await openDatabase({ url: database.url, poolMax: 4, sqliteBusyTimeoutMs });
  t.teardown(async () => {
    await sequelize.close().catch(() => undefined);
    await database.drop();
  });
  await migrate(sequelize);
  return sequelize;
}

/** Runs `sql` on a plain sqlite3 connection (another writer, as another process would be). */
function run(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.run(sql, (error) => (error ? reject(error) : resolve())));
}

for (const dialect of ['sqlite-memory', 'sqlite-file'] as const) {
  test(`${dialect}: directory transactions and session-store transactions at the same time on one connection all commit`, async (t) => {
    // Before the gateway, the directory ran its transactions beside the session store's write queue: on the in-memory
    // database both shared Sequelize's one connection, where SQLite cannot nest a transaction in another.
    const sequelize = await migrated(t, dialect);
    const directory = new SequelizeDirectory(sequelize, systemClock);
    const store = new SequelizeSessionStore({ clock: systemClock, logger: silent, sequelize });
    const tokens = new (createOperationalAdapter(sequelize, systemClock))('AccessToken');
    const ids = Array.from({ length: 15 }, () => randomUUID());
    const outcomes = await Promise.allSettled(
      ids.flatMap((id, index) => [
        directory.saveUser({
          subject: `user-${index}`,
          username: `user${index}`,
          passwordHash: null,
          claims: { name: `User ${index}` },
          roles: [],
          disabled: false,
          source: 'api',
        }),
        store.create(sessionRecord(id, 'gateway-test')),
        directory.saveClient({
          clientId: `client-${index}`,
          metadata: { redirect_uris: ['https://rp.example/cb'] },
          settings: {},
          disabled: false,
          source: 'api',
        }),
        tokens.upsert(id, { jti: id, grantId: `grant-${index}` }, 60),
        store
          .update({ ...sessionRecord(ids[0], 'gateway-test'), lastIp: `10.0.0.${index}` })
          .catch((error: { code?: string }) => {
            if (error.code !== 'not_found') throw error; // the first session may not be stored yet
          }),
      ]),
    );
    const failures = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [String((outcome.reason as Error).message)] : [],
    );
    t.deepEqual(failures, []);
    for (const [index, id] of ids.entries()) {
      t.truthy(await store.getBySessionId(id), `session ${index} stored`);
      t.is((await directory.getUser(`user-${index}`))?.username, `user${index}`);
      t.truthy(await directory.getClient(`client-${index}`));
      t.deepEqual(await tokens.find(id), { jti: id, grantId: `grant-${index}` });
    }
  });
}

test("sqlite-file: a transaction that met another writer's lock past the busy timeout runs again as a whole", async (t) => {
  const sequelize = await migrated(t, 'sqlite-file', 300);
  const db = Database.of(sequelize);
  const [{ file }] = await db.select<{ file: string }>(`SELECT file FROM pragma_database_list WHERE name = 'main'`);
  const other = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened: sqlite3.Database = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) =>
      error ? reject(error) : resolve(opened),
    );
  });
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  await run(other, 'BEGIN IMMEDIATE');
  await run(
    other,
    `INSERT INTO gatehouse_secrets (name, value, created_at, updated_at) VALUES ('other', 'x', '2030-01-01', '2030-01-01')`,
  );
  let runs = 0;
  const written = db.transaction(async (tx) => {
    runs++;
    await tx.write(
      `INSERT INTO gatehouse_secrets (name, value, created_at, updated_at) VALUES ('mine', 'y', '2030-01-01', '2030-01-01')`,
    );
    await tx.write(`UPDATE gatehouse_secrets SET value = 'z' WHERE name = 'mine'`);
  });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // past three busy timeouts of 300 ms, inside the five
  await run(other, 'COMMIT');
  await written;
  t.true(runs >= 2, `the transaction ran ${runs} times`);
  t.deepEqual(
    await db.select(`SELECT name, value FROM gatehouse_secrets WHERE name IN ('mine', 'other') ORDER BY name`),
    [
      { name: 'mine', value: 'z' },
      { name: 'other', value: 'x' },
    ],
  );
});

for (const dialect of ['sqlite-memory', 'sqlite-file', 'postgres', 'mariadb'] as const) {
  test(`${dialect}: the gateway counts statements, commits and round trips as they are sent`, async (t) => {
    const sequelize = await migrated(t, dialect);
    const db = Database.of(sequelize);
    const store = new SequelizeSessionStore({ clock: systemClock, logger: silent, sequelize });
    const tokens = new (createOperationalAdapter(sequelize, systemClock))('AccessToken');
    const seen: StatementEvent[] = [];
    const stop = db.observe((event) => seen.push(event));
    const delta = async (work: () => Promise<unknown>) => {
      const before = db.activity();
      seen.length = 0;
      await work();
      const after = db.activity();
      return {
        reads: after.reads - before.reads,
        writes: after.writes - before.writes,
        commits: after.commits - before.commits,
        roundTrips: after.roundTrips - before.roundTrips,
      };
    };

    // A token write and read on the fast path: one statement each, the write commits by itself.
    t.deepEqual(await delta(() => tokens.upsert('t1', { jti: 't1' }, 60)), {
      reads: 0,
      writes: 1,
      commits: 1,
      roundTrips: 1,
    });
    t.deepEqual(await delta(() => tokens.find('t1')), { reads: 1, writes: 0, commits: 0, roundTrips: 1 });
    // A session with one client: two INSERTs in one transaction, one commit; BEGIN and COMMIT are round trips too.
    const created = await delta(() => store.create(sessionRecord('s1', 'count-test')));
    t.like(created, { reads: 0, writes: 2, commits: 1 });
    t.is(created.roundTrips, seen.length);
    t.deepEqual(
      seen.map((event) => event.kind).filter((kind) => kind !== 'control'),
      ['begin', 'write', 'write', 'commit'],
    );
    t.true(seen.filter((event) => event.kind === 'write').every((event) => event.inTransaction));
    // A write outside a transaction through Sequelize commits by itself.
    t.deepEqual(await delta(() => tokens.revokeByGrantId('g-none')), {
      reads: 0,
      writes: 1,
      commits: 1,
      roundTrips: 1,
    });
    stop();
    seen.length = 0;
    await tokens.find('t1');
    t.deepEqual(seen, [], 'a stopped listener hears nothing more');
  });
}
