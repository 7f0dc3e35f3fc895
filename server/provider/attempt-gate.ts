/**
 * Keeps the sign-in attempts of one key (a name, a name at an address, an address, a device) that are in flight in
 * this process within the room the key has left before its lock: with `room` = limit − failures already counted, at
 * most `room` attempts are being checked at once, and the next ones wait until one finishes (and its failure, if it
 * failed, is counted). So a burst of a thousand parallel guesses gets no more password checks than the limit allows,
 * while parallel *successful* sign-ins of one name (a test suite signing the same user in many times at once) just
 * queue for a moment.
 *
 * The guarantee, per key and per process: an attempt is admitted only if the failures its read found, plus every
 * attempt whose failure that read may have missed, leave room for it. An attempt may be missing from a read if it was
 * in flight when the read began: it counts as pending until it ends (`release`, once its failure is written) and, if
 * it ended while the read was under way, for that read too — when such attempts are what fills the key, the read is
 * repeated rather than trusted or waited on (the attempts still in flight alone fill it: it waits for one of them, as
 * any attempt does). A failure that could not be written keeps its place until it is written or dropped
 * (`releaseWhenRecorded`; dropped only after `RECORD_RETRY.giveUpMs` or beyond its cap). So with a budget of N
 * no more than N checks per window get through in one process, however the database's answers and the releases
 * interleave, and nobody waits or is refused because of an attempt that has already ended. Across instances the
 * database decides: each process keeps its own gate, so a burst split across k instances can get up to k budgets'
 * worth of checks before the lock, which every instance then honours.
 */

import type { Logger } from 'pino';

export type Room = { blocked: true } | { blocked: false; room: Map<string, number> };
export type GateOutcome = 'admitted' | 'blocked' | 'exhausted' | 'busy';

/** One key's attempts in this process. */
interface KeyState {
  /** Admitted and not yet released. */
  inFlight: number;
  /** Releases so far (compared before and after a read: attempts that ended while it was under way). */
  ended: number;
  /** Reads of this key under way (the state is kept while any are). */
  reading: number;
  /** Attempts waiting for room, in order. */
  waiting: (() => void)[];
}

/**
 * How a failure that could not be written is tried again. Not in the option table: these bound a failure mode (the
 * database refusing writes), not a policy an operator tunes.
 * - `firstMs`, doubling up to `maxMs`, each pause jittered by ±50% so that failures from one moment do not all hit a
 *   recovering database together.
 * - `giveUpMs` (5 min, about a database restart or failover; also the first lock, `login.lockout`): after it the
 *   failure is dropped and its place freed — a place held longer would shut out the name's real user longer than a
 *   lock would, for a database that needs an operator anyway. That is seven or so tries, the last few 30 s apart.
 * - `maxPending` failures waiting process-wide (each a timer, a closure and its keys' state: ~10 MB at most, and
 *   at most that many writes per 30 s on recovery); a failure beyond it is dropped at once and its place freed.
 * - `burstMs`: dropped failures are logged as one warn line (counts only) per this long.
 */
export const RECORD_RETRY = { firstMs: 250, maxMs: 30_000, giveUpMs: 5 * 60_000, maxPending: 10_000, burstMs: 10_000 };

/** The failures waiting to be written again, counted against `maxPending`; one for the process (`pendingRecords`). */
export class PendingRecords {
  count = 0;
  constructor(readonly max: number) {}
}
export const pendingRecords = new PendingRecords(RECORD_RETRY.maxPending);

export interface AttemptGateOptions {
  /** More waiters than this on one key are turned away at once (`busy`). */
  maxWaiting?: number;
  /** A waiter gives up (`busy`) after this long. */
  maxWaitMs?: number;
  retry?: Partial<Omit<typeof RECORD_RETRY, 'maxPending'>>;
  /** Where `maxPending` is counted (tests give their own). */
  pending?: PendingRecords;
  /** Told when failures are dropped (counts only: keys hold names and addresses). */
  logger?: Pick<Logger, 'warn'>;
  /** What the gate guards, for that log line. */
  name?: string;
}

/** A failure waiting to be written again. */
interface Unwritten {
  keys: string[];
  record: () => Promise<void>;
  giveUpAt: number;
  timer?: NodeJS.Timeout;
  /** Cancelled while a retry was writing: that write is not stopped, but nothing follows it. */
  cancelled?: boolean;
}

