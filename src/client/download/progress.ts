import type { PathKind } from "../peers/dialer.js";
import type { LinkFigures } from "./swarm.js";

export type DownloadPhase =
  | "starting"
  | "downloading"
  | "waiting"
  | "verifying"
  | "complete"
  | "failed"
  | "stopped"
  /** held by the user: fetches nothing, still shares its verified pieces */
  | "paused"
  /** waits for one of the queue's active places (DownloadManager.maxActive) */
  | "queued";

/** A download's figures at one moment: what show_downloads and a progress line are made of. */
export interface DownloadProgress {
  phase: DownloadPhase;
  /** 0..100 */
  percent: number;
  /** the file's size in bytes (0 until the tracker answered) */
  size: number;
  pieceCount: number;
  /** pieces verified so far, this run and before, and their bytes */
  piecesDone: number;
  bytesDone: number;
  /** verified piece bytes received since this run began (a resume counts from 0) */
  bytesThisRun: number;
  /** milliseconds this run spent in the "downloading" phase */
  fetchingMs: number;
  /** links open now */
  peers: number;
  /** the open links, one by one */
  links: LinkFigures[];
  /** connected links by how they were made */
  paths: Record<PathKind, number>;
  /** piece bytes received this run by how their link was made */
  receivedByPath: Record<PathKind, number>;
  /** bytes per second over the last few seconds */
  speed: number;
  /** seconds until complete at the current speed; undefined while nothing arrives */
  etaSeconds: number | undefined;
  /** while waiting: tries made, and milliseconds until the next */
  tries: number;
  nextTryMs: number;
  /** lifetime totals, every run's: bytes served from its partial file, verified bytes received */
  uploadedBytes: number;
  downloadedBytes: number;
}

/** The phases of a download that is fetching or about to (not held, complete, failed or stopped). */
export function inFlight(phase: DownloadPhase): boolean {
  return phase === "starting" || phase === "downloading" || phase === "waiting" || phase === "verifying";
}

/** Time spent in one phase, summed over every stay in it. */
export class PhaseTimer {
  #since: number | undefined;
  #total = 0;

  /** The phase was entered (undefined: left) at `now`. */
  set(inPhase: boolean, now: number): void {
    if (inPhase && this.#since === undefined) this.#since = now;
    else if (!inPhase && this.#since !== undefined) {
      this.#total += now - this.#since;
      this.#since = undefined;
    }
  }

  total(now: number): number {
    return this.#total + (this.#since === undefined ? 0 : now - this.#since);
  }
}

/** The phases of a download not yet over: in flight, paused or queued. */
export function unfinished(phase: DownloadPhase): boolean {
  return inFlight(phase) || phase === "paused" || phase === "queued";
}
