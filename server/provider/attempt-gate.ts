/**
 * Keeps the sign-in attempts of one key (a name, a name at an address, an address, a device) that are in flight in
 * this process within the room the key has left before its lock: with `room` = limit − failures already counted, at
 * most `room` attempts are being checked at once, and the next ones wait until one finishes (and its failure, if it
 * failed, is counted). So a burst of a thousand parallel guesses gets no more password checks than the limit allows,
 * while parallel *successful* sign-ins of one name (a test suite signing the same user in many times at once) just
 * queue for a moment. It is per process: with several instances a burst split across them can get up to one limit's
 * worth of checks per instance before the lock.
 */

export type Room = { blocked: true } | { blocked: false; room: Map<string, number> };
export type GateOutcome = 'admitted' | 'blocked' | 'exhausted' | 'busy';

export class AttemptGate {
  readonly #inFlight = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();

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
      const current = await room();
      if (current.blocked) return leave('blocked');
      const full = keys.find((key) => this.inFlight(key) >= (current.room.get(key) ?? Infinity));
      if (full === undefined) {
        for (const key of keys) this.#inFlight.set(key, this.inFlight(key) + 1);
        return 'admitted';
      }
      if (this.inFlight(full) === 0) return leave('exhausted');
      const queue = this.#waiting.get(full) ?? [];
      if (queue.length >= this.maxWaiting || Date.now() >= deadline) return leave('busy');
      if (wokenOn !== undefined && wokenOn !== full) this.#wakeNext(wokenOn);
      this.#waiting.set(full, queue);
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
      wokenOn = full;
    }
  }

  /** Ends an admitted attempt on these keys and lets the next waiter of each look again. */
  release(keys: string[]): void {
    for (const key of keys) {
      const left = this.inFlight(key) - 1;
      if (left > 0) this.#inFlight.set(key, left);
      else this.#inFlight.delete(key);
      this.#wakeNext(key);
    }
  }

  #wakeNext(key: string): void {
    const queue = this.#waiting.get(key);
    queue?.[0]?.();
    if (queue && queue.length === 0) this.#waiting.delete(key);
  }

  inFlight(key: string): number {
    return this.#inFlight.get(key) ?? 0;
  }
}
