/**
 * querySessions: the admin search. Named sessions only, newest first with ties by session id descending; keyset paging
 * forward and back with opaque tokens (a malformed one is the first page); filters combined with AND.
 */
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type ServerSideSession } from '../session-store.js';
import { expectPage, followPages, ids, rejects, sortById } from './assertions.js';
import type { Define } from './context.js';

export function queryRules(define: Define): void {
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

  define(
    'querySessions orders equal created times by session id, descending, and pages through them exactly once',
    async (t, c) => {
      const created = c.clock.now();
      const seeded = await c.seed(5, () => ({ created }));
      const expected = ids(seeded).sort().reverse();
      const first = await c.store.querySessions({ pageSize: 2 });
      const later = await followPages(c.store, { pageSize: 2 }, first, 'next', seeded.length);
      const order =
        "sessions created at the same instant come in descending session id order (the contract's tie order)";
      t.deepEqual(
        [first, ...later].flatMap((page) => ids(page.results)),
        expected,
        order,
      );
      const last = later.at(-1) ?? first;
      const earlier = await followPages(c.store, { pageSize: 2 }, last, 'previous', seeded.length);
      t.deepEqual(
        [...earlier]
          .reverse()
          .concat(last)
          .flatMap((page) => ids(page.results)),
        expected,
        order,
      );
    },
  );

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
    t.deepEqual(ids((await c.store.querySessions({ subjectId, displayNamePrefix: 'dav' })).results), [
      seeded[1].sessionId,
    ]);
    t.deepEqual(
      ids((await c.store.querySessions({ displayNamePrefix: 'car', clientId: app })).results),
      ids([seeded[0], seeded[2]]),
    );
    const all = await c.store.querySessions({
      subjectId,
      displayNamePrefix: 'car',
      clientId: app,
      sessionId: seeded[0].sessionId,
    });
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
      'garbage!!',
      'not-a-token',
      '',
      'A'.repeat(5000),
      '%%%',
      b64({}),
      b64([1, 2]),
      b64('text'),
      b64({ v: 999 }),
      b64({ v: 1, d: 'x', c: 1, s: 'a' }),
      b64({ v: 1, d: 'n', c: 'soon', s: 'a' }),
      b64({ v: 1, d: 'n', c: 1, s: '' }),
      Buffer.from('{not json').toString('base64url'),
      '9223372036854775807',
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
    const last = await c.store.querySessions({
      pageSize: MAX_PAGE_SIZE * 10,
      token: clamped.nextToken,
      countTotal: true,
    });
    t.deepEqual(ids(last.results), [seeded[count - 1].sessionId]);
    t.is(last.totalCount, count);
  });

  define('querySessions rejects a page size below 1 or not an integer with invalid_argument', async (t, { store }) => {
    for (const pageSize of [0, -1, 2.5, Number.NaN]) {
      await rejects(
        t,
        `querySessions({ pageSize: ${pageSize} })`,
        () => store.querySessions({ pageSize }),
        'invalid_argument',
      );
    }
  });
}
