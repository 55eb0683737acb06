import { PIECE_SIZE } from "../../shared/constants.js";
import type { Clock, Timer } from "../peers/clock.js";
import { PIPELINE_DEPTH } from "./peerLink.js";

/**
 * Pieces requested at once by one download, shared among its peers (each keeps
 * PIPELINE_DEPTH at most, 2 at least): 6 MiB in flight however many peers serve,
 * so the downloader's memory does not grow with the swarm (16 took 4 seeders to
 * 159 MiB at peak, 12 keeps them near 135 MiB at the same speed).
 */
export const MAX_IN_FLIGHT = 12;
/**
 * The smallest request under a download limit. Each request is answered at the
 * sharer's line speed, whatever our limit: 4 KiB keeps even 20 kB/s within its bounds.
 */
export const MIN_BLOCK = 4 * 1024;

/** What one ready link keeps requested: this many requests of at most this many bytes each. */
export interface RequestBudget {
  readonly requests: number;
  readonly block: number;
}

/**
 * A download under a download limit keeps requested at most this long of its share of
 * the limit. A download limit can only read slowly, and bytes requested come at the
 * sharers' line speed into the kernel's receive buffers, so what is requested beyond the
 * round trip is what crosses the line above the limit at once: with whole pieces asked
 * of three fresh links, the first second carried 1.9 to 2.4 times the limit.
 */
export const WINDOW_SECONDS = 0.15;

/**
 * A ready link's budget. With no download limit above the download (`rate`
 * undefined): whole pieces, the download's MAX_IN_FLIGHT shared among its links. Under
 * a limit (`rate`: the download's share of it, SpeedLimits.share): the window
 * (WINDOW_SECONDS of it) shared among its links, never more than without a limit, in
 * blocks (powers of two up to a piece) of which two fit where the share allows, so
 * that one is on its way while the other is read; at least one block each; at a rate
 * of 0 (paused): none.
 */
export function requestBudget(readyLinks: number, rate: number | undefined): RequestBudget {
  const depth = requestDepth(readyLinks);
  if (rate === undefined) return { requests: depth, block: PIECE_SIZE };
  if (rate <= 0) return { requests: 0, block: MIN_BLOCK };
  const window = rate * WINDOW_SECONDS;
  const share = Math.min(window / Math.max(1, readyLinks), depth * PIECE_SIZE);
  let block = PIECE_SIZE;
  while (block > MIN_BLOCK && block * 2 > share) block /= 2;
  return { requests: Math.max(1, Math.floor(share / block)), block };
}

/**
 * The start gate's bound: the first requests wait at most this long after the first
 * bitfield for the other peers dialled with it (a loopback or LAN peer answers in
 * milliseconds; one that doesn't is not worth holding the download for).
 */
export const START_GATE_MS = 2_000;

/** Requests each ready link keeps in flight: the download's MAX_IN_FLIGHT shared among them. */
export function requestDepth(readyLinks: number): number {
  return Math.max(2, Math.min(PIPELINE_DEPTH, Math.floor(MAX_IN_FLIGHT / Math.max(1, readyLinks))));
}

/**
 * The start gate: no request before every peer of the first round has sent its
 * bitfield (or gone), or START_GATE_MS passed. Availability is counted before the
 * first pick (DESIGN.md "Download" 2-3), so the first requests spread over every
 * sharer instead of all going to whichever answered first.
 */
export class StartGate<Asker> {
  readonly #clock: Clock;
  readonly #onOpen: (asker: Asker | undefined) => void;
  #open = false;
  #timer: Timer | undefined;

  /** onOpen: every ready asker but `asker` may request now (the asker goes on by itself). */
  constructor(clock: Clock, onOpen: (asker: Asker | undefined) => void) {
    this.#clock = clock;
    this.#onOpen = onOpen;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** May `asker` request? `waiting`: some dialled peer has not sent its bitfield yet. */
  mayRequest(asker: Asker, waiting: boolean): boolean {
    if (this.#open) return true;
    if (waiting) {
      this.#timer ??= this.#clock.after(START_GATE_MS, () => this.#openNow(undefined));
      return false;
    }
    this.#openNow(asker);
    return true;
  }

  /** The download ends or pauses: no timer left behind (a later request sets one again). */
  dispose(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #openNow(asker: Asker | undefined): void {
    if (this.#open) return;
    this.#open = true;
    this.#timer?.cancel();
    this.#onOpen(asker);
  }
}
