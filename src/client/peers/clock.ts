/** A pending timer: cancel() is safe to call at any time, more than once. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the client's rules see it. The downloads, the peer server and the
 * reaching dialer read the time and set timers only through this, so a test can
 * drive backoff, the start gate, give-up, ticket expiry, renewal gaps, handshake
 * windows and head starts with a fake clock instead of waiting.
 */
export interface Clock {
  /** Milliseconds, like Date.now(). */
  now(): number;
  /** Calls fn once after ms. */
  after(ms: number, fn: () => void): Timer;
  /** Calls fn every ms until cancelled. */
  every(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
};

/** A promise that a timer or an event can settle, whichever comes first. */
export class Wakeup {
  readonly #clock: Clock;
  #wake: (() => void) | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#clock.after(ms, () => done());
      const done = () => {
        t.cancel();
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
  }

  wake(): void {
    this.#wake?.();
  }
}
