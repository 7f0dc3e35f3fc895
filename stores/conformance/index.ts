/**
 * The session store conformance suite (`gatehouse-idp/conformance`): every promise of the SessionStore contract, as ava
 * tests. Gatehouse runs it against each built-in store and the Redis example; run it against your own store class.
 *
 * Rules of the suite:
 * - `createStore(clock)` is called once per test and must return a store over EMPTY storage (a fresh database, schema,
 *   key prefix...): some tests look at the whole store (unfiltered queries, expiry). Tests run concurrently.
 * - The store must take its time from the given ManualClock. The clock starts in 2001, long before the wall clock, so a
 *   store that reads `Date.now()` fails the expiry tests.
 * - `directRead(sessionId)`, when given, reads the stored row for that session id straight from the backing storage,
 *   bypassing the store, in any shape (or null when there is none). The suite checks every write through it: the row
 *   exists or not, and its serialized form contains (or no longer contains) the values written.
 * - `corrupt(sessionId)`, when given, damages the stored record for that session id directly in the backing storage so
 *   that the store can no longer read it (e.g. writes text that is not JSON into its `data`). The corrupt-record tests
 *   run only when it is given (they pass trivially otherwise), and check that the store logs a warning through the
 *   logger passed as `createStore`'s second argument: build the store with that logger.
 * - `cleanup()` runs after each test, pass or fail.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import { ManualClock } from '../clock.js';
import {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type ServerSideSession,
  type SessionQueryResult,
  type SessionStore,
  type SessionStoreErrorCode,
  type StoreLogger,
} from '../session-store.js';

export interface ConformanceStore {
  store: SessionStore;
  /** The stored row for a session id, read directly from the storage (not through the store), or null. */
  directRead?: (sessionId: string) => Promise<Record<string, unknown> | null>;
  /** Damages the stored record for a session id so that the store cannot read it (bypassing the store). */
  corrupt?: (sessionId: string) => Promise<void>;
  cleanup?: () => Promise<void>;
}

/** What `createStore` is given besides the clock. */
export interface ConformanceHarness {
  /** A logger that records what it is given; stores built with it let the suite check their warnings. */
  logger: StoreLogger;
}

export interface ConformanceOptions {
  /** Prefixes every test title, e.g. `postgres`. */
  name: string;
  /** A store over empty storage, using `clock` for time (and `harness.logger` for logs). Called once per test. */
  createStore(clock: ManualClock, harness: ConformanceHarness): Promise<ConformanceStore>;
}

/** How to run the suite from your own test file (shown in the README). */
export const conformanceUsage = `// test/my-session-store.test.ts
import test from 'ava';
import { runSessionStoreConformance } from 'gatehouse-idp/conformance';
import { MySessionStore } from '../my-session-store.js';

runSessionStoreConformance(test, {
  name: 'my store',
  async createStore(clock, { logger }) {
    const store = new MySessionStore({ clock, logger, prefix: \`test:\${crypto.randomUUID()}:\` });
    return { store, cleanup: () => store.dropEverything() };
  },
});
`;

/** 2001-02-03T04:05:06.789Z: milliseconds on purpose, and decades before any wall clock the suite runs under. */
const START = Date.UTC(2001, 1, 3, 4, 5, 6, 789);
const HOUR = 3_600_000;
/** The lease the claim tests take, in seconds. */
const LEASE = 300;

type Context = {
  clock: ManualClock;
  store: SessionStore;
  direct: ConformanceStore['directRead'];
  /** The harness's corrupt hook, if any. */
  corrupt: ConformanceStore['corrupt'];
  /** Warnings the store logged through the harness logger (message and object). */
  warnings: { msg?: string; obj: object }[];
  /** A unique id with a readable prefix. */
  id(label: string): string;
  /** A valid record (unique key, session id and subject) created now, expiring in an hour; override anything. */
  session(overrides?: Partial<ServerSideSession>): ServerSideSession;
  /** Creates `count` sessions, the i-th created i seconds before now; resolves to them in forward (query) order. */
  seed(count: number, overrides?: (index: number) => Partial<ServerSideSession>): Promise<ServerSideSession[]>;
};