export class AttemptGate {
  readonly #keys = new Map<string, KeyState>();
  /** Failures waiting to be written again (`releaseWhenRecorded`). */
  readonly #unwritten = new Set<Unwritten>();
  readonly #maxWaiting: number;
  readonly #maxWaitMs: number;
  readonly #retry: Omit<typeof RECORD_RETRY, 'maxPending'>;
  readonly #pending: PendingRecords;
  readonly #logger: Pick<Logger, 'warn'> | undefined;
  readonly #name: string;
  /** Failures dropped since the last warn line, and the timer that writes the next one. */
  #dropped = { givenUp: 0, overCap: 0, timer: undefined as NodeJS.Timeout | undefined };
  #closed = false;

  constructor(options: AttemptGateOptions = {}) {
    this.#maxWaiting = options.maxWaiting ?? 200;
    this.#maxWaitMs = options.maxWaitMs ?? 10_000;
    this.#retry = { ...RECORD_RETRY, ...options.retry };
    this.#pending = options.pending ?? pendingRecords;
    this.#logger = options.logger;
    this.#name = options.name ?? 'sign-in';
  }

  /**
   * Admits one attempt on every key once each has room for it (then `release` must follow), or answers why not:
   * `blocked` (a lock applies), `exhausted` (no room left and nothing in flight that could make some: the caller
   * locks the key), `busy` (too many waiting, or waited too long). `room()` reads the current counts (and locks).
   */
  async acquire(keys: string[], room: () => Promise<Room>): Promise<GateOutcome> {
    const deadline = Date.now() + this.#maxWaitMs;
    let wokenOn: string | undefined; // a key whose freed place this call was woken for
    const leave = (outcome: GateOutcome) => {
      if (wokenOn !== undefined) this.#wakeNext(wokenOn); // pass the freed place on
      return outcome;
    };
    for (;;) {
      const states = keys.map((key) => this.#state(key));
      const endedBefore = states.map((state) => state.ended);
      for (const state of states) state.reading++;
      let current: Room;
      try {
        current = await room();
      } finally {
        for (const [i, state] of states.entries()) {
          state.reading--;
          this.#forgetIfIdle(keys[i]);
        }
      }
      if (current.blocked) return leave('blocked');
      // Pending on a key: in flight now, or ended while the read was under way (its failure may not be in the read).
      const missed = states.map((state, i) => state.ended - endedBefore[i]);
      const full = keys.findIndex(
        (key, i) => this.inFlight(key) + missed[i] >= (current.room.get(key) ?? Number.POSITIVE_INFINITY),
      );
      if (full < 0) {
        for (const key of keys) this.#state(key).inFlight++;
        return 'admitted';
      }
      const fullKey = keys[full];
      const inFlight = this.inFlight(fullKey);
      if (missed[full] > 0 && (inFlight === 0 || inFlight < (current.room.get(fullKey) ?? 0))) {
        // Full only by attempts that ended during the read (or nothing is in flight to wait for): their outcome may
        // not be in it, so read again, now after them; a fresh count decides.
        if (Date.now() >= deadline) return leave('busy');
        continue;
      }
      if (inFlight === 0) return leave('exhausted');
      const queue = this.#state(fullKey).waiting;
      if (queue.length >= this.#maxWaiting || Date.now() >= deadline) return leave('busy');
      if (wokenOn !== undefined && wokenOn !== fullKey) this.#wakeNext(wokenOn);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
        function wake() {
          clearTimeout(timer);
          const at = queue.indexOf(wake);
          if (at >= 0) queue.splice(at, 1);
          resolve();
        }
        queue.push(wake);
      });
      this.#forgetIfIdle(fullKey);
      wokenOn = fullKey;
    }
  }

