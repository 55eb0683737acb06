/**
 * Slows down password guessing: after FREE_FAILURES failed logins for a key (a user
 * id, or a client address), each further attempt must wait twice as long as the
 * last, up to MAX_DELAY_MS. A success clears the key. Memory is bounded by MAX_KEYS
 * (the oldest entry goes first). Kept per tracker process: a guesser spread over N
 * trackers gets N times the attempts, still exponentially slowed.
 */
const FREE_FAILURES = 5;
const BASE_DELAY_MS = 1_000;
const MAX_DELAY_MS = 60_000;
const MAX_KEYS = 10_000;

interface Entry {
  failures: number;
  blockedUntil: number;
}

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();

  /** ms to wait before this key may try again; 0 when it may try now. */
  waitFor(key: string, now: number): number {
    const e = this.#entries.get(key);
    return e && e.blockedUntil > now ? e.blockedUntil - now : 0;
  }

  failed(key: string, now: number): void {
    const e = this.#entries.get(key) ?? { failures: 0, blockedUntil: 0 };
    e.failures++;
    if (e.failures >= FREE_FAILURES) {
      e.blockedUntil = now + Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (e.failures - FREE_FAILURES));
    }
    this.#entries.delete(key); // re-insert: Map order is our LRU order
    this.#entries.set(key, e);
    if (this.#entries.size > MAX_KEYS) this.#entries.delete(this.#entries.keys().next().value!);
  }

  succeeded(key: string): void {
    this.#entries.delete(key);
  }
}
