/**
 * Failed tokens, per source address: each failure's answer is held back twice as long
 * as the last one's (from `baseMs` up to `maxMs`), and an address with `maxHeld`
 * answers already held back gets the next ones refused at once, so parallel guesses
 * cannot get around the delay: at most maxHeld / maxMs guesses a second per address.
 * A success does not clear an address (another program on the same address could
 * otherwise reset it by using the page); an address with no failure for `forgetMs` is
 * forgotten. Memory is bounded: `maxAddresses` entries, the least recently failed one
 * dropped first.
 */
export interface SlowDownOptions {
  baseMs: number;
  maxMs: number;
  maxHeld: number;
  maxAddresses: number;
  forgetMs: number;
  now?: () => number;
}

/**
 * The token is 256 random bits, so guessing is hopeless at any rate; the delay stops a
 * flood of wrong tokens from costing more than a trickle, and a mistyped token costs the
 * user a quarter of a second.
 */
export const SLOW_DOWN: SlowDownOptions = {
  baseMs: 250,
  maxMs: 10_000,
  maxHeld: 4,
  maxAddresses: 1024,
  forgetMs: 10 * 60_000,
};

interface Entry {
  failures: number;
  lastMs: number;
  held: number;
}

export class SlowDown {
  readonly #o: SlowDownOptions;
  readonly #now: () => number;
  readonly #by = new Map<string, Entry>();

  constructor(o: SlowDownOptions = SLOW_DOWN) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Addresses remembered (bounded by maxAddresses). */
  get size(): number {
    return this.#by.size;
  }

  /**
   * A failed attempt from `addr`: how many ms to hold its answer back, or undefined when
   * the address already has maxHeld answers held (refuse it at once). Each defined
   * answer must be followed by release(addr) once sent.
   */
  fail(addr: string): number | undefined {
    const now = this.#now();
    let e = this.#by.get(addr);
    if (e && e.held === 0 && now - e.lastMs > this.#o.forgetMs) e = undefined;
    e ??= { failures: 0, lastMs: now, held: 0 };
    if (e.held >= this.#o.maxHeld) return undefined;
    e.failures++;
    e.lastMs = now;
    e.held++;
    // most recently failed last: the Map's order is the eviction order
    this.#by.delete(addr);
    this.#by.set(addr, e);
    while (this.#by.size > this.#o.maxAddresses) this.#by.delete(this.#by.keys().next().value!);
    return Math.min(this.#o.baseMs * 2 ** Math.min(e.failures - 1, 30), this.#o.maxMs);
  }

  release(addr: string): void {
    const e = this.#by.get(addr);
    if (e && e.held > 0) e.held--;
  }
}