  /**
   * Ends an admitted attempt that failed, once `record` (which writes its failure) has succeeded. A failure that could
   * not be written (the database busy or away) still happened — the password was checked — so until it is written the
   * attempt keeps its place, counting against the budget like one in flight, and `record` is tried again in the
   * background, a growing pause apart, until it succeeds, `RECORD_RETRY.giveUpMs` has passed, it is cancelled or the
   * gate is closed; beyond `maxPending` such failures it is dropped at once. A dropped failure frees its place
   * uncounted. Rejects with the first try's error.
   */
  async releaseWhenRecorded(keys: string[], record: () => Promise<void>): Promise<void> {
    try {
      await record();
    } catch (error) {
      if (this.#closed) throw error; // the server is closing: the place goes with the process
      const unwritten: Unwritten = { keys, record, giveUpAt: Date.now() + this.#retry.giveUpMs };
      if (this.#pending.count >= this.#pending.max) this.#drop(unwritten, 'overCap');
      else {
        this.#pending.count++;
        this.#unwritten.add(unwritten);
        this.#recordLater(unwritten, this.#retry.firstMs);
      }
      throw error;
    }
    this.release(keys);
  }

  /**
   * Drops the failures waiting to be written whose keys `matches` accepts, freeing their places (a successful sign-in
   * resets what they would have counted; their other keys' counts, the address's, go with them). A retry already
   * writing is not stopped (if it lands, its failure counts), but its place is freed now and no retry follows it.
   */
  cancel(matches: (keys: string[]) => boolean): void {
    for (const unwritten of this.#unwritten) {
      if (!matches(unwritten.keys)) continue;
      clearTimeout(unwritten.timer);
      unwritten.cancelled = true;
      this.#forget(unwritten);
      this.release(unwritten.keys);
    }
  }

  /** Stops trying to write failures not written yet (the server is closing: their places go with the process). */
  close(): void {
    this.#closed = true;
    for (const unwritten of this.#unwritten) {
      clearTimeout(unwritten.timer);
      this.#forget(unwritten);
    }
    this.#warnDropped();
  }

  /** Ends an admitted attempt on these keys and lets the next waiter of each look again. */
  release(keys: string[]): void {
    for (const key of keys) {
      const state = this.#keys.get(key);
      if (!state || state.inFlight === 0) continue;
      state.inFlight--;
      state.ended++;
      this.#wakeNext(key);
      this.#forgetIfIdle(key);
    }
  }

  inFlight(key: string): number {
    return this.#keys.get(key)?.inFlight ?? 0;
  }

  #recordLater(unwritten: Unwritten, pause: number): void {
    const delay = pause * (0.5 + Math.random()); // ±50%
    if (Date.now() + delay > unwritten.giveUpAt) {
      this.#forget(unwritten);
      this.#drop(unwritten, 'givenUp');
      return;
    }
    unwritten.timer = setTimeout(async () => {
      unwritten.timer = undefined; // writing
      let written = true;
      try {
        await unwritten.record();
      } catch {
        written = false;
      }
      if (unwritten.cancelled) return; // its place was freed by cancel()
      if (written) {
        this.#forget(unwritten);
        this.release(unwritten.keys);
      } else if (!this.#closed) this.#recordLater(unwritten, Math.min(pause * 2, this.#retry.maxMs));
    }, delay);
    unwritten.timer.unref(); // never what keeps a process alive
  }

  #forget(unwritten: Unwritten): void {
    if (this.#unwritten.delete(unwritten)) this.#pending.count--;
  }

  /** Frees a failure's place without writing it, and counts it for the next warn line. */
  #drop(unwritten: Unwritten, why: 'givenUp' | 'overCap'): void {
    this.release(unwritten.keys);
    this.#dropped[why]++;
    if (this.#dropped.timer === undefined) {
      this.#dropped.timer = setTimeout(() => this.#warnDropped(), this.#retry.burstMs);
      this.#dropped.timer.unref();
    }
  }

  #warnDropped(): void {
    const { givenUp, overCap, timer } = this.#dropped;
    clearTimeout(timer);
    this.#dropped = { givenUp: 0, overCap: 0, timer: undefined };
    if (givenUp + overCap === 0) return;
    this.#logger?.warn(
      { event: 'attempts.unwritten-dropped', gate: this.#name, givenUp, overCap, stillPending: this.#unwritten.size },
      `${this.#name} failures dropped unwritten (database refusing writes): their places at the gate are freed`,
    );
  }

  #wakeNext(key: string): void {
    this.#keys.get(key)?.waiting[0]?.();
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) {
      state = { inFlight: 0, ended: 0, reading: 0, waiting: [] };
      this.#keys.set(key, state);
    }
    return state;
  }

  /** Drops a key's state once nothing refers to it (no attempt in flight, reading or waiting). */
  #forgetIfIdle(key: string): void {
    const state = this.#keys.get(key);
    if (state && state.inFlight === 0 && state.reading === 0 && state.waiting.length === 0) this.#keys.delete(key);
  }
}
