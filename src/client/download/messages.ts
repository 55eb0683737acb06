import { printable } from "../../shared/ids.js";
import { formatBytes, formatRate } from "../format.js";
import { quoteWord } from "../tokenize.js";
import type { DownloadProgress } from "./progress.js";

/** Where a download's lines go: the client's event and warning streams. */
export interface DownloadNotices {
  event(line: string): void;
  warn(line: string): void;
}

/** The words a download shows its user, in one place: the engine passes facts, these make lines. */
export class DownloadMessages {
  readonly #file: string;

  constructor(groupId: string, name: string) {
    this.#file = `[${groupId}] ${quoteWord(name)}`;
  }

  corruptPiece(addr: string, piece: number): string {
    return `warning: peer ${printable(addr)} sent a corrupt piece ${piece} of ${this.#file}: dropped it`;
  }

  refused(addr: string, refusal: string): string {
    return `warning: peer ${printable(addr)} refused ${this.#file}: ${refusal}`;
  }

  announceFailed(complete: boolean, err: unknown): string {
    const what = complete ? "the complete file" : "a partial share";
    return `warning: could not announce ${what}: ${(err as Error).message}`;
  }

  complete(target: string, size: number, secs: number): string {
    return `download complete: ${this.#file} -> ${target} (${formatBytes(size)} in ${secs < 10 ? secs.toFixed(2) : secs.toFixed(0)} s, ${formatRate(size / Math.max(secs, 0.001))})`;
  }

  failed(error: string): string {
    return `download failed: ${this.#file}: ${error}`;
  }

  /** One line of state for show_downloads. */
  describe(p: DownloadProgress, error: string | undefined): string {
    switch (p.phase) {
      case "starting":
        return "starting";
      case "downloading":
        return `${p.percent.toFixed(1)}%  ${formatRate(p.speed)}  ${p.peers} peer${p.peers === 1 ? "" : "s"}`;
      case "waiting": {
        const secs = Math.max(0, Math.ceil(p.nextTryMs / 1000));
        return `${p.percent.toFixed(1)}%  waiting for a sharer: try ${p.tries} in ${secs} s`;
      }
      case "verifying":
        return "100%  checking the whole file's SHA1";
      case "complete":
        return "complete";
      case "failed":
        return `failed: ${error}`;
      case "stopped":
        return "stopped (resumes at next login)";
    }
  }
}

/** The error that ends a download nobody could serve. */
export function gaveUp(minutes: number): Error {
  return new Error(`no sharer had the missing pieces for ${minutes} minutes; try again later`);
}
