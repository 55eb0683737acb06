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
import { Download, type DownloadComponents, type Hold } from "./download.js";
import type { DownloadListener, DownloadNews, DownloadRef } from "./events.js";
import { fileTracker } from "./fileTracker.js";
import { inFlight, unfinished } from "./progress.js";

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
  /** a download's share of the download limits above it (SpeedLimits.share) */
  limitShare?: DownloadComponents["limitShare"];
}

/**
 * Completed downloads kept in the list until show_downloads tells them: a client
 * that only serves the web page, which never drops them, keeps no more than these.
 */
const KEEP_COMPLETED = 20;
/** Downloads fetching at once unless the user sets another number (set_max_active). */
export const DEFAULT_MAX_ACTIVE = 4;
/** The most set_max_active accepts: each active download keeps up to 12 pieces (6 MiB) in flight. */
export const MAX_ACTIVE_LIMIT = 64;

/** The client's downloads: started by download_file, resumed at login, listed by show_downloads. */
export class DownloadManager {
  readonly #opts: DownloadManagerOptions;
  #downloads: Download[] = [];
  /** Downloads that failed since the client started (a script's exit status counts them). */
  failures = 0;
  #maxActive = DEFAULT_MAX_ACTIVE;
  /** settles (and is replaced) at every change of the queue: a hold, an end */
  #changed = signal();

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
      limitShare: o.limitShare,
    };
  }

  /** The downloads not over yet (fetching, paused or queued), in the queue's order. */
  #unfinished(): Download[] {
    return this.#downloads.filter((d) => unfinished(d.phase));
  }

  #find(groupId: string, name: string): Download {
    const d = this.#unfinished().find((x) => x.groupId === groupId && x.name === name);
    if (!d) {
      throw new GsError(
        "BAD_REQUEST",
        `no unfinished download of [${groupId}] ${quoteWord(name)}: see show_downloads`,
      );
    }
    return d;
  }

  /**
   * The queue's rule, applied after every change: in the list's order, the first
   * maxActive downloads that are not paused fetch, the others wait ("queued"). One
   * checking its whole file keeps its place (it is nearly done).
   */
  #schedule(): void {
    let places = this.#maxActive;
    for (const d of this.#unfinished()) {
      if (d.held === "paused") continue;
      if (places > 0 || d.phase === "verifying") {
        places--;
        d.hold(undefined);
      } else d.hold("queued");
    }
    this.#changed.resolve();
    this.#changed = signal();
  }

  /** The download limits changed: every fetching download's links request what they may now. */
  refill(): void {
    for (const d of this.#downloads) d.refill();
  }

  get maxActive(): number {
    return this.#maxActive;
  }

  /** set_max_active: how many downloads fetch at once (1..MAX_ACTIVE_LIMIT); the rest wait in order. */
  setMaxActive(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > MAX_ACTIVE_LIMIT) {
      throw new GsError(
        "BAD_REQUEST",
        `the number of active downloads is a whole number from 1 to ${MAX_ACTIVE_LIMIT}`,
      );
    }
    this.#maxActive = n;
    this.#schedule();
  }

  /** Pauses one download (it keeps sharing its verified pieces) or lets it go on (it may then wait in the queue). */
  pause(groupId: string, name: string, paused: boolean): Download {
    const d = this.#find(groupId, name);
    d.hold(paused ? "paused" : d.held === "paused" ? undefined : d.held);
    this.#schedule();
    return d;
  }

  /** Pauses, or lets go on, every unfinished download; the ones it changed. */
  pauseAll(paused: boolean): Download[] {
    const changed = this.#unfinished().filter((d) => (d.held === "paused") !== paused);
    for (const d of changed) d.hold(paused ? "paused" : undefined);
    this.#schedule();
    return changed;
  }

  /** Puts a download at `position` (1 = first) among the unfinished ones: the queue's order. */
  move(groupId: string, name: string, position: number): Download {
    const d = this.#find(groupId, name);
    const order = this.#unfinished();
    if (!Number.isInteger(position) || position < 1 || position > order.length) {
      throw new GsError("BAD_REQUEST", `a position in the queue is a whole number from 1 to ${order.length}`);
    }
    const rest = order.filter((x) => x !== d);
    const before = rest[position - 1];
    this.#downloads = this.#downloads.filter((x) => x !== d);
    const at = before ? this.#downloads.indexOf(before) : this.#downloads.length;
    this.#downloads.splice(at, 0, d);
    this.#schedule();
    return d;
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
  async start(groupId: string, name: string, destination: string): Promise<DownloadRef & { held?: Hold }> {
    const mine = this.#opts.shares.find(groupId, name);
    if (mine?.have.complete) {
      throw new GsError(
        "BAD_REQUEST",
        `you already share [${groupId}] ${quoteWord(name)}: it is at ${mine.path}`,
      );
    }
    const target = await resolveTarget(name, destination);
    for (const d of this.#unfinished()) {
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
    const d = this.#create(groupId, name, { groupId, name, target });
    this.#add(d);
    return { groupId, name, target, ...(d.held && { held: d.held }) };
  }

  #add(d: Download): void {
    // a finished download of the same file drops out of the list
    this.#downloads = this.#downloads.filter(
      (x) =>
        !(x.groupId === d.groupId && x.name === d.name && (x.phase === "failed" || x.phase === "stopped")),
    );
    const completed = this.#downloads.filter((x) => x.phase === "complete");
    const old = new Set(completed.slice(0, Math.max(0, completed.length - KEEP_COMPLETED)));
    this.#downloads = this.#downloads.filter((x) => !old.has(x));
    this.#downloads.push(d);
    // queued before it starts, if the active places are taken
    this.#schedule();
    void d.start().then(() => {
      if (d.phase === "failed") this.failures++;
      this.#schedule();
    });
  }

  /**
   * At login: every download that was unfinished goes on from its verified pieces,
   * in the saved order; a paused one stays paused (sharing what it has).
   */
  restore(states: DownloadState[], maxActive = DEFAULT_MAX_ACTIVE): (DownloadRef & { paused?: true })[] {
    this.#maxActive = Math.min(MAX_ACTIVE_LIMIT, Math.max(1, Math.trunc(maxActive) || DEFAULT_MAX_ACTIVE));
    const resumed: (DownloadRef & { paused?: true })[] = [];
    for (const s of states) {
      if (this.#unfinished().some((d) => d.groupId === s.groupId && d.name === s.name)) continue;
      const init = {
        groupId: s.groupId,
        name: s.name,
        target: s.target,
        resume: s,
        ...(s.paused && { hold: "paused" as const }),
      };
      this.#add(this.#create(s.groupId, s.name, init));
      resumed.push({
        groupId: s.groupId,
        name: s.name,
        target: s.target,
        ...(s.paused && { paused: true as const }),
      });
    }
    return resumed;
  }

  /** This session's downloads, in the order they started. */
  list(): readonly Download[] {
    return this.#downloads;
  }

  /**
   * Forgets the downloads that failed or completed: show_downloads calls this once
   * it has listed them, so each end is told once. (A stopped one stays: it is in
   * the snapshot, to resume.)
   */
  dropEnded(): void {
    this.#downloads = this.#downloads.filter((d) => d.phase !== "failed" && d.phase !== "complete");
  }

  /** The unfinished downloads, for the state file. */
  snapshot(): DownloadState[] {
    return this.#downloads.flatMap((d) => d.snapshot() ?? []);
  }

  /** Logout: stop every download, keeping partial files for the next login. */
  async stopAll(): Promise<void> {
    await Promise.all(this.#unfinished().map((d) => d.stop()));
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
    this.#schedule();
    await Promise.all(mine.map((d) => d.stop(true)));
    return mine[0]!.partPath;
  }

  cancel(groupId: string, name: string): void {
    for (const d of this.#unfinished()) if (d.groupId === groupId && d.name === name) void d.stop(true);
  }

  cancelGroup(groupId: string): void {
    for (const d of this.#unfinished()) if (d.groupId === groupId) void d.stop(true);
  }

  /** Resolves when no download is in flight or queued (paused ones wait for the user). */
  async whenIdle(): Promise<void> {
    for (;;) {
      const going = this.#downloads.filter((d) => inFlight(d.phase) || d.phase === "queued");
      if (going.length === 0) return;
      await Promise.race([this.#changed.promise, ...going.map((d) => d.done)]);
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

/** A promise and the function that settles it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
