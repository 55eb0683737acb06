import type { Signal, Store } from "./store/store.js";

/** Signals handed out in one answer (the route's maxItems). */
export const SIGNALS_PER_ANSWER = 32;
/**
 * How often a tracker with waiting polls looks in the store for signals another
 * tracker posted: the delay a reversal or relay across trackers adds, at most.
 * One query a second per tracker, whatever the number of waiting clients.
 */
const STORE_POLL_MS = 1_000;
/** Users woken per store poll; more wait for the next (they also wake at their own timeout). */
const WAKE_LIMIT = 10_000;
/** Polls waiting at once on this tracker; more are answered empty at once (clients poll again). */
const MAX_WAITING = 20_000;

/**
 * Where a client's long poll waits for its signals. A signal posted on this tracker
 * wakes its user's poll at once; one posted on another tracker of the same store is
 * found within STORE_POLL_MS. A user has one poll waiting at a time: a newer one
 * ends the older (its client moved on, or a second connection is a mistake).
 */
export class SignalHub {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #waiting = new Map<string, () => void>();
  #cursor = -1;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: Store, now: () => number) {
    this.#store = store;
    this.#now = now;
  }

  /** A signal for `userId` was posted here: its poll answers now. */
  posted(userId: string): void {
    this.#waiting.get(userId)?.();
  }

  /**
   * The user's signals after `after`, waiting up to `waitMs` for one to come; empty
   * when none came, when `aborted` fires or when a newer poll of the user's took over.
   */
  async wait(userId: string, after: number, waitMs: number, aborted: AbortSignal): Promise<Signal[]> {
    const take = () => this.#store.takeSignals(userId, after, this.#now(), SIGNALS_PER_ANSWER);
    if (waitMs <= 0 || aborted.aborted || this.#closed || this.#waiting.size >= MAX_WAITING) return take();
    this.#waiting.get(userId)?.(); // an older poll of the user's answers now
    // listening before the first look: a signal posted while it runs is not missed
    let poked = false;
    let poke = () => {};
    const poke_ = () => {
      poked = true;
      poke();
    };
    this.#waiting.set(userId, poke_);
    this.#watchStore();
    const deadline = this.#now() + waitMs;
    try {
      // a poke may find nothing (a signal read by the older poll): a few rounds, then empty
      for (let round = 0; round < 4; round++) {
        poked = false;
        const found = await take();
        if (found.length > 0 || aborted.aborted || this.#closed || this.#waiting.get(userId) !== poke_) {
          return found;
        }
        if (!poked) {
          const left = deadline - this.#now();
          if (left <= 0) return [];
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              aborted.removeEventListener("abort", done);
              resolve();
            };
            const timer = setTimeout(done, left);
            aborted.addEventListener("abort", done, { once: true });
            poke = done;
          });
          poke = () => {};
          if (!poked) return [];
        }
        if (this.#waiting.get(userId) !== poke_) return take();
      }
      return [];
    } finally {
      if (this.#waiting.get(userId) === poke_) this.#waiting.delete(userId);
    }
  }

  /** While any poll waits, looks for other trackers' signals once every STORE_POLL_MS. */
  #watchStore(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(async () => {
      try {
        const { last, users } = await this.#store.signalsAfter(this.#cursor, WAKE_LIMIT);
        for (const u of users) this.posted(u);
        this.#cursor = last;
      } catch {
        // the store is down: every poll ends at its timeout, and the next look tries again
      } finally {
        this.#timer = undefined;
        if (this.#waiting.size > 0) this.#watchStore();
      }
    }, STORE_POLL_MS);
    this.#timer.unref();
  }

  /** Ends every waiting poll, and answers later ones at once (the tracker is closing). */
  close(): void {
    this.#closed = true;
    for (const wake of [...this.#waiting.values()]) wake();
    clearTimeout(this.#timer);
  }
}
