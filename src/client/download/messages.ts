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

  impostor(addr: string): string {
    return (
      `warning: whoever is at ${printable(addr)} did not prove the key the tracker gave for that sharer ` +
      `of ${this.#file}: sent it nothing, and not dialling it again`
    );
  }

  unreachable(addr: string, why: string): string {
    return `warning: cannot reach the sharer at ${printable(addr)} for ${this.#file}: ${printable(why)}; retrying on the download's schedule`;
  }

  refused(addr: string, refusal: string): string {
    return `warning: peer ${printable(addr)} refused ${this.#file}: ${refusal}`;
  }

  announceFailed(complete: boolean, err: unknown): string {
    const what = complete ? "the complete file" : "a partial share";
    return `warning: could not announce ${what}: ${(err as Error).message}`;
  }

  /**
   * What this run fetched and how long it spent fetching (not waiting for a sharer,
   * not checking), so the rate is the network's; bytes a resume found on disk are
   * named apart.
   */
  complete(target: string, p: DownloadProgress): string {
    const secs = p.fetchingMs / 1000;
    const rate = p.fetchingMs > 0 ? `, ${formatRate((p.bytesThisRun * 1000) / p.fetchingMs)}` : "";
    const had = p.size - p.bytesThisRun;
    const before = had > 0 ? `; ${formatBytes(had)} were already on disk` : "";
    // said only when some came another way than a direct connection
    const ways = Object.entries(p.receivedByPath).filter(([, n]) => n > 0);
    const how =
      ways.length > 0 && ways.some(([k]) => k !== "direct")
        ? `: ${ways.map(([k, n]) => `${formatBytes(n)} ${k}`).join(", ")}`
        : "";
    return `download complete: ${this.#file} -> ${target} (${formatBytes(p.bytesThisRun)} fetched in ${secs < 10 ? secs.toFixed(2) : secs.toFixed(0)} s${rate}${how}${before})`;
  }

  failed(error: string): string {
    return `download failed: ${this.#file}: ${error}`;
  }

  /**
   * One line of state for show_downloads, in the manner of aria2c's summary:
   * `130 MiB/300 MiB 43.3%  DL 12.5 MB/s  ETA 14 s  2 peers (1 direct, 1 relayed)`.
   */
  describe(p: DownloadProgress, error: string | undefined): string {
    const bytes = `${formatBytes(p.bytesDone)}/${formatBytes(p.size)} ${p.percent.toFixed(1)}%`;
    switch (p.phase) {
      case "starting":
        return "starting";
      case "downloading": {
        const kinds = Object.entries(p.paths)
          .filter(([, n]) => n > 0)
          .map(([kind, n]) => `${n} ${kind}`);
        const peers = `${p.peers} peer${p.peers === 1 ? "" : "s"}${kinds.length > 0 ? ` (${kinds.join(", ")})` : ""}`;
        return `${bytes}  DL ${formatRate(p.speed)}  ETA ${formatEta(p.etaSeconds)}  ${peers}`;
      }
      case "waiting": {
        const secs = Math.max(0, Math.ceil(p.nextTryMs / 1000));
        return `${bytes}  waiting for a sharer: try ${p.tries} in ${secs} s`;
      }
      case "verifying":
        return `${formatBytes(p.size)}/${formatBytes(p.size)} 100%  checking the whole file's SHA1`;
      case "complete":
        return "complete";
      case "failed":
        return `failed: ${error}`;
      case "stopped":
        return "stopped (resumes at next login)";
    }
  }
}

/** `14 s`, `3 min 20 s`, `2 h 5 min`; `?` while nothing arrives. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "?";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The error that ends a download nobody could serve. */
export function gaveUp(minutes: number): Error {
  return new Error(`no sharer had the missing pieces for ${minutes} minutes; try again later`);
}
