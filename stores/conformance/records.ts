/**
 * Reading and writing one record: get and getBySessionId (misses are null), create (every field kept, copies not
 * references, duplicates refused), update (replaces the record of its session id; rotation moves the key) and delete.
 */
import type { ServerSideSession } from '../session-store.js';
import { checkDirect, ids, rejects } from './assertions.js';
import { HOUR, LEASE, type Define } from './context.js';

export function recordRules(define: Define): void {
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
      contains: [
        record.key,
        record.sessionId,
        record.subjectId!,
        'Alice Example',
        'app-two',
        'Mozilla/5.0 (last agent)',
      ],
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

  define(
    'records are copies: mutating a returned or passed record changes nothing stored',
    async (t, { store, session }) => {
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
    },
  );

  define('create rejects a duplicate key with code duplicate and keeps the original', async (t, c) => {
    const original = c.session({ displayName: 'original' });
    await c.store.create(original);
    const clash = c.session({ key: original.key, displayName: 'intruder' });
    await rejects(t, 'create(a record with the key of another)', () => c.store.create(clash), 'duplicate');
    t.deepEqual(await c.store.get(original.key), original);
    t.is(await c.store.getBySessionId(clash.sessionId), null);
    await checkDirect(t, c.direct, clash.sessionId, null);
    await checkDirect(t, c.direct, original.sessionId, { contains: ['original'], lacks: ['intruder'] });
  });

  define('create rejects a duplicate session id with code duplicate and keeps the original', async (t, c) => {
    const original = c.session({ displayName: 'original' });
    await c.store.create(original);
    const clash = c.session({ sessionId: original.sessionId, displayName: 'intruder' });
    await rejects(t, 'create(a record with the session id of another)', () => c.store.create(clash), 'duplicate');
    t.deepEqual(await c.store.getBySessionId(original.sessionId), original);
    t.is(await c.store.get(clash.key), null);
    await checkDirect(t, c.direct, original.sessionId, {
      contains: [original.key, 'original'],
      lacks: [clash.key, 'intruder'],
    });
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
      clients: [
        { clientId: 'app-new', sid: 'y' },
        { clientId: 'app-newer', sid: 'z' },
      ],
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
    await checkDirect(t, c.direct, before.sessionId, {
      contains: ['After', 'app-newer', 'last-ua-2'],
      lacks: ['Before', 'app-old'],
    });
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
    await rejects(t, 'update(a record whose session id is not stored)', () => c.store.update(record), 'not_found');
    t.is(await c.store.get(record.key), null);
    t.is(await c.store.getBySessionId(record.sessionId), null);
    await checkDirect(t, c.direct, record.sessionId, null);
  });

  define("update to another session's key rejects with duplicate and changes nothing", async (t, c) => {
    const first = c.session();
    const second = c.session();
    await c.store.create(first);
    await c.store.create(second);
    await rejects(
      t,
      "update(a record given another record's key)",
      () => c.store.update({ ...second, key: first.key }),
      'duplicate',
    );
    t.deepEqual(await c.store.get(first.key), first);
    t.deepEqual(await c.store.get(second.key), second);
  });

  // --- delete ---------------------------------------------------------------------------------------------------

  define('delete removes the record from every lookup', async (t, c) => {
    const record = c.session({
      clients: [{ clientId: 'app', sid: 's' }],
      expires: new Date(c.clock.now().getTime() + 1),
    });
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
}
