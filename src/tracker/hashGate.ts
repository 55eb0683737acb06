import { availableParallelism } from "node:os";
import { GsError } from "../shared/errors.js";

/** Who waits for a hash: a login goes before any registration. */
export type HashKind = "login" | "register";

export interface HashGateOptions {
  /** Hashes at once. */
  slots: number;
  /** Waiting passes per kind; one more is refused with BUSY at once. */
  queue: Record<HashKind, number>;
}

/**
 * One hash per core. One fewer (leaving a core to the event loop) answered a flood of
 * refused logins faster (25 s against 41 s for 10,000, on this loaded box), but it
 * serialized the hashes of six clients starting at once until their create_user passed
 * the client's 3 s timeout. 8 queued logins at 141 ms on 2 cores is 0.6 s of wait.
 */
export const DEFAULT_HASH_GATE: HashGateOptions = {
  slots: availableParallelism(),
  queue: { login: 8, register: 8 },
};

/** A place at the gate: wait for `ready`, then hash, then `release()` (also when giving up). */
export interface HashPass {
  readonly ready: Promise<void>;
  release(): void;
}

interface Waiter {
  kind: HashKind;
  start: () => void;
}

/**
 * Bounds the scrypt work of a tracker: `slots` hashes run at once, a bounded queue per
 * kind waits, and anything beyond is refused at once, so a flood costs neither CPU nor
 * memory beyond the bound.
 */
export class HashGate {
  readonly #options: HashGateOptions;
  #running = 0;
  readonly #waiting: Record<HashKind, Waiter[]> = { login: [], register: [] };

  constructor(options: HashGateOptions = DEFAULT_HASH_GATE) {
    this.#options = options;
  }

  /** A pass, or BUSY when this kind's queue is full. Synchronous: a refusal costs nothing. */
  enter(kind: HashKind): HashPass {
    let released = false;
    let started = false;
    const release = () => {
      if (released) return;
      released = true;
      if (started) {
        this.#running--;
        this.#next();
      } else {
        const q = this.#waiting[kind];
        q.splice(q.indexOf(waiter), 1);
      }
    };
    let start!: () => void;
    const ready = new Promise<void>((resolve) => {
      start = () => {
        started = true;
        resolve();
      };
    });
    const waiter: Waiter = { kind, start };
    if (this.#running < this.#options.slots) {
      this.#running++;
      start();
    } else if (this.#waiting[kind].length < this.#options.queue[kind]) {
      this.#waiting[kind].push(waiter);
    } else {
      throw new GsError("BUSY", "the tracker is busy checking passwords: try again in a few seconds");
    }
    return { ready, release };
  }

  #next(): void {
    const w = this.#waiting.login.shift() ?? this.#waiting.register.shift();
    if (!w) return;
    this.#running++;
    w.start();
  }
}
