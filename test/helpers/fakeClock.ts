import type { Clock, Timer } from "../../src/client/peers/clock.js";

interface Pending {
  at: number;
  fn: () => void;
  every: number | undefined;
  cancelled: boolean;
  seq: number;
}

/** Lets promise callbacks and in-memory stream traffic run to quiescence (no real time passes). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/**
 * A clock whose time moves only when a test says so. advance() runs each timer
 * that falls due, in order, and lets the code it woke run before the next.
 */
export class FakeClock implements Clock {
  #now = 1_700_000_000_000;
  #seq = 0;
  readonly #timers: Pending[] = [];

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add(ms, fn, undefined);
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add(ms, fn, ms);
  }

  /** Timers not yet run or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const live = this.#timers.filter((t) => !t.cancelled && t.at <= end);
      if (live.length === 0) break;
      const next = live.reduce((a, b) => (a.at < b.at || (a.at === b.at && a.seq < b.seq) ? a : b));
      this.#now = Math.max(this.#now, next.at);
      if (next.every === undefined) this.#remove(next);
      else {
        next.at += next.every;
        next.seq = this.#seq++;
      }
      next.fn();
    }
    this.#now = end;
    await settle();
  }

  #add(ms: number, fn: () => void, every: number | undefined): Timer {
    const t: Pending = { at: this.#now + Math.max(0, ms), fn, every, cancelled: false, seq: this.#seq++ };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
        this.#remove(t);
      },
    };
  }

  #remove(t: Pending): void {
    const i = this.#timers.indexOf(t);
    if (i >= 0) this.#timers.splice(i, 1);
  }
}
