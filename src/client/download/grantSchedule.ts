import type { Grant } from "./fileTracker.js";

/**
 * Ask the tracker for new peers after these waits while downloading: soon at first,
 * then less often, and soon again after a list that named someone new. In a flash
 * crowd every downloader asks at once, when nobody has announced yet; with one
 * 5 s wait they learnt of each other only 5 s in, their uploads idle until then.
 * 5 s, the last, matches a sharer's heartbeat (tickets are renewed every
 * TICKET_REFRESH_MS whatever this says).
 */
export const REFRESH_SCHEDULE_MS = [500, 1_000, 2_000, 4_000, 5_000];
/** After a list with a new peer: the schedule starts again from this step (1 s). */
const REFRESH_AFTER_NEWS = 1;

/**
 * A download's latest grant (ticket and peers), when it came, and when the next
 * is due: no I/O, no clock of its own (times are given).
 */
export class GrantSchedule {
  /** The latest grant; undefined before the first. */
  latest: Grant | undefined;
  /** When the latest came. */
  at = 0;
  /** Every peer address a grant has named. */
  readonly #seen = new Set<string>();
  #step = 0;

  /** Records a grant that came at `now`. */
  record(grant: Grant, now: number): void {
    const first = this.latest === undefined;
    this.latest = grant;
    this.at = now;
    let news = false;
    for (const p of grant.peers) {
      if (this.#seen.has(p.addr)) continue;
      this.#seen.add(p.addr);
      news = true;
    }
    if (first) this.#step = 0;
    else this.#step = news ? REFRESH_AFTER_NEWS : this.#step + 1;
  }

  /** When the next peer list is due. */
  get dueAt(): number {
    return this.at + REFRESH_SCHEDULE_MS[Math.min(this.#step, REFRESH_SCHEDULE_MS.length - 1)]!;
  }
}