export function runSessionStoreConformance(test: TestFn, options: ConformanceOptions): void {
  const define = (title: string, body: (t: ExecutionContext, c: Context) => Promise<void>) => {
    test(`${options.name}: ${title}`, async (t) => body(t, await open(t, options)));
  };
  /** A test that needs the harness's `corrupt` hook; without one it only records that it was skipped. */
  const defineCorrupt = (
    title: string,
    body: (t: ExecutionContext, c: Context, corrupt: NonNullable<ConformanceStore['corrupt']>) => Promise<void>,
  ) => {
    define(`corrupt records: ${title}`, async (t, c) => {
      if (!c.corrupt) {
        t.log('skipped: the harness gives no corrupt(sessionId) hook');
        t.pass();
        return;
      }
      await body(t, c, c.corrupt);
    });
  };

  // --- get / create ---------------------------------------------------------------------------------------------

  define('get returns null for a missing key', async (t, { store, id }) => {
    t.is(await store.get(id('missing-key')), null);
  });

  define('getBySessionId returns null for a missing session id', async (t, { store, id }) => {
    t.is(await store.getBySessionId(id('missing-sid')), null);
  });

  define('create then get maps every field', async (t, { store, direct, session, clock }) => {
    const now = clock.now().getTime();
    const record = session({
      displayName: 'Alice Example',
      clients: [
        { clientId: 'app-one', sid: 'sid-one' },
        { clientId: 'app-two', sid: 'sid-two' },
      ],
      created: new Date(now - 5_001),
      renewed: new Date(now - 1_002),
      expires: new Date(now + HOUR + 3),
      authTime: new Date(now - 7_004),
      loginIp: '203.0.113.7',
      loginUserAgent: 'Mozilla/5.0 (login agent)',
      lastIp: '2001:db8::1',
      lastUserAgent: 'Mozilla/5.0 (last agent)',
      data: { account: 'alice', nested: { list: [1, 'two', null, true], empty: {} }, unicode: 'Zoë ☃ 🐧' },
    });
    await store.create(record);
    t.deepEqual(await store.get(record.key), record);
    t.deepEqual(await store.getBySessionId(record.sessionId), record);
    await checkDirect(t, direct, record.sessionId, {
      contains: [record.key, record.sessionId, record.subjectId!, 'Alice Example', 'app-two', 'Mozilla/5.0 (last agent)'],
    });
  });

  define('create keeps null fields null (an anonymous session with no expiry)', async (t, { store, session }) => {
    const record = session({
      subjectId: null,
      displayName: null,
      expires: null,
      authTime: null,
      loginIp: null,
      loginUserAgent: null,
      lastIp: null,
      lastUserAgent: null,
      clients: [],
      data: {},
    });
    await store.create(record);
    t.deepEqual(await store.get(record.key), record);
  });

  define('records are copies: mutating a returned or passed record changes nothing stored', async (t, { store, session }) => {
    const record = session({ clients: [{ clientId: 'app', sid: 's1' }], data: { n: 1 } });
    const expected = structuredClone(record);
    await store.create(record);
    record.data.n = 2;
    record.clients.push({ clientId: 'other', sid: 's2' });
    record.created.setTime(0);
    const got = (await store.get(expected.key))!;
    t.deepEqual(got, expected);
    got.data.n = 3;
    got.clients.length = 0;
    t.deepEqual(await store.get(expected.key), expected);
  });

  define('create rejects a duplicate key with code duplicate and keeps the original', async (t, c) => {
    const original = c.session({ displayName: 'original' });
    await c.store.create(original);
    const clash = c.session({ key: original.key, displayName: 'intruder' });
    await rejects(t, () => c.store.create(clash), 'duplicate');
    t.deepEqual(await c.store.get(original.key), original);
    t.is(await c.store.getBySessionId(clash.sessionId), null);
    await checkDirect(t, c.direct, clash.sessionId, null);
    await checkDirect(t, c.direct, original.sessionId, { contains: ['original'], lacks: ['intruder'] });
  });

  define('create rejects a duplicate session id with code duplicate and keeps the original', async (t, c) => {
    const original = c.session({ displayName: 'original' });
    await c.store.create(original);
    const clash = c.session({ sessionId: original.sessionId, displayName: 'intruder' });
    await rejects(t, () => c.store.create(clash), 'duplicate');
    t.deepEqual(await c.store.getBySessionId(original.sessionId), original);
    t.is(await c.store.get(clash.key), null);
    await checkDirect(t, c.direct, original.sessionId, { contains: [original.key, 'original'], lacks: [clash.key, 'intruder'] });
  });

  // --- update ---------------------------------------------------------------------------------------------------

  define('update replaces every field of the record with that session id', async (t, c) => {
    const before = c.session({ displayName: 'Before', clients: [{ clientId: 'app-old', sid: 'x' }], data: { v: 1 } });
    await c.store.create(before);
    c.clock.advance(60_000);
    const now = c.clock.now().getTime();
    const after: ServerSideSession = {
      ...before,
      subjectId: c.id('new-subject'),
      displayName: 'After',
      clients: [{ clientId: 'app-new', sid: 'y' }, { clientId: 'app-newer', sid: 'z' }],
      renewed: new Date(now),
      expires: new Date(now + 2 * HOUR),
      authTime: new Date(now - 1),
      loginIp: '198.51.100.1',
      loginUserAgent: 'login-ua-2',
      lastIp: '198.51.100.2',
      lastUserAgent: 'last-ua-2',
      data: { v: 2, added: ['x'] },
    };
    await c.store.update(after);
    t.deepEqual(await c.store.get(before.key), after);
    t.deepEqual(await c.store.getSessions({ subjectId: before.subjectId! }), [], 'gone from the old subject');
    t.deepEqual(await c.store.getSessions({ subjectId: after.subjectId! }), [after]);
    t.deepEqual(ids((await c.store.querySessions({ clientId: 'app-old' })).results), []);
    t.deepEqual(ids((await c.store.querySessions({ clientId: 'app-newer' })).results), [after.sessionId]);
    await checkDirect(t, c.direct, before.sessionId, { contains: ['After', 'app-newer', 'last-ua-2'], lacks: ['Before', 'app-old'] });
  });

  define('update with a new key (rotation) leaves one record, found by the new key only', async (t, c) => {
    const record = c.session();
    await c.store.create(record);
    const rotated = { ...record, key: c.id('rotated-key') };
    await c.store.update(rotated);
    t.is(await c.store.get(record.key), null);
    t.deepEqual(await c.store.get(rotated.key), rotated);
    t.deepEqual(await c.store.getSessions({ subjectId: record.subjectId! }), [rotated]);
    t.deepEqual(await c.store.getSessions({ sessionId: record.sessionId }), [rotated]);
    await checkDirect(t, c.direct, record.sessionId, { contains: [rotated.key], lacks: [record.key] });
  });

  define('update of a missing session id rejects with not_found and creates nothing', async (t, c) => {
    const record = c.session();
    await rejects(t, () => c.store.update(record), 'not_found');
    t.is(await c.store.get(record.key), null);
    t.is(await c.store.getBySessionId(record.sessionId), null);
    await checkDirect(t, c.direct, record.sessionId, null);
  });

  define("update to another session's key rejects with duplicate and changes nothing", async (t, c) => {
    const first = c.session();
    const second = c.session();
    await c.store.create(first);
    await c.store.create(second);
    await rejects(t, () => c.store.update({ ...second, key: first.key }), 'duplicate');
    t.deepEqual(await c.store.get(first.key), first);
    t.deepEqual(await c.store.get(second.key), second);
  });

  // --- delete ---------------------------------------------------------------------------------------------------

  define('delete removes the record from every lookup', async (t, c) => {
    const record = c.session({ clients: [{ clientId: 'app', sid: 's' }], expires: new Date(c.clock.now().getTime() + 1) });
    const other = c.session({ subjectId: record.subjectId });
    await c.store.create(record);
    await c.store.create(other);
    await c.store.delete(record.key);
    t.is(await c.store.get(record.key), null);
    t.is(await c.store.getBySessionId(record.sessionId), null);
    t.deepEqual(await c.store.getSessions({ subjectId: record.subjectId! }), [other]);
    t.deepEqual(ids((await c.store.querySessions({})).results), [other.sessionId]);
    c.clock.advance(HOUR * 2);
    t.deepEqual(ids(await c.store.claimExpired(10, LEASE)), [other.sessionId]);
    await checkDirect(t, c.direct, record.sessionId, null);
  });

  define('delete of a missing key does not throw', async (t, { store, id }) => {
    await t.notThrowsAsync(() => store.delete(id('never-stored')));
  });

  // --- deleteMany (optional: tested when the store has it) -------------------------------------------------------

  /** A test of the optional deleteMany; a store without it only records that it was skipped. */
  const defineDeleteMany = (title: string, body: (t: ExecutionContext, c: Context, deleteMany: (keys: string[]) => Promise<number>) => Promise<void>) => {
    define(`deleteMany: ${title}`, async (t, c) => {
      if (typeof c.store.deleteMany !== 'function') {
        t.log('skipped: the store has no deleteMany (Gatehouse deletes key by key)');
        t.pass();
        return;
      }
      await body(t, c, (keys) => c.store.deleteMany!(keys));
    });
  };

  defineDeleteMany('removes exactly the listed records from every lookup and counts them', async (t, c, deleteMany) => {
    const subjectId = c.id('subject');
    const gone = [
      c.session({ subjectId, clients: [{ clientId: 'app', sid: 's1' }] }),
      c.session({ subjectId, expires: new Date(c.clock.now().getTime() + 1) }),
      c.session({ subjectId: null }),
    ];
    const kept = c.session({ subjectId, clients: [{ clientId: 'app', sid: 's2' }] });
    for (const record of [...gone, kept]) await c.store.create(record);
    t.is(await deleteMany([...gone.map((r) => r.key), c.id('never-stored')]), 3, 'the missing key is not counted');
    for (const record of gone) {
      t.is(await c.store.get(record.key), null);
      t.is(await c.store.getBySessionId(record.sessionId), null);
      await checkDirect(t, c.direct, record.sessionId, null);
    }
    t.deepEqual(await c.store.getSessions({ subjectId }), [kept]);
    t.deepEqual(ids((await c.store.querySessions({ clientId: 'app' })).results), [kept.sessionId]);
    c.clock.advance(HOUR * 2);
    t.deepEqual(ids(await c.store.claimExpired(10, LEASE)), [kept.sessionId], 'a deleted record is never claimed');
    await checkDirect(t, c.direct, kept.sessionId, { contains: [kept.key] });
  });

  defineDeleteMany('an empty list deletes nothing; a repeated key is deleted once', async (t, c, deleteMany) => {
    const record = c.session();
    await c.store.create(record);
    t.is(await deleteMany([]), 0);
    t.deepEqual(await c.store.get(record.key), record);
    t.is(await deleteMany([record.key, record.key]), 1);
    t.is(await c.store.get(record.key), null);
    t.is(await deleteMany([record.key]), 0, 'idempotent');
  });

  defineDeleteMany('completes a batch of claims, more than one chunk of keys', async (t, c, deleteMany) => {
    const now = c.clock.now().getTime();
    const records = Array.from({ length: 1203 }, (_, i) => c.session({ expires: new Date(now - 1000 - i) }));
    for (const record of records) await c.store.create(record);
    const claimed = await c.store.claimExpired(records.length, LEASE);
    t.is(claimed.length, records.length);
    t.is(await deleteMany(claimed.map((r) => r.key)), records.length);
    c.clock.advance(LEASE * 1000 + 1);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [], 'nothing left to hand out again');
  });

  defineDeleteMany('refuses anything but an array of strings with invalid_argument, deleting nothing', async (t, c, deleteMany) => {
    const record = c.session();
    await c.store.create(record);
    for (const bad of [undefined, null, record.key, [record.key, 42], [{ key: record.key }]]) {
      await rejects(t, () => deleteMany(bad as unknown as string[]), 'invalid_argument');
    }
    t.deepEqual(await c.store.get(record.key), record);
  });

  // --- getSessions / deleteSessions -----------------------------------------------------------------------------

  define('getSessions by subject returns exactly that subject\'s sessions', async (t, c) => {
    const subjectId = c.id('subject');
    const mine = [c.session({ subjectId }), c.session({ subjectId }), c.session({ subjectId })];
    for (const record of [...mine, c.session(), c.session({ subjectId: null })]) await c.store.create(record);
    t.deepEqual(sortById(await c.store.getSessions({ subjectId })), sortById(mine));
    t.deepEqual(await c.store.getSessions({ subjectId: c.id('nobody') }), []);
  });

  define('getSessions by session id returns that one session', async (t, c) => {
    const record = c.session();
    await c.store.create(record);
    await c.store.create(c.session({ subjectId: record.subjectId }));
    t.deepEqual(await c.store.getSessions({ sessionId: record.sessionId }), [record]);
    t.deepEqual(await c.store.getSessions({ sessionId: c.id('no-such-sid') }), []);
  });

  define('getSessions by subject and session id matches both (AND)', async (t, c) => {
    const record = c.session();
    await c.store.create(record);
    t.deepEqual(await c.store.getSessions({ subjectId: record.subjectId!, sessionId: record.sessionId }), [record]);
    t.deepEqual(await c.store.getSessions({ subjectId: c.id('other'), sessionId: record.sessionId }), []);
  });

  define('getSessions rejects an empty filter with invalid_filter', async (t, { store }) => {
    await rejects(t, () => store.getSessions({}), 'invalid_filter');
    await rejects(t, () => store.getSessions({ subjectId: '', sessionId: undefined }), 'invalid_filter');
  });

  define('deleteSessions by subject deletes only that subject\'s sessions and counts them', async (t, c) => {
    const subjectId = c.id('subject');
    const mine = [c.session({ subjectId }), c.session({ subjectId })];
    const other = c.session();
    for (const record of [...mine, other]) await c.store.create(record);
    t.is(await c.store.deleteSessions({ subjectId }), 2);
    t.deepEqual(await c.store.getSessions({ subjectId }), []);
    t.deepEqual(await c.store.get(other.key), other);
    for (const record of mine) {
      t.is(await c.store.get(record.key), null);
      await checkDirect(t, c.direct, record.sessionId, null);
    }
    t.is(await c.store.deleteSessions({ subjectId }), 0);
  });

  define('deleteSessions by session id, and by both, deletes only the match', async (t, c) => {
    const subjectId = c.id('subject');
    const [a, b, d] = [c.session({ subjectId }), c.session({ subjectId }), c.session({ subjectId })];
    for (const record of [a, b, d]) await c.store.create(record);
    t.is(await c.store.deleteSessions({ sessionId: a.sessionId }), 1);
    t.is(await c.store.deleteSessions({ subjectId: c.id('other'), sessionId: b.sessionId }), 0);
    t.is(await c.store.deleteSessions({ subjectId, sessionId: b.sessionId }), 1);
    t.deepEqual(await c.store.getSessions({ subjectId }), [d]);
    await checkDirect(t, c.direct, a.sessionId, null);
    await checkDirect(t, c.direct, b.sessionId, null);
    await checkDirect(t, c.direct, d.sessionId, { contains: [d.key] });
  });

  define('deleteSessions rejects an empty filter with invalid_filter and deletes nothing', async (t, c) => {
    const record = c.session();
    await c.store.create(record);
    await rejects(t, () => c.store.deleteSessions({}), 'invalid_filter');
    await rejects(t, () => c.store.deleteSessions({ subjectId: '' }), 'invalid_filter');
    t.deepEqual(await c.store.get(record.key), record);
  });

  // --- claimExpired ---------------------------------------------------------------------------------------------

  define('claimExpired returns nothing when nothing is expired', async (t, c) => {
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
    await c.store.create(c.session());
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
  });

  define('claimExpired returns expired records and keeps them stored until deleted', async (t, c) => {
    const now = c.clock.now().getTime();
    const expired = [
      c.session({ expires: new Date(now - 1), clients: [{ clientId: 'app', sid: 's' }] }),
      c.session({ expires: new Date(now - HOUR) }),
    ];
    for (const record of expired) await c.store.create(record);
    t.deepEqual(sortById(await c.store.claimExpired(10, LEASE)), sortById(expired));
    for (const record of expired) {
      t.deepEqual(await c.store.get(record.key), record, 'a claimed record is still readable');
      t.deepEqual(await c.store.getSessions({ subjectId: record.subjectId! }), [record]);
      await checkDirect(t, c.direct, record.sessionId, { contains: [record.key] });
    }
    t.deepEqual(ids((await c.store.querySessions({ clientId: 'app' })).results), [expired[0].sessionId]);
  });

  define('claimExpired returns at most count records', async (t, c) => {
    const now = c.clock.now().getTime();
    for (let i = 1; i <= 5; i++) await c.store.create(c.session({ expires: new Date(now - i * 1000) }));
    t.is((await c.store.claimExpired(2, LEASE)).length, 2);
    t.is((await c.store.claimExpired(2, LEASE)).length, 2);
    t.is((await c.store.claimExpired(2, LEASE)).length, 1);
    t.is((await c.store.claimExpired(2, LEASE)).length, 0);
  });

  define('claimExpired takes the longest-expired records first', async (t, c) => {
    const now = c.clock.now().getTime();
    const records = [3, 1, 4, 2].map((minutes) => c.session({ expires: new Date(now - minutes * 60_000) }));
    for (const record of records) await c.store.create(record);
    const first = await c.store.claimExpired(2, LEASE);
    t.deepEqual(sortById(first), sortById([records[0], records[2]]));
  });

  define('claimExpired leaves unexpired records (expiring now or later)', async (t, c) => {
    const now = c.clock.now().getTime();
    const expired = c.session({ expires: new Date(now - 1) });
    const atNow = c.session({ expires: new Date(now) });
    const later = c.session({ expires: new Date(now + 1) });
    for (const record of [expired, atNow, later]) await c.store.create(record);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [expired]);
    t.deepEqual(await c.store.get(atNow.key), atNow);
    t.deepEqual(await c.store.get(later.key), later);
    await checkDirect(t, c.direct, later.sessionId, { contains: [later.key] });
  });

  define('claimExpired ignores records with no expiry', async (t, c) => {
    const forever = c.session({ expires: null });
    await c.store.create(forever);
    c.clock.advance(100 * 365 * 24 * HOUR);
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
    t.deepEqual(await c.store.get(forever.key), forever);
  });

  define('claimExpired finds a record updated from no expiry to an expiry', async (t, c) => {
    const record = c.session({ expires: null });
    await c.store.create(record);
    const updated = { ...record, expires: new Date(c.clock.now().getTime() + 1000) };
    await c.store.update(updated);
    c.clock.advance(2000);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [updated]);
  });

  define('claimExpired skips a record updated from an expiry to none', async (t, c) => {
    const record = c.session({ expires: new Date(c.clock.now().getTime() + 1000) });
    await c.store.create(record);
    const updated = { ...record, expires: null };
    await c.store.update(updated);
    c.clock.advance(2000);
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
    t.deepEqual(await c.store.get(record.key), updated);
  });

  define('claimExpired decides expiry by the injected clock, not the wall clock', async (t, c) => {
    // Both expiry times are decades in the past of the wall clock; only the store's clock says which is due.
    const now = c.clock.now().getTime();
    const soon = c.session({ expires: new Date(now + HOUR) });
    const later = c.session({ expires: new Date(now + 3 * HOUR) });
    await c.store.create(soon);
    await c.store.create(later);
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
    c.clock.advance(2 * HOUR);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [soon]);
    await c.store.delete(soon.key);
    c.clock.advance(2 * HOUR);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [later]);
  });

  define('claimExpired does not hand out a claimed record again while its lease runs', async (t, c) => {
    const now = c.clock.now().getTime();
    const [first, second] = [c.session({ expires: new Date(now - 2000) }), c.session({ expires: new Date(now - 1000) })];
    await c.store.create(first);
    await c.store.create(second);
    t.deepEqual(await c.store.claimExpired(1, LEASE), [first]);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [second], 'only the unclaimed one');
    t.deepEqual(await c.store.claimExpired(10, LEASE), []);
    c.clock.advance(LEASE * 1000 - 1);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [], 'still held 1 ms before the lease ends');
    await checkDirect(t, c.direct, first.sessionId, { contains: [first.key] });
  });

  define('claimExpired hands a record out again once its lease has run out (at-least-once)', async (t, c) => {
    const record = c.session({ expires: new Date(c.clock.now().getTime() - 1000) });
    await c.store.create(record);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [record]);
    c.clock.advance(LEASE * 1000);
    t.deepEqual(await c.store.claimExpired(10, 60), [record], 'the lease has ended: claimed again');
    t.deepEqual(await c.store.claimExpired(10, LEASE), [], 'held by the new claim');
    c.clock.advance(60_000);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [record], 'the second (shorter) lease has ended too');
  });

  define('delete completes a claim: the record is gone and never handed out again', async (t, c) => {
    const now = c.clock.now().getTime();
    const done = c.session({ expires: new Date(now - 2000), clients: [{ clientId: 'app', sid: 's' }] });
    const abandoned = c.session({ expires: new Date(now - 1000) });
    await c.store.create(done);
    await c.store.create(abandoned);
    t.deepEqual(sortById(await c.store.claimExpired(10, LEASE)), sortById([done, abandoned]));
    await c.store.delete(done.key);
    t.is(await c.store.get(done.key), null);
    t.deepEqual(await c.store.getSessions({ subjectId: done.subjectId! }), []);
    t.deepEqual((await c.store.querySessions({ clientId: 'app' })).results, []);
    await checkDirect(t, c.direct, done.sessionId, null);
    c.clock.advance(LEASE * 1000 + 1);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [abandoned], 'only the claim that was not completed');
  });

  define('update releases a claim', async (t, c) => {
    const record = c.session({ expires: new Date(c.clock.now().getTime() - 1000) });
    await c.store.create(record);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [record]);
    const renewed = { ...record, lastIp: '192.0.2.9' };
    await c.store.update(renewed);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [renewed], 'still expired and no longer claimed');
    const extended = { ...renewed, expires: new Date(c.clock.now().getTime() + HOUR) };
    await c.store.update(extended);
    c.clock.advance(LEASE * 1000);
    t.deepEqual(await c.store.claimExpired(10, LEASE), [], 'renewed past now: not due');
    t.deepEqual(await c.store.get(record.key), extended);
  });

  define('claimExpired rejects a count or lease that is not a positive integer with invalid_argument', async (t, c) => {
    await c.store.create(c.session({ expires: new Date(c.clock.now().getTime() - 1000) }));
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await rejects(t, () => c.store.claimExpired(bad, LEASE), 'invalid_argument');
      await rejects(t, () => c.store.claimExpired(10, bad), 'invalid_argument');
    }
    t.is((await c.store.claimExpired(10, LEASE)).length, 1, 'nothing was claimed by a rejected call');
  });

  define('claimExpired hands each record to exactly one of several concurrent callers', async (t, c) => {
    const now = c.clock.now().getTime();
    const total = 200;
    const records = Array.from({ length: total }, (_, i) => c.session({ expires: new Date(now - 1000 - (i % 17)) }));
    for (let i = 0; i < total; i += 20) await Promise.all(records.slice(i, i + 20).map((record) => c.store.create(record)));
    const drain = async () => {
      const mine: ServerSideSession[] = [];
      for (;;) {
        const batch = await c.store.claimExpired(7, LEASE);
        if (batch.length === 0) return mine;
        mine.push(...batch);
      }
    };
    const claims = await Promise.all(Array.from({ length: 5 }, drain));
    const claimed = claims.flat().map((record) => record.sessionId);
    t.is(claimed.length, total, 'no record was handed out twice');
    t.deepEqual([...new Set(claimed)].sort(), records.map((record) => record.sessionId).sort(), 'every record was handed out');
    t.deepEqual(await c.store.claimExpired(total, LEASE), []);
    // Completing every claim concurrently leaves nothing to claim after the leases run out.
    const byId = new Map(records.map((record) => [record.sessionId, record]));
    await Promise.all(claimed.map((sessionId) => c.store.delete(byId.get(sessionId)!.key)));
    c.clock.advance(LEASE * 1000 + 1);
    t.deepEqual(await c.store.claimExpired(total, LEASE), []);
  });

  // --- corrupt records (only with the harness's corrupt hook) ----------------------------------------------------

  defineCorrupt('get and getBySessionId reject a corrupt record with code corrupt', async (t, c, corrupt) => {
    const record = c.session();
    const healthy = c.session();
    await c.store.create(record);
    await c.store.create(healthy);
    await corrupt(record.sessionId);
    await rejects(t, () => c.store.get(record.key), 'corrupt');
    await rejects(t, () => c.store.getBySessionId(record.sessionId), 'corrupt');
    t.deepEqual(await c.store.get(healthy.key), healthy, 'other records are unaffected');
  });

  defineCorrupt('delete by key removes a corrupt record', async (t, c, corrupt) => {
    const record = c.session({ clients: [{ clientId: 'app', sid: 's' }] });
    await c.store.create(record);
    await corrupt(record.sessionId);
    await c.store.delete(record.key);
    t.is(await c.store.get(record.key), null);
    t.is(await c.store.getBySessionId(record.sessionId), null);
    await checkDirect(t, c.direct, record.sessionId, null);
  });

  defineCorrupt('deleteSessions by session id removes a corrupt record', async (t, c, corrupt) => {
    const record = c.session();
    await c.store.create(record);
    await corrupt(record.sessionId);
    t.is(await c.store.deleteSessions({ sessionId: record.sessionId }), 1);
    t.is(await c.store.get(record.key), null);
    await checkDirect(t, c.direct, record.sessionId, null);
  });

  defineCorrupt('getSessions skips a corrupt record and logs a warning', async (t, c, corrupt) => {
    const subjectId = c.id('subject');
    const [bad, good] = [c.session({ subjectId }), c.session({ subjectId })];
    await c.store.create(bad);
    await c.store.create(good);
    await corrupt(bad.sessionId);
    t.deepEqual(await c.store.getSessions({ subjectId }), [good]);
    t.deepEqual(await c.store.getSessions({ sessionId: bad.sessionId }), []);
    t.true(c.warnings.length > 0, 'a warning was logged');
    t.true(c.warnings.some((warning) => JSON.stringify(warning).includes(bad.sessionId)), 'the warning names the session');
  });

  defineCorrupt('querySessions skips corrupt records and still pages through every readable one', async (t, c, corrupt) => {
    const seeded = await c.seed(9);
    // Corrupt records at a page boundary, inside a page, and at both ends.
    const badIndexes = new Set([0, 2, 3, 8]);
    for (const index of badIndexes) await corrupt(seeded[index].sessionId);
    const readable = ids(seeded.filter((_, index) => !badIndexes.has(index)));
    const forward: string[] = [];
    let page = await c.store.querySessions({ pageSize: 2 });
    t.false(page.hasPrevious);
    forward.push(...ids(page.results));
    while (page.nextToken) {
      page = await c.store.querySessions({ pageSize: 2, token: page.nextToken });
      t.true(page.results.length > 0, 'no empty page behind a token');
      forward.push(...ids(page.results));
    }
    t.deepEqual(forward, readable);
    const backward: string[] = [...ids(page.results)];
    while (page.previousToken) {
      page = await c.store.querySessions({ pageSize: 2, token: page.previousToken });
      t.true(page.results.length > 0, 'no empty page behind a token');
      backward.unshift(...ids(page.results));
    }
    t.deepEqual(backward, readable);
    t.deepEqual(ids((await c.store.querySessions({ pageSize: 5 })).results), readable.slice(0, 5), 'full first page');
    t.deepEqual((await c.store.querySessions({ sessionId: seeded[2].sessionId })).results, []);
    t.true(c.warnings.length > 0, 'a warning was logged');
  });

  defineCorrupt('claimExpired deletes corrupt expired records, logs them and never returns them', async (t, c, corrupt) => {
    const now = c.clock.now().getTime();
    // The corrupt ones expired first, so a small batch meets them before any readable one.
    const bad = [1, 2, 3].map((i) => c.session({ expires: new Date(now - HOUR - i * 1000) }));
    const good = [1, 2].map((i) => c.session({ expires: new Date(now - i * 1000) }));
    const unexpired = c.session({ expires: new Date(now + HOUR) });
    for (const record of [...bad, ...good, unexpired]) await c.store.create(record);
    for (const record of [...bad, unexpired]) await corrupt(record.sessionId);
    const claimed: ServerSideSession[] = [];
    for (let batch = await c.store.claimExpired(2, LEASE); batch.length; batch = await c.store.claimExpired(2, LEASE)) {
      claimed.push(...batch);
    }
    t.deepEqual(sortById(claimed), sortById(good), 'every readable expired record, and only those');
    for (const record of bad) {
      t.is(await c.store.getBySessionId(record.sessionId), null, 'the corrupt expired record was deleted');
      await checkDirect(t, c.direct, record.sessionId, null);
    }
    await rejects(t, () => c.store.get(unexpired.key), 'corrupt');
    t.true(c.warnings.some((warning) => JSON.stringify(warning).includes(bad[0].sessionId)), 'the deletion was logged');
  });

  defineCorrupt('claimExpired: a batch of only corrupt records does not look like the end of the sweep', async (t, c, corrupt) => {
    const now = c.clock.now().getTime();
    const bad = [1, 2, 3, 4].map((i) => c.session({ expires: new Date(now - HOUR - i * 1000) }));
    const good = c.session({ expires: new Date(now - 1000) });
    for (const record of [...bad, good]) await c.store.create(record);
    for (const record of bad) await corrupt(record.sessionId);
    t.deepEqual(await c.store.claimExpired(2, LEASE), [good]);
    t.deepEqual(await c.store.claimExpired(2, LEASE), []);
  });

  // --- querySessions --------------------------------------------------------------------------------------------

  define('querySessions on an empty store returns an empty page without tokens', async (t, { store }) => {
    const page = await store.querySessions({ countTotal: true });
    t.deepEqual(page.results, []);
    t.false(page.hasPrevious);
    t.false(page.hasNext);
    t.is(page.nextToken, undefined);
    t.is(page.previousToken, undefined);
    t.is(page.totalCount, 0);
  });

  define('querySessions with no filter returns every named session, newest first', async (t, c) => {
    const seeded = await c.seed(4, (i) => ({ subjectId: c.id(`subject-${i}`) }));
    const page = await c.store.querySessions({});
    t.deepEqual(page.results, seeded);
    t.false(page.hasPrevious);
    t.false(page.hasNext);
    t.is(page.totalCount, undefined, 'totalCount only when asked for');
    t.is((await c.store.querySessions({ countTotal: true })).totalCount, 4);
  });

  define('querySessions pages forward with tokens only where there is a page', async (t, c) => {
    const seeded = ids(await c.seed(7));
    const first = await c.store.querySessions({ pageSize: 3 });
    expectPage(t, first, seeded.slice(0, 3), false, true);
    const second = await c.store.querySessions({ pageSize: 3, token: first.nextToken });
    expectPage(t, second, seeded.slice(3, 6), true, true);
    const third = await c.store.querySessions({ pageSize: 3, token: second.nextToken });
    expectPage(t, third, seeded.slice(6), true, false);
  });

  define('querySessions pages backward, results still in forward order', async (t, c) => {
    const seeded = ids(await c.seed(7));
    const first = await c.store.querySessions({ pageSize: 3 });
    const second = await c.store.querySessions({ pageSize: 3, token: first.nextToken });
    const third = await c.store.querySessions({ pageSize: 3, token: second.nextToken });
    const backToSecond = await c.store.querySessions({ pageSize: 3, token: third.previousToken });
    expectPage(t, backToSecond, seeded.slice(3, 6), true, true);
    const backToFirst = await c.store.querySessions({ pageSize: 3, token: backToSecond.previousToken });
    expectPage(t, backToFirst, seeded.slice(0, 3), false, true);
  });

  define('querySessions round trip: back then forward returns the same pages', async (t, c) => {
    await c.seed(8);
    const first = await c.store.querySessions({ pageSize: 3 });
    const second = await c.store.querySessions({ pageSize: 3, token: first.nextToken });
    const back = await c.store.querySessions({ pageSize: 3, token: second.previousToken });
    t.deepEqual(back.results, first.results);
    const forward = await c.store.querySessions({ pageSize: 3, token: back.nextToken });
    t.deepEqual(forward.results, second.results);
    t.deepEqual([forward.hasPrevious, forward.hasNext], [second.hasPrevious, second.hasNext]);
  });

  define('querySessions orders equal created times by session id and pages through them exactly once', async (t, c) => {
    const created = c.clock.now();
    const seeded = await c.seed(5, () => ({ created }));
    const expected = ids(seeded).sort().reverse();
    const seen: string[] = [];
    let page = await c.store.querySessions({ pageSize: 2 });
    seen.push(...ids(page.results));
    while (page.nextToken) {
      page = await c.store.querySessions({ pageSize: 2, token: page.nextToken });
      seen.push(...ids(page.results));
    }
    t.deepEqual(seen, expected);
    const back: string[] = [...ids(page.results)];
    while (page.previousToken) {
      page = await c.store.querySessions({ pageSize: 2, token: page.previousToken });
      back.unshift(...ids(page.results));
    }
    t.deepEqual(back, expected);
  });

  define('querySessions filters by subject', async (t, c) => {
    const subjectId = c.id('subject');
    const mine = await c.seed(3, () => ({ subjectId }));
    await c.seed(2);
    const page = await c.store.querySessions({ subjectId, countTotal: true });
    t.deepEqual(sortById(page.results), sortById(mine));
    t.is(page.totalCount, 3);
  });

  define('querySessions filters by session id', async (t, c) => {
    const [record] = await c.seed(3);
    t.deepEqual((await c.store.querySessions({ sessionId: record.sessionId })).results, [record]);
  });

  define('querySessions filters by display-name prefix, case-insensitively', async (t, c) => {
    const names = ['Alice Smith', 'alicia keys', 'ALINA', 'Bob', 'Émile Zola', null];
    const seeded = await c.seed(names.length, (i) => ({ displayName: names[i] }));
    const byPrefix = async (displayNamePrefix: string) =>
      (await c.store.querySessions({ displayNamePrefix })).results.map((record) => record.displayName).sort();
    t.deepEqual(await byPrefix('ali'), ['ALINA', 'Alice Smith', 'alicia keys']);
    t.deepEqual(await byPrefix('ALIC'), ['Alice Smith', 'alicia keys']);
    t.deepEqual(await byPrefix('alice s'), ['Alice Smith']);
    t.deepEqual(await byPrefix('émile'), ['Émile Zola']);
    t.deepEqual(await byPrefix('lice'), [], 'a prefix, not a substring');
    t.deepEqual(await byPrefix('x'), []);
    t.is(seeded.length, names.length);
  });

  define('querySessions treats %, _ and other wildcards in a display-name prefix literally', async (t, c) => {
    const names = ['100% real', '100x real', 'a_b', 'axb', 'star*', 'stars', 'bang!x', 'bangyx', 'back\\slash'];
    await c.seed(names.length, (i) => ({ displayName: names[i] }));
    const byPrefix = async (displayNamePrefix: string) =>
      (await c.store.querySessions({ displayNamePrefix })).results.map((record) => record.displayName).sort();
    t.deepEqual(await byPrefix('100%'), ['100% real']);
    t.deepEqual(await byPrefix('a_'), ['a_b']);
    t.deepEqual(await byPrefix('star*'), ['star*']);
    t.deepEqual(await byPrefix('bang!'), ['bang!x']);
    t.deepEqual(await byPrefix('back\\'), ['back\\slash']);
  });

  define('querySessions filters by client', async (t, c) => {
    const [a, b] = [c.id('app-a'), c.id('app-b')];
    const clientLists = [[a], [a, b], [b], []];
    const seeded = await c.seed(clientLists.length, (i) => ({
      clients: clientLists[i].map((clientId, n) => ({ clientId, sid: `sid-${i}-${n}` })),
    }));
    const byClient = async (clientId: string) => ids((await c.store.querySessions({ clientId })).results);
    t.deepEqual(await byClient(a), ids([seeded[0], seeded[1]]));
    t.deepEqual(await byClient(b), ids([seeded[1], seeded[2]]));
    t.deepEqual(await byClient(c.id('app-c')), []);
  });

  define('querySessions combines filters with AND', async (t, c) => {
    const subjectId = c.id('subject');
    const app = c.id('app');
    const seeded = await c.seed(4, (i) => ({
      subjectId: i < 2 ? subjectId : c.id('other'),
      displayName: i % 2 === 0 ? 'Carol' : 'Dave',
      clients: i === 0 || i === 2 ? [{ clientId: app, sid: `s${i}` }] : [],
    }));
    t.deepEqual(ids((await c.store.querySessions({ subjectId, clientId: app })).results), [seeded[0].sessionId]);
    t.deepEqual(ids((await c.store.querySessions({ subjectId, displayNamePrefix: 'dav' })).results), [seeded[1].sessionId]);
    t.deepEqual(ids((await c.store.querySessions({ displayNamePrefix: 'car', clientId: app })).results), ids([seeded[0], seeded[2]]));
    const all = await c.store.querySessions({ subjectId, displayNamePrefix: 'car', clientId: app, sessionId: seeded[0].sessionId });
    t.deepEqual(ids(all.results), [seeded[0].sessionId]);
  });

  define('querySessions never lists anonymous sessions (get and getBySessionId still return them)', async (t, c) => {
    const anonymous = await c.seed(2, () => ({ subjectId: null, displayName: 'Anon' }));
    const [named] = await c.seed(1, () => ({ displayName: 'Anne' }));
    const page = await c.store.querySessions({ countTotal: true });
    t.deepEqual(ids(page.results), [named.sessionId]);
    t.is(page.totalCount, 1);
    t.deepEqual((await c.store.querySessions({ sessionId: anonymous[0].sessionId })).results, []);
    t.deepEqual(ids((await c.store.querySessions({ displayNamePrefix: 'an' })).results), [named.sessionId]);
    t.deepEqual(await c.store.get(anonymous[0].key), anonymous[0]);
    t.deepEqual(await c.store.getBySessionId(anonymous[1].sessionId), anonymous[1]);
  });

  define('querySessions treats a malformed or foreign token as no token (the first page)', async (t, c) => {
    await c.seed(5);
    const first = await c.store.querySessions({ pageSize: 2 });
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const tokens = [
      'garbage!!', 'not-a-token', '', 'A'.repeat(5000), '%%%', b64({}), b64([1, 2]), b64('text'), b64({ v: 999 }),
      b64({ v: 1, d: 'x', c: 1, s: 'a' }), b64({ v: 1, d: 'n', c: 'soon', s: 'a' }), b64({ v: 1, d: 'n', c: 1, s: '' }),
      Buffer.from('{not json').toString('base64url'), '9223372036854775807',
    ];
    for (const token of tokens) {
      const page = await c.store.querySessions({ pageSize: 2, token });
      t.deepEqual(page.results, first.results, `token ${JSON.stringify(token.slice(0, 40))}`);
      t.false(page.hasPrevious);
    }
  });

  define('querySessions pages 25 by default and clamps the page size to MAX_PAGE_SIZE', async (t, c) => {
    const count = MAX_PAGE_SIZE + 1;
    const seeded: ServerSideSession[] = [];
    for (let i = 0; i < count; i += 25) {
      const batch = Array.from({ length: Math.min(25, count - i) }, (_, n) =>
        c.session({ created: new Date(c.clock.now().getTime() - (i + n) * 1000) }),
      );
      await Promise.all(batch.map((record) => c.store.create(record)));
      seeded.push(...batch);
    }
    const byDefault = await c.store.querySessions({});
    t.is(byDefault.results.length, DEFAULT_PAGE_SIZE);
    t.true(byDefault.hasNext);
    const clamped = await c.store.querySessions({ pageSize: MAX_PAGE_SIZE * 10 });
    t.is(clamped.results.length, MAX_PAGE_SIZE);
    t.true(clamped.hasNext);
    const last = await c.store.querySessions({ pageSize: MAX_PAGE_SIZE * 10, token: clamped.nextToken, countTotal: true });
    t.deepEqual(ids(last.results), [seeded[count - 1].sessionId]);
    t.is(last.totalCount, count);
  });

  define('querySessions rejects a page size below 1 or not an integer with invalid_argument', async (t, { store }) => {
    for (const pageSize of [0, -1, 2.5, Number.NaN]) {
      await rejects(t, () => store.querySessions({ pageSize }), 'invalid_argument');
    }
  });
}

