import { constants } from "node:fs";
import { access, lstat, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { GsError } from "../../shared/errors.js";
import type { ShareRegistry } from "../serving/shares.js";
import type { DownloadState, ShareState } from "../state.js";
import { quoteWord } from "../tokenize.js";
import type { TrackerClient } from "../tracker/trackerClient.js";
import type { Clock } from "../peers/clock.js";
import type { Dialer } from "../peers/dialer.js";
import { Download, type DownloadComponents } from "./download.js";
import type { DownloadListener, DownloadNews, DownloadRef } from "./events.js";
import { fileTracker } from "./fileTracker.js";
import { inFlight } from "./progress.js";

export interface DownloadManagerOptions {
  tracker: TrackerClient;
  shares: ShareRegistry;
  /** what each download tells as it goes */
  news(d: Download, n: DownloadNews): void;
  selfAddr: string;
  /** Something worth saving changed (a piece, the end). */
  onStateChange(): void;
  /** A download completed and is now a share of a complete file. */
  onComplete(share: ShareState): void;
  /** default: the system clock */
  clock?: Clock;
  /** how sharers are reached (reach/reachingDialer: direct, dialled back or relayed; TLS with keys proved both ways) */
  dialer: Dialer;
}

/** Completed downloads show_downloads keeps listing (as `[C]`) in a session. */
const KEEP_COMPLETED = 20;

/** The client's downloads: started by download_file, resumed at login, listed by show_downloads. */
export class DownloadManager {
  readonly #opts: DownloadManagerOptions;
  #downloads: Download[] = [];
  /** Downloads that failed since the client started (a script's exit status counts them). */
  failures = 0;

  constructor(opts: DownloadManagerOptions) {
    this.#opts = opts;
  }

  #components(groupId: string, name: string, news: DownloadListener): DownloadComponents {
    const o = this.#opts;
    return {
      tracker: fileTracker(o.tracker, groupId, name),
      shares: o.shares,
      news,
      selfAddr: o.selfAddr,
      onStateChange: () => o.onStateChange(),
      onComplete: (share) => o.onComplete(share),
      clock: o.clock,
      dialer: o.dialer,
    };
  }

  #active(): Download[] {
    return this.#downloads.filter((d) => inFlight(d.phase));
  }

  /** A download of the file, with the world it works in. */
  #create(groupId: string, name: string, init: ConstructorParameters<typeof Download>[1]): Download {
    // the download's news names it: the listener is called only once it is constructed
    const d: Download = new Download(
      this.#components(groupId, name, (n) => this.#opts.news(d, n)),
      init,
    );
    return d;
  }

  /** Checks what can be checked at once, then downloads in the background. */
  async start(groupId: string, name: string, destination: string): Promise<DownloadRef> {
    const mine = this.#opts.shares.find(groupId, name);
    if (mine?.have.complete) {
      throw new GsError(
        "BAD_REQUEST",
        `you already share [${groupId}] ${quoteWord(name)}: it is at ${mine.path}`,
      );
    }
    const target = await resolveTarget(name, destination);
    for (const d of this.#active()) {
      if (d.groupId === groupId && d.name === name) {
        throw new GsError(
          "BAD_REQUEST",
          `[${groupId}] ${quoteWord(name)} is already downloading to ${d.target}`,
        );
      }
      if (d.target === target) throw new GsError("BAD_REQUEST", `another download is writing ${target}`);
    }
    // membership and existence are checked now, so the user hears of them at once
    const { files } = await this.#opts.tracker.call("listFiles", { groupId });
    if (!files.some((f) => f.name === name)) {
      throw new GsError("FILE_NOT_FOUND", `no file ${quoteWord(name)} in ${groupId}`);
    }
    this.#add(this.#create(groupId, name, { groupId, name, target }));
    return { groupId, name, target };
  }

  #add(d: Download): void {
    // a finished download of the same file drops out of the list
    this.#downloads = this.#downloads.filter(
      (x) =>
        !(x.groupId === d.groupId && x.name === d.name && (x.phase === "failed" || x.phase === "stopped")),
    );
    this.#downloads.push(d);
    void d.start().then(() => {
      if (d.phase === "failed") this.failures++;
    });
  }

  /** At login: every download that was in flight goes on from its verified pieces. */
  resumeAll(states: DownloadState[]): DownloadRef[] {
    const resumed: DownloadRef[] = [];
    for (const s of states) {
      if (this.#active().some((d) => d.groupId === s.groupId && d.name === s.name)) continue;
      const init = { groupId: s.groupId, name: s.name, target: s.target, resume: s };
      this.#add(this.#create(s.groupId, s.name, init));
      resumed.push({ groupId: s.groupId, name: s.name, target: s.target });
    }
    return resumed;
  }

  /** This session's downloads, in the order they started. */
  list(): readonly Download[] {
    return this.#downloads;
  }

  /**
   * Forgets the downloads that failed, and completed ones beyond the last
   * KEEP_COMPLETED: show_downloads calls this once it has listed them. (A stopped
   * one stays: it is in the snapshot, to resume.)
   */
  dropEnded(): void {
    const ended = (d: Download) => d.phase === "failed";
    const completed = this.#downloads.filter((d) => d.phase === "complete");
    const old = new Set(completed.slice(0, Math.max(0, completed.length - KEEP_COMPLETED)));
    this.#downloads = this.#downloads.filter((d) => !ended(d) && !old.has(d));
  }

  /** The unfinished downloads, for the state file. */
  snapshot(): DownloadState[] {
    return this.#downloads.flatMap((d) => d.snapshot() ?? []);
  }

  /** Logout: stop every download, keeping partial files for the next login. */
  async stopAll(): Promise<void> {
    await Promise.all(this.#active().map((d) => d.stop()));
  }

  /** Forgets every download (after stopAll, at logout). */
  clear(): void {
    this.#downloads = [];
  }

  /**
   * cancel_download: stops the file's download in whatever phase it is (asking the
   * tracker, waiting for a sharer, fetching), deletes its partial file and drops it
   * from the list, so no snapshot holds it and the next login does not resume it.
   * The partial file's path, or undefined when there was no such download.
   */
  async forget(groupId: string, name: string): Promise<string | undefined> {
    const mine = this.#downloads.filter(
      (d) => d.groupId === groupId && d.name === name && d.phase !== "complete",
    );
    if (mine.length === 0) return undefined;
    this.#downloads = this.#downloads.filter((d) => !mine.includes(d));
    await Promise.all(mine.map((d) => d.stop(true)));
    return mine[0]!.partPath;
  }

  cancel(groupId: string, name: string): void {
    for (const d of this.#active()) if (d.groupId === groupId && d.name === name) void d.stop(true);
  }

  cancelGroup(groupId: string): void {
    for (const d of this.#active()) if (d.groupId === groupId) void d.stop(true);
  }

  /** Resolves when no download is in flight. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const active = this.#active();
      if (active.length === 0) return;
      await Promise.all(active.map((d) => d.done));
    }
  }
}

/** `<dir>/<file_name>` for a directory; the path itself otherwise. Never an existing file. */
async function resolveTarget(name: string, destination: string): Promise<string> {
  let target = resolve(destination);
  const st = await stat(target).catch(() => undefined);
  if (st?.isDirectory()) target = join(target, name);
  else if (st)
    throw new GsError("BAD_REQUEST", `${target} exists; not overwritten: choose another destination`);
  if (await stat(target).catch(() => undefined)) {
    throw new GsError("BAD_REQUEST", `${target} exists; not overwritten: choose another destination`);
  }
  // not ours to use (another user's, or a link to a file of ours): the partial file refuses it too, at open
  if (await lstat(`${target}.gspart`).catch(() => undefined)) {
    throw new GsError(
      "BAD_REQUEST",
      `${target}.gspart exists; not overwritten: remove it or choose another destination`,
    );
  }
  const dir = dirname(target);
  // access() alone passes a regular file for root: the partial file could then not be created
  const dirStat = await stat(dir).catch(() => undefined);
  if (dirStat && !dirStat.isDirectory()) {
    throw new GsError("BAD_REQUEST", `cannot write to ${dir}: not a directory`);
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new GsError("BAD_REQUEST", `cannot write to ${dir}: it does not exist or is not writable`);
  }
  if (basename(target).length > 240) throw new GsError("BAD_REQUEST", `file name too long for ${dir}`);
  return target;
}
