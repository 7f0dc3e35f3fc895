/** The one source of time for everything that reasons about expiry. Tests pass a ManualClock and move it. */
import type { Clock } from './session-store.js';

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: Date | number = Date.now()) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.#now);
  }
  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.#now += ms;
  }
  set(to: Date | number): void {
    this.#now = typeof to === 'number' ? to : to.getTime();
  }
}
