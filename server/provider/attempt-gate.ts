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
 * any attempt does). A failure that could not be written keeps its place until it is (`releaseWhenRecorded`). So with a budget of N
 * no more than N checks per window get through in one process, however the database's answers and the releases
 * interleave, and nobody waits or is refused because of an attempt that has already ended. Across instances the
 * database decides: each process keeps its own gate, so a burst split across k instances can get up to k budgets'
 * worth of checks before the lock, which every instance then honours.
 */

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

/** The pause before trying again to write a failure that could not be written, doubling up to `max`. */
const RECORD_RETRY_MS = { first: 250, max: 30_000 };

export class AttemptGate {
  readonly #keys = new Map<string, KeyState>();
  /** Timers of failures waiting to be written again (`releaseWhenRecorded`). */
  readonly #retries = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(
    /** More waiters than this on one key are turned away at once (`busy`). */
    private readonly maxWaiting = 200,
    /** A waiter gives up (`busy`) after this long. */
    private readonly maxWaitMs = 10_000,
  ) {}

  /**
   * Admits one attempt on every key once each has room for it (then `release` must follow), or answers why not:
   * `blocked` (a lock applies), `exhausted` (no room left and nothing in flight that could make some: the caller
   * locks the key), `busy` (too many waiting, or waited too long). `room()` reads the current counts (and locks).
   */
  async acquire(keys: string[], room: () => Promise<Room>): Promise<GateOutcome> {
    const deadline = Date.now() + this.maxWaitMs;
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
      if (queue.length >= this.maxWaiting || Date.now() >= deadline) return leave('busy');
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
   * background, a growing pause apart, until it succeeds or the gate is closed. Rejects with the first try's error.
   */
  async releaseWhenRecorded(keys: string[], record: () => Promise<void>): Promise<void> {
    try {
      await record();
    } catch (error) {
      this.#recordLater(keys, record, RECORD_RETRY_MS.first);
      throw error;
    }
    this.release(keys);
  }

  /** Stops trying to write failures not written yet (the server is closing: their places go with the process). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
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

  #recordLater(keys: string[], record: () => Promise<void>, pause: number): void {
    if (this.#closed) return;
    const timer = setTimeout(async () => {
      this.#retries.delete(timer);
      try {
        await record();
      } catch {
        this.#recordLater(keys, record, Math.min(pause * 2, RECORD_RETRY_MS.max));
        return;
      }
      this.release(keys);
    }, pause);
    timer.unref(); // never what keeps a process alive
    this.#retries.add(timer);
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
