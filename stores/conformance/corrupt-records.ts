/**
 * Records the store cannot read (damaged behind its back with the `corrupt` hook): reads reject with code `corrupt`,
 * deletes still work, listings skip them with a warning, claimExpired deletes expired ones. Run when the options'
 * `provides` lists 'corrupt'; listed as skipped otherwise.
 */
import { checkDirect, drainClaims, followPages, ids, rejects, sortById } from './assertions.js';
import { HOUR, LEASE, type Define } from './context.js';

export function corruptRecordRules(define: Define): void {
  define(
    'corrupt records: get and getBySessionId reject a corrupt record with code corrupt',
    async (t, c) => {
      const record = c.session();
      const healthy = c.session();
      await c.store.create(record);
      await c.store.create(healthy);
      await c.corrupt(record.sessionId);
      await rejects(t, 'get(key of a corrupt record)', () => c.store.get(record.key), 'corrupt');
      await rejects(
        t,
        'getBySessionId(session id of a corrupt record)',
        () => c.store.getBySessionId(record.sessionId),
        'corrupt',
      );
      t.deepEqual(await c.store.get(healthy.key), healthy, 'other records are unaffected');
    },
    'corrupt',
  );

  define(
    'corrupt records: delete by key removes a corrupt record',
    async (t, c) => {
      const record = c.session({ clients: [{ clientId: 'app', sid: 's' }] });
      await c.store.create(record);
      await c.corrupt(record.sessionId);
      await c.store.delete(record.key);
      t.is(await c.store.get(record.key), null);
      t.is(await c.store.getBySessionId(record.sessionId), null);
      await checkDirect(t, c.direct, record.sessionId, null);
    },
    'corrupt',
  );

  define(
    'corrupt records: deleteSessions by session id removes a corrupt record',
    async (t, c) => {
      const record = c.session();
      await c.store.create(record);
      await c.corrupt(record.sessionId);
      t.is(await c.store.deleteSessions({ sessionId: record.sessionId }), 1);
      t.is(await c.store.get(record.key), null);
      await checkDirect(t, c.direct, record.sessionId, null);
    },
    'corrupt',
  );

  define(
    'corrupt records: getSessions skips a corrupt record and logs a warning',
    async (t, c) => {
      const subjectId = c.id('subject');
      const [bad, good] = [c.session({ subjectId }), c.session({ subjectId })];
      await c.store.create(bad);
      await c.store.create(good);
      await c.corrupt(bad.sessionId);
      t.deepEqual(await c.store.getSessions({ subjectId }), [good]);
      t.deepEqual(await c.store.getSessions({ sessionId: bad.sessionId }), []);
      t.true(c.warnings.length > 0, 'a warning was logged');
      t.true(
        c.warnings.some((warning) => JSON.stringify(warning).includes(bad.sessionId)),
        'the warning names the session',
      );
    },
    'corrupt',
  );

  define(
    'corrupt records: querySessions skips corrupt records and still pages through every readable one',
    async (t, c) => {
      const seeded = await c.seed(9);
      // Corrupt records at a page boundary, inside a page, and at both ends.
      const badIndexes = new Set([0, 2, 3, 8]);
      for (const index of badIndexes) await c.corrupt(seeded[index].sessionId);
      const readable = ids(seeded.filter((_, index) => !badIndexes.has(index)));
      const first = await c.store.querySessions({ pageSize: 2 });
      t.false(first.hasPrevious);
      const later = await followPages(c.store, { pageSize: 2 }, first, 'next', seeded.length);
      for (const page of later) t.true(page.results.length > 0, 'no empty page behind a token');
      t.deepEqual(
        [first, ...later].flatMap((page) => ids(page.results)),
        readable,
      );
      const last = later.at(-1) ?? first;
      const earlier = await followPages(c.store, { pageSize: 2 }, last, 'previous', seeded.length);
      for (const page of earlier) t.true(page.results.length > 0, 'no empty page behind a token');
      t.deepEqual(
        [...earlier]
          .reverse()
          .concat(last)
          .flatMap((page) => ids(page.results)),
        readable,
      );
      t.deepEqual(ids((await c.store.querySessions({ pageSize: 5 })).results), readable.slice(0, 5), 'full first page');
      t.deepEqual((await c.store.querySessions({ sessionId: seeded[2].sessionId })).results, []);
      t.true(c.warnings.length > 0, 'a warning was logged');
    },
    'corrupt',
  );

  define(
    'corrupt records: claimExpired deletes corrupt expired records, logs them and never returns them',
    async (t, c) => {
      const now = c.clock.now().getTime();
      // The corrupt ones expired first, so a small batch meets them before any readable one.
      const bad = [1, 2, 3].map((i) => c.session({ expires: new Date(now - HOUR - i * 1000) }));
      const good = [1, 2].map((i) => c.session({ expires: new Date(now - i * 1000) }));
      const unexpired = c.session({ expires: new Date(now + HOUR) });
      for (const record of [...bad, ...good, unexpired]) await c.store.create(record);
      for (const record of [...bad, unexpired]) await c.corrupt(record.sessionId);
      // Two readable records, claimed two at a time: a store that does the job runs dry within a few calls.
      const claimed = await drainClaims(c.store, 2, LEASE, 10);
      t.deepEqual(sortById(claimed), sortById(good), 'every readable expired record, and only those');
      for (const record of bad) {
        t.is(await c.store.getBySessionId(record.sessionId), null, 'the corrupt expired record was deleted');
        await checkDirect(t, c.direct, record.sessionId, null);
      }
      await rejects(t, 'get(key of a corrupt unexpired record)', () => c.store.get(unexpired.key), 'corrupt');
      t.true(
        c.warnings.some((warning) => JSON.stringify(warning).includes(bad[0].sessionId)),
        'the deletion was logged',
      );
    },
    'corrupt',
  );

  define(
    'corrupt records: claimExpired: a batch of only corrupt records does not look like the end of the sweep',
    async (t, c) => {
      const now = c.clock.now().getTime();
      const bad = [1, 2, 3, 4].map((i) => c.session({ expires: new Date(now - HOUR - i * 1000) }));
      const good = c.session({ expires: new Date(now - 1000) });
      for (const record of [...bad, good]) await c.store.create(record);
      for (const record of bad) await c.corrupt(record.sessionId);
      t.deepEqual(await c.store.claimExpired(2, LEASE), [good]);
      t.deepEqual(await c.store.claimExpired(2, LEASE), []);
    },
    'corrupt',
  );
}
