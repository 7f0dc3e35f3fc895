/**
 * The optional `deleteMany(keys)` (the sweeper completes a batch of claims with it). Run when the options' `provides`
 * lists 'deleteMany'; listed as skipped otherwise.
 */
import { checkDirect, ids, rejects } from './assertions.js';
import { HOUR, LEASE, type Define } from './context.js';

export function deleteManyRules(define: Define): void {
  define(
    'deleteMany: removes exactly the listed records from every lookup and counts them',
    async (t, c) => {
      const subjectId = c.id('subject');
      const gone = [
        c.session({ subjectId, clients: [{ clientId: 'app', sid: 's1' }] }),
        c.session({ subjectId, expires: new Date(c.clock.now().getTime() + 1) }),
        c.session({ subjectId: null }),
      ];
      const kept = c.session({ subjectId, clients: [{ clientId: 'app', sid: 's2' }] });
      for (const record of [...gone, kept]) await c.store.create(record);
      t.is(await c.deleteMany([...gone.map((r) => r.key), c.id('never-stored')]), 3, 'the missing key is not counted');
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
    },
    'deleteMany',
  );

  define(
    'deleteMany: an empty list deletes nothing; a repeated key is deleted once',
    async (t, c) => {
      const record = c.session();
      await c.store.create(record);
      t.is(await c.deleteMany([]), 0);
      t.deepEqual(await c.store.get(record.key), record);
      t.is(await c.deleteMany([record.key, record.key]), 1);
      t.is(await c.store.get(record.key), null);
      t.is(await c.deleteMany([record.key]), 0, 'idempotent');
    },
    'deleteMany',
  );

  define(
    'deleteMany: completes a batch of claims, more than one chunk of keys',
    async (t, c) => {
      const now = c.clock.now().getTime();
      const records = Array.from({ length: 1203 }, (_, i) => c.session({ expires: new Date(now - 1000 - i) }));
      for (const record of records) await c.store.create(record);
      const claimed = await c.store.claimExpired(records.length, LEASE);
      t.is(claimed.length, records.length);
      t.is(await c.deleteMany(claimed.map((r) => r.key)), records.length);
      c.clock.advance(LEASE * 1000 + 1);
      t.deepEqual(await c.store.claimExpired(10, LEASE), [], 'nothing left to hand out again');
    },
    'deleteMany',
  );

  define(
    'deleteMany: refuses anything but an array of strings with invalid_argument, deleting nothing',
    async (t, c) => {
      const record = c.session();
      await c.store.create(record);
      for (const bad of [undefined, null, record.key, [record.key, 42], [{ key: record.key }]]) {
        await rejects(
          t,
          `deleteMany(${JSON.stringify(bad) ?? String(bad)})`,
          () => c.deleteMany(bad as unknown as string[]),
          'invalid_argument',
        );
      }
      t.deepEqual(await c.store.get(record.key), record);
    },
    'deleteMany',
  );
}
