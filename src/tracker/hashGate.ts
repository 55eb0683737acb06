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
 * One core is left to the event loop: with both cores of this box hashing, a flood of
 * refused logins was answered at 240/s instead of 2,500/s (health checks), and every
 * other request of the tracker waited as long. 8 queued logins at 141 ms is 1.1 s of wait.
 */
export const DEFAULT_HASH_GATE: HashGateOptions = {
  slots: Math.max(1, availableParallelism() - 1),
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
