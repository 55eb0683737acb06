import type { Clock } from "../peers/clock.js";

/**
 * When no sharer has a missing piece (or no tracker answers): wait this long
 * before each new try. Peers that fail before their bitfield back off on it too.
 */
export const RETRY_SCHEDULE_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
/** ...and give up after this long without progress (a script's end waits at most this). */
export const GIVE_UP_MS = 10 * 60_000;

/** The wait before try `n` (0-based), the schedule's last step once past its end. */
export function retryDelay(n: number): number {
  return RETRY_SCHEDULE_MS[Math.min(n, RETRY_SCHEDULE_MS.length - 1)]!;
}

/**
 * Peers whose connection ended before their bitfield (refused, dead, rejected us):
 * not tried again before their time, on the retry schedule. Without this a dead
 * peer the tracker still lists (until its TTL) is redialled in a tight loop.
 */
export class Backoff {
  readonly #clock: Clock;
  readonly #peers = new Map<string, { fails: number; until: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Is this peer waiting out a failure? */
  holds(peer: string): boolean {
    return (this.#peers.get(peer)?.until ?? 0) > this.#clock.now();
  }

  failed(peer: string): void {
    const fails = (this.#peers.get(peer)?.fails ?? 0) + 1;
    this.#peers.set(peer, { fails, until: this.#clock.now() + retryDelay(fails - 1) });
  }

  succeeded(peer: string): void {
    this.#peers.delete(peer);
  }
}

/** The download's own tries while nothing can be fetched: which try, and when the next one is. */
export class Patience {
  readonly #clock: Clock;
  /** Tries made since the last progress. */
  tries = 0;
  /** When the next try is due (while waiting). */
  nextAt = 0;
  #lastProgress: number;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#lastProgress = clock.now();
  }

  /** Something arrived (or a peer can serve): the schedule starts again. */
  progress(): void {
    this.#lastProgress = this.#clock.now();
    this.tries = 0;
  }

  /** A peer can serve us: the schedule starts again, but nothing arrived yet. */
  hopeful(): void {
    this.tries = 0;
  }

  /** No progress since `since` (or the last piece, if later) for longer than GIVE_UP_MS? */
  exhausted(since: number): boolean {
    return this.#clock.now() - Math.max(this.#lastProgress, since) > GIVE_UP_MS;
  }

  /** The wait before the next try; counts the try. */
  next(): number {
    const delay = retryDelay(this.tries);
    this.tries++;
    this.nextAt = this.#clock.now() + delay;
    return delay;
  }
}