// --- helpers --------------------------------------------------------------------------------------------------------

async function open(t: ExecutionContext, options: ConformanceOptions): Promise<Context> {
  const clock = new ManualClock(START);
  const warnings: Context['warnings'] = [];
  const logger: StoreLogger = {
    debug() {},
    info() {},
    warn(obj, msg) {
      warnings.push({ obj, msg });
    },
    error(obj, msg) {
      warnings.push({ obj, msg });
    },
  };
  const made = await options.createStore(clock, { logger });
  if (made.cleanup) t.teardown(made.cleanup);
  const run = randomBytes(4).toString('hex');
  const id = (label: string) => `${label}-${run}-${randomBytes(6).toString('hex')}`;
  const session = (overrides: Partial<ServerSideSession> = {}): ServerSideSession => {
    const now = clock.now().getTime();
    return {
      key: randomBytes(32).toString('base64url'),
      sessionId: id('sid'),
      subjectId: id('subject'),
      displayName: null,
      clients: [],
      created: new Date(now),
      renewed: new Date(now),
      expires: new Date(now + HOUR),
      authTime: new Date(now),
      loginIp: null,
      loginUserAgent: null,
      lastIp: null,
      lastUserAgent: null,
      data: {},
      ...overrides,
    };
  };
  const seed = async (count: number, overrides: (index: number) => Partial<ServerSideSession> = () => ({})) => {
    const records = Array.from({ length: count }, (_, i) =>
      session({ created: new Date(clock.now().getTime() - i * 1000), ...overrides(i) }),
    );
    for (const record of records) await made.store.create(record);
    return [...records].sort((a, b) => +b.created - +a.created || (a.sessionId < b.sessionId ? 1 : -1));
  };
  return { clock, store: made.store, direct: made.directRead, corrupt: made.corrupt, warnings, id, session, seed };
}

