/** getSessions and deleteSessions: exact-match filters by subject and/or session id (AND); an empty filter is refused. */
import { checkDirect, rejects, sortById } from './assertions.js';
import type { Define } from './context.js';

export function filterRules(define: Define): void {
  define("getSessions by subject returns exactly that subject's sessions", async (t, c) => {
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
    await rejects(t, 'getSessions({})', () => store.getSessions({}), 'invalid_filter');
    await rejects(
      t,
      "getSessions({ subjectId: '' }) (an empty string is no filter)",
      () => store.getSessions({ subjectId: '', sessionId: undefined }),
      'invalid_filter',
    );
  });

  define("deleteSessions by subject deletes only that subject's sessions and counts them", async (t, c) => {
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
    await rejects(t, 'deleteSessions({})', () => c.store.deleteSessions({}), 'invalid_filter');
    await rejects(
      t,
      "deleteSessions({ subjectId: '' }) (an empty string is no filter)",
      () => c.store.deleteSessions({ subjectId: '' }),
      'invalid_filter',
    );
    t.deepEqual(await c.store.get(record.key), record);
  });
}
