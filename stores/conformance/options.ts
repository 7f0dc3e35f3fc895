/** What a store author gives the conformance suite (`runSessionStoreConformance(test, options)`). */
import type { ManualClock } from '../clock.js';
import type { SessionStore, StoreLogger } from '../session-store.js';

/** One store over empty storage, for one test, and the hooks into its storage. */
export interface ConformanceStore {
  store: SessionStore;
  /** The stored row for a session id, read directly from the storage (not through the store), or null. */
  directRead?: (sessionId: string) => Promise<Record<string, unknown> | null>;
  /** Damages the stored record for a session id so that the store cannot read it (bypassing the store). */
  corrupt?: (sessionId: string) => Promise<void>;
  /** Runs after the test, pass or fail. */
  cleanup?: () => Promise<void>;
}

/** What `createStore` is given besides the clock. */
export interface ConformanceHarness {
  /** A logger that records what it is given; stores built with it let the suite check their warnings. */
  logger: StoreLogger;
}

/**
 * The optional parts a store may give, each switching on the checks that need it: the `directRead` and `corrupt` hooks
 * of ConformanceStore, and the store's own optional `deleteMany` method.
 */
export type ConformanceHook = 'directRead' | 'corrupt' | 'deleteMany';

export interface ConformanceOptions {
  /** Prefixes every test title, e.g. `postgres`. */
  name: string;
  /** A store over empty storage, using `clock` for time (and `harness.logger` for logs). Called once per test. */
  createStore(clock: ManualClock, harness: ConformanceHarness): Promise<ConformanceStore>;
  /**
   * The optional parts createStore's stores give. ava decides which tests run when the test file loads, before any
   * store exists, so they are declared here: the checks that need a part not listed are declared skipped, and ava
   * lists them as skipped (never as passed). A check of its own fails when the stores do not give what is listed, or
   * give a part that is not listed (its checks would be skipped for nothing). Default: none.
   */
  provides?: ConformanceHook[];
}
