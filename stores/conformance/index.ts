/**
 * The session store conformance suite (`gatehouse-idp/conformance`): every promise of the SessionStore contract
 * (stores/session-store.ts), as ava tests. Gatehouse runs it against each built-in store and the Redis example; run it
 * against your own store class (docs/custom-stores.md shows how, from TypeScript or a plain `.mjs` test).
 *
 * The checks are grouped by the rules they enforce, one module per group: records.ts (get, create, update, delete),
 * filters.ts (getSessions, deleteSessions), claims.ts (claimExpired), query.ts (querySessions), delete-many.ts (the
 * optional deleteMany) and corrupt-records.ts (records the store cannot read). A failing test's title names its group.
 *
 * Rules of the suite:
 * - `createStore(clock)` is called once per test and must return a store over EMPTY storage (a fresh database, schema,
 *   key prefix...): some tests look at the whole store (unfiltered queries, expiry). Tests run concurrently.
 * - The store must take its time from the given ManualClock. The clock starts in 2001, long before the wall clock, so a
 *   store that reads `Date.now()` fails the expiry tests.
 * - `directRead(sessionId)`, when given, reads the stored row for that session id straight from the backing storage,
 *   bypassing the store, in any shape (or null when there is none). The suite checks writes through it: the row
 *   exists or not, and its serialized form contains (or no longer contains) the values written.
 * - `corrupt(sessionId)`, when given, damages the stored record for that session id directly in the backing storage so
 *   that the store can no longer read it (e.g. writes text that is not JSON into its `data`). The corrupt-record
 *   checks also check that the store logs a warning through the logger passed as `createStore`'s second argument:
 *   build the store with that logger.
 * - `provides` lists which of directRead, corrupt and the store's optional deleteMany the stores give; the checks that
 *   need one not listed are declared skipped, so ava reports them as skipped, never as passed.
 * - Loops over the store's answers (draining claims, following page tokens) are bounded: a store that ignores leases
 *   or never ends its pages fails with a message instead of running until the test times out.
 * - `cleanup()` runs after each test, pass or fail.
 */
import type { TestFn } from 'ava';
import { checkDirect } from './assertions.js';
import { claimRules } from './claims.js';
import { open, type Define } from './context.js';
import { corruptRecordRules } from './corrupt-records.js';
import { deleteManyRules } from './delete-many.js';
import { filterRules } from './filters.js';
import type { ConformanceHook, ConformanceOptions } from './options.js';
import { queryRules } from './query.js';
import { recordRules } from './records.js';

export type { ConformanceHarness, ConformanceHook, ConformanceOptions, ConformanceStore } from './options.js';

const HOOKS: readonly ConformanceHook[] = ['directRead', 'corrupt', 'deleteMany'];
const HOOK_DESCRIPTIONS: Record<ConformanceHook, string> = {
  directRead: "createStore's directRead hook",
  corrupt: "createStore's corrupt hook",
  deleteMany: "the store's deleteMany method",
};

/** How to run the suite from your own test file, in plain JavaScript (docs/custom-stores.md has more). */
export const conformanceUsage = `// test/my-session-store.test.mjs (ava 7)
import test from 'ava';
import { runSessionStoreConformance } from 'gatehouse-idp/conformance';
import { MySessionStore } from '../my-session-store.js';

runSessionStoreConformance(test, {
  name: 'my store',
  provides: ['deleteMany'], // the optional parts your store gives: 'directRead', 'corrupt', 'deleteMany'
  async createStore(clock, { logger }) {
    const store = new MySessionStore({ clock, logger, options: { prefix: \`test:\${crypto.randomUUID()}:\` } });
    return { store, cleanup: () => store.dropEverything() };
  },
});
`;

export function runSessionStoreConformance(test: TestFn, options: ConformanceOptions): void {
  const provided = new Set<ConformanceHook>(options.provides ?? []);
  const unknown = [...provided].filter((hook) => !HOOKS.includes(hook));
  if (unknown.length)
    throw new Error(
      `runSessionStoreConformance: provides: unknown ${unknown.map((hook) => `"${hook}"`).join(', ')} (expected ${HOOKS.join(', ')})`,
    );

  const define: Define = (title, body, needs) => {
    const name = `${options.name}: ${title}`;
    if (needs && !provided.has(needs)) {
      test.skip(`${name} [needs ${HOOK_DESCRIPTIONS[needs]}: not in provides]`, () => {});
      return;
    }
    test(name, async (t) => body(t, await open(t, options)));
  };

  define('the stores give exactly the optional parts that provides lists', async (t, c) => {
    const given: Record<ConformanceHook, boolean> = {
      directRead: typeof c.made.directRead === 'function',
      corrupt: typeof c.made.corrupt === 'function',
      deleteMany: typeof c.store.deleteMany === 'function',
    };
    for (const hook of HOOKS) {
      if (given[hook] && !provided.has(hook))
        t.fail(
          `${HOOK_DESCRIPTIONS[hook]} is there, but provides does not list '${hook}': its checks are skipped. Add it to provides`,
        );
      if (!given[hook] && provided.has(hook))
        t.fail(`provides lists '${hook}', but ${HOOK_DESCRIPTIONS[hook]} is missing`);
    }
    t.pass();
  });

  define(
    'direct reads: create, update (with a key rotation) and delete reach the backing storage',
    async (t, c) => {
      const record = c.session({ displayName: 'First Name' });
      await c.store.create(record);
      await checkDirect(t, c.direct, record.sessionId, { contains: [record.key, record.sessionId, 'First Name'] });
      const rotated = { ...record, key: c.id('rotated-key'), displayName: 'Second Name' };
      await c.store.update(rotated);
      await checkDirect(t, c.direct, record.sessionId, {
        contains: [rotated.key, 'Second Name'],
        lacks: [record.key, 'First Name'],
      });
      await c.store.delete(rotated.key);
      await checkDirect(t, c.direct, record.sessionId, null);
    },
    'directRead',
  );

  recordRules(define);
  filterRules(define);
  claimRules(define);
  queryRules(define);
  deleteManyRules(define);
  corruptRecordRules(define);
}