async function rejects(t: ExecutionContext, run: () => Promise<unknown>, code: SessionStoreErrorCode): Promise<void> {
  let error: unknown;
  try {
    await run();
  } catch (caught) {
    error = caught;
  }
  const failure = error as { code?: unknown; name?: unknown } | undefined;
  t.truthy(error, `expected a rejection with code ${code}`);
  t.is(failure?.code, code);
  t.is(failure?.name, 'SessionStoreError');
}

async function checkDirect(
  t: ExecutionContext,
  direct: ConformanceStore['directRead'],
  sessionId: string,
  expected: null | { contains?: string[]; lacks?: string[] },
): Promise<void> {
  if (!direct) return;
  const row = await direct(sessionId);
  if (expected === null) {
    t.is(row, null, `direct read: no stored row for ${sessionId}`);
    return;
  }
  t.truthy(row, `direct read: a stored row for ${sessionId}`);
  const text = JSON.stringify(row);
  for (const value of expected.contains ?? []) t.true(text.includes(value), `direct read: stored row contains ${value}`);
  for (const value of expected.lacks ?? []) t.false(text.includes(value), `direct read: stored row no longer has ${value}`);
}

function expectPage(t: ExecutionContext, page: SessionQueryResult, expected: string[], hasPrevious: boolean, hasNext: boolean) {
  t.deepEqual(ids(page.results), expected);
  t.is(page.hasPrevious, hasPrevious, 'hasPrevious');
  t.is(page.hasNext, hasNext, 'hasNext');
  t.is(typeof page.previousToken === 'string', hasPrevious, 'previousToken present exactly when hasPrevious');
  t.is(typeof page.nextToken === 'string', hasNext, 'nextToken present exactly when hasNext');
}

const ids = (records: ServerSideSession[]) => records.map((record) => record.sessionId);
const sortById = (records: ServerSideSession[]) => [...records].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
