/**
 * claimExpired: hands out expired records (by the injected clock) under a lease, one caller per lease, again after a
 * lease runs out (at-least-once); delete completes a claim, update releases it.
 */
import { checkDirect, drainClaims, ids, rejects, sortById } from './assertions.js';
import { HOUR, LEASE, type Define } from './context.js';

export function claimRules(define: Define): void {
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
    const [first, second] = [
      c.session({ expires: new Date(now - 2000) }),
      c.session({ expires: new Date(now - 1000) }),
    ];
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
      await rejects(t, `claimExpired(${bad}, ${LEASE})`, () => c.store.claimExpired(bad, LEASE), 'invalid_argument');
      await rejects(t, `claimExpired(10, ${bad})`, () => c.store.claimExpired(10, bad), 'invalid_argument');
    }
    t.is((await c.store.claimExpired(10, LEASE)).length, 1, 'nothing was claimed by a rejected call');
  });

  define('claimExpired hands each record to exactly one of several concurrent callers', async (t, c) => {
    const now = c.clock.now().getTime();
    const total = 200;
    const records = Array.from({ length: total }, (_, i) => c.session({ expires: new Date(now - 1000 - (i % 17)) }));
    for (let i = 0; i < total; i += 20)
      await Promise.all(records.slice(i, i + 20).map((record) => c.store.create(record)));
    // Every non-empty batch holds at least one record never handed out before, so no caller needs more calls than there
    // are records (plus the empty one): past that, the store is handing records out again.
    const claims = await Promise.all(Array.from({ length: 5 }, () => drainClaims(c.store, 7, LEASE, total + 1)));
    const claimed = claims.flat().map((record) => record.sessionId);
    t.is(claimed.length, total, 'no record was handed out twice');
    t.deepEqual(
      [...new Set(claimed)].sort(),
      records.map((record) => record.sessionId).sort(),
      'every record was handed out',
    );
    t.deepEqual(await c.store.claimExpired(total, LEASE), []);
    // Completing every claim concurrently leaves nothing to claim after the leases run out.
    const byId = new Map(records.map((record) => [record.sessionId, record]));
    await Promise.all(claimed.map((sessionId) => c.store.delete(byId.get(sessionId)!.key)));
    c.clock.advance(LEASE * 1000 + 1);
    t.deepEqual(await c.store.claimExpired(total, LEASE), []);
  });
}
