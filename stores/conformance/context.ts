/**
 * What each check of the conformance suite works with: a fresh store from the author's `createStore` on a ManualClock,
 * the hooks into its storage, a logger that records warnings, and builders of valid records.
 */
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { ManualClock } from '../clock.js';
import type { ServerSideSession, SessionStore, StoreLogger } from '../session-store.js';
import type { ConformanceHook, ConformanceOptions, ConformanceStore } from './options.js';

/** 2001-02-03T04:05:06.789Z: milliseconds on purpose, and decades before any wall clock the suite runs under. */
export const START = Date.UTC(2001, 1, 3, 4, 5, 6, 789);
export const HOUR = 3_600_000;
/** The lease the claim tests take, in seconds. */
export const LEASE = 300;

export interface Context {
  clock: ManualClock;
  store: SessionStore;
  /** The directRead hook, if given: checkDirect (assertions.ts) uses it wherever a write is checked. */
  direct: ConformanceStore['directRead'];
  /** The corrupt hook (checks declared with `needs: 'corrupt'` only run when it is given). */
  corrupt(sessionId: string): Promise<void>;
  /** The store's deleteMany (checks declared with `needs: 'deleteMany'` only run when it has one). */
  deleteMany(keys: string[]): Promise<number>;
  /** What createStore returned, as it was. */
  made: ConformanceStore;
  /** Warnings the store logged through the harness logger (message and object). */
  warnings: { msg?: string; obj: object }[];
  /** A unique id with a readable prefix. */
  id(label: string): string;
  /** A valid record (unique key, session id and subject) created now, expiring in an hour; override anything. */
  session(overrides?: Partial<ServerSideSession>): ServerSideSession;
  /** Creates `count` sessions, the i-th created i seconds before now; resolves to them in forward (query) order. */
  seed(count: number, overrides?: (index: number) => Partial<ServerSideSession>): Promise<ServerSideSession[]>;
}

/** Declares one check; `needs` names the optional part it cannot run without (declared skipped when not provided). */
export type Define = (
  title: string,
  body: (t: ExecutionContext, c: Context) => Promise<void>,
  needs?: ConformanceHook,
) => void;

/** A store for one test from the author's createStore, cleaned up after the test. */
export async function open(t: ExecutionContext, options: ConformanceOptions): Promise<Context> {
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
  const { store } = made;
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
    for (const record of records) await store.create(record);
    // The contract's order: created descending, then session id descending.
    return [...records].sort((a, b) => +b.created - +a.created || (a.sessionId < b.sessionId ? 1 : -1));
  };
  return {
    clock,
    store,
    made,
    direct: made.directRead,
    async corrupt(sessionId) {
      if (!made.corrupt)
        throw new Error("createStore returned no corrupt hook, although the options' provides lists 'corrupt'");
      await made.corrupt(sessionId);
    },
    async deleteMany(keys) {
      if (typeof store.deleteMany !== 'function')
        throw new Error("the store has no deleteMany, although the options' provides lists 'deleteMany'");
      return store.deleteMany(keys);
    },
    warnings,
    id,
    session,
    seed,
  };
}
