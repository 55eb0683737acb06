import { Bitfield } from "../../shared/bitfield.js";
import { SHA1_LENGTH, TICKET_REFRESH_MS } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import {
  type FileIdentity,
  pieceCountOf,
  pieceLength,
  type ShareRegistry,
  uploadedOf,
} from "../serving/shares.js";
import type { DownloadState, ShareState } from "../state.js";
import { type Clock, systemClock, type Timer, Wakeup } from "../peers/clock.js";
import { byPath, type Dialer } from "../peers/dialer.js";
import type { FileInfo, FileTracker, Grant } from "./fileTracker.js";
import { GrantSchedule } from "./grantSchedule.js";
import type { DownloadFailure, DownloadListener, DownloadWarning } from "./events.js";
import { PartFile, type PartFileSystem, removePart } from "./partFile.js";
import { type DownloadPhase, type DownloadProgress, PhaseTimer } from "./progress.js";
import { GIVE_UP_MS, Patience } from "./retry.js";
import { SpeedMeter } from "./speed.js";
import { Swarm } from "./swarm.js";

export type { DownloadPhase } from "./progress.js";

/** Why a download does not fetch: the user paused it, or it waits for a place in the queue. */
export type Hold = "paused" | "queued";

/** Save the verified-piece bitfield at most this often (a crash refetches at most this much). */
const SAVE_EVERY_MS = 1_000;
/**
 * A held download wakes at least this often to look again (hold() wakes it at once;
 * this only bounds a wait that nothing else ends).
 */
const HELD_RECHECK_MS = 60_000;
/** Tell of new pieces at most this often: a front end redraws a bar, not 200 times a second at 100 MB/s. */
const PROGRESS_EVERY_MS = 1_000;

/** The world a download works in. Tests pass stand-ins for any of them. */
export interface DownloadComponents {
  /** this file's tracker calls */
  tracker: FileTracker;
  shares: ShareRegistry;
  /** what the download tells as it goes (progress, its end, peers it worked around) */
  news: DownloadListener;
  /** our own peer address: the tracker may list us among the sharers */
  selfAddr: string;
  /** Something worth saving changed (a piece, the end). */
  onStateChange(): void;
  /** The download completed and is now a share of a complete file. */
  onComplete(share: ShareState): void;
  /** default: the system clock */
  clock?: Clock;
  /** how sharers are reached (reach/reachingDialer: direct, dialled back or relayed; TLS with keys proved both ways) */
  dialer: Dialer;
  /**
   * This download's share of the download limits above it, bytes a second
   * (SpeedLimits.share); none given, or undefined: no limit.
   */
  limitShare?: (file: { groupId: string; name: string }) => number | undefined;
  /** default: node:fs */
  files?: PartFileSystem;
}

export interface DownloadInit {
  groupId: string;
  name: string;
  target: string;
  /** the saved state of a download that was in flight */
  resume?: DownloadState;
  /** held from the start: it opens its partial file and shares its pieces, but fetches nothing */
  hold?: Hold;
}

/** The file as the tracker described it, with the id computed here from its piece hashes. */
export interface FileFacts {
  sha1: string;
  size: number;
  pieceCount: number;
  /** fileIdOf(size, pieces), hex */
  fileIdHex: string;
}

/** A download whose file is known and whose partial file is open: whole from the start. */
interface Opened {
  readonly file: FileFacts;
  readonly part: PartFile;
  readonly swarm: Swarm;
}

/**
 * One file's download: pieces from several peers at once, each checked against
 * its SHA1 and written at its offset into a partial file beside the target; the
 * whole file's SHA1 checked at the end; then the partial file is linked under
 * the final name (never over an existing file) and becomes a share.
 * Nothing happens until start().
 */
export class Download {
  readonly groupId: string;
  readonly name: string;
  readonly target: string;
  readonly partPath: string;
  /** why it failed (phase "failed") */
  error: DownloadFailure | undefined;

  readonly #c: DownloadComponents;
  readonly #clock: Clock;
  #phase: DownloadPhase = "starting";
  readonly #fetching = new PhaseTimer();
  #done: Promise<void> | undefined;
  #resume: DownloadState | undefined;
  /** from the tracker's first answer on */
  #opened: Opened | undefined;
  readonly #wakeup: Wakeup;
  readonly #patience: Patience;
  readonly #speed: SpeedMeter;
  #stopping = false;
  #announced = false;
  /** Piece writes in progress, with the bookkeeping that follows each. */
  #writes = 0;
  #drained: (() => void) | undefined;
  #failOnWake = false;
  #lastSave = 0;
  #lastProgress = 0;
  /** The latest grant (ticket and peers), and when the next is due. */
  readonly #grants = new GrantSchedule();
  #refreshing: Promise<void> | undefined;
  /**
   * Every TICKET_REFRESH_MS while a link is open: a fresh ticket for each open
   * connection (sharers refuse one whose ticket expired), whatever phase we are in.
   */
  #renewTimer: Timer | undefined;
  #held: Hold | undefined;
  /** lifetime totals from earlier runs (the state file) */
  readonly #downloadedBefore: number;
  readonly #uploadedBefore: number;

  constructor(components: DownloadComponents, init: DownloadInit) {
    this.#c = components;
    this.#clock = components.clock ?? systemClock;
    const { groupId, name, target, resume } = init;
    this.groupId = groupId;
    this.name = name;
    this.target = target;
    this.partPath = resume?.partPath ?? `${target}.gspart`;
    this.#wakeup = new Wakeup(this.#clock);
    this.#patience = new Patience(this.#clock);
    this.#speed = new SpeedMeter(this.#clock);
    this.#held = init.hold;
    this.#downloadedBefore = resume?.downloadedBytes ?? 0;
    this.#uploadedBefore = resume?.uploadedBytes ?? 0;
    // until the partial file is open, a save records this much: enough to start again at login
    this.#resume = resume ?? {
      groupId,
      name,
      sha1: "",
      size: 0,
      target,
      partPath: this.partPath,
      have: "",
      mtimeMs: 0,
    };
  }

  /** Runs the download in the background; the promise is done's. */
  start(): Promise<void> {
    this.#done ??= this.#run();
    return this.#done;
  }

  /** Settles when the download ends, however it ends (at once if never started). */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  get phase(): DownloadPhase {
    // held before its partial file is open (asking the tracker) or while fetching: the hold is its state
    const going = this.#phase === "starting" || this.#phase === "waiting" || this.#phase === "downloading";
    return this.#held && going ? this.#held : this.#phase;
  }

  get held(): Hold | undefined {
    return this.#held;
  }

  /**
   * Pauses or queues the download (a Hold), or lets it fetch again (undefined). Held,
   * it closes its peer links and requests nothing, but its verified pieces stay
   * shared (the partial share stays in the registry, announced); let go, it goes on
   * from them. A download already checking its whole file finishes regardless.
   */
  hold(h: Hold | undefined): void {
    if (h === this.#held) return;
    this.#held = h;
    this.#wakeup.wake();
    this.#c.news({ type: "progress" });
  }

  /** Its links request what they may now (the download limits above it changed). */
  refill(): void {
    if (this.#held === undefined) this.#opened?.swarm.fillAll();
  }

  #setPhase(phase: DownloadPhase): void {
    const changed = phase !== this.#phase;
    this.#phase = phase;
    this.#fetching.set(phase === "downloading", this.#clock.now());
    if (changed) this.#c.news({ type: "progress" });
  }

  /** The file, once the tracker described it and its partial file is open. */
  get file(): FileFacts | undefined {
    return this.#opened?.file;
  }

  /** Our verified pieces (empty until the partial file is open). */
  get have(): Bitfield {
    return this.#opened?.swarm.have ?? new Bitfield(0);
  }

  get peerCount(): number {
    return this.#opened?.swarm.peerCount ?? 0;
  }

  /** Bytes per second over the last few seconds. */
  get speed(): number {
    return this.#speed.rate;
  }

  get percent(): number {
    if (this.#phase === "complete") return 100;
    const { file, done } = this.#pieces();
    if (!file) return 0;
    return file.pieceCount === 0 ? 100 : (100 * done) / file.pieceCount;
  }

  /**
   * The file and its verified pieces: the open partial file's, or until it is open (a
   * download restored paused or queued) what the saved state says, so that its figures
   * do not read 0 while it waits.
   */
  #pieces(): { file: FileFacts | undefined; done: number } {
    const o = this.#opened;
    if (o) return { file: o.file, done: o.swarm.have.count };
    const r = this.#resume;
    if (!r || r.size === 0 || r.have === "") return { file: undefined, done: 0 };
    const pieceCount = pieceCountOf(r.size);
    const file: FileFacts = { sha1: r.sha1, size: r.size, pieceCount, fileIdHex: r.fileId ?? "" };
    return { file, done: Bitfield.fromBase64(pieceCount, r.have).count };
  }

  /** The figures of this download now. */
  progress(): DownloadProgress {
    const now = this.#clock.now();
    const speed = this.speed;
    const o = this.#opened;
    const { file, done } = this.#pieces();
    const size = file?.size ?? 0;
    const pieceCount = file?.pieceCount ?? 0;
    const left = this.#phase === "complete" ? 0 : Math.max(0, size - bytesOf(done, file));
    const share = o && this.#c.shares.get(this.groupId, o.file.fileIdHex);
    return {
      phase: this.phase,
      percent: this.percent,
      size,
      pieceCount,
      piecesDone: this.#phase === "complete" ? pieceCount : done,
      bytesDone: size - left,
      bytesThisRun: this.#speed.total,
      fetchingMs: this.#fetching.total(now),
      peers: this.peerCount,
      links: o?.swarm.links ?? [],
      paths: o?.swarm.paths ?? byPath(),
      receivedByPath: { ...(o?.swarm.received ?? byPath()) },
      speed,
      etaSeconds: left === 0 ? 0 : speed > 0 ? left / speed : undefined,
      tries: this.#patience.tries,
      nextTryMs: this.#patience.nextAt - now,
      uploadedBytes: share ? uploadedOf(share) : this.#uploadedBefore,
      downloadedBytes: this.downloadedBytes,
    };
  }

  /** Verified bytes received over the download's life (every run). */
  get downloadedBytes(): number {
    return this.#downloadedBefore + this.#speed.total;
  }

  /** What survives a restart: only unfinished downloads are saved. */
  snapshot(): DownloadState | undefined {
    if (this.#phase === "complete" || this.#phase === "failed") return undefined;
    const o = this.#opened;
    const held = { ...(this.#held === "paused" && { paused: true }) };
    // not open yet (asking the tracker, checking the partial file): keep what we resume from
    if (!o) return this.#resume && { ...this.#resume, paused: undefined, ...held };
    const share = this.#c.shares.get(this.groupId, o.file.fileIdHex);
    return {
      groupId: this.groupId,
      name: this.name,
      sha1: o.file.sha1,
      fileId: o.file.fileIdHex,
      size: o.file.size,
      target: this.target,
      partPath: this.partPath,
      have: o.part.written.toBase64(),
      mtimeMs: o.part.mtimeMs,
      partIdentity: o.part.identity,
      ...held,
      uploadedBytes: share ? uploadedOf(share) : this.#uploadedBefore,
      downloadedBytes: this.downloadedBytes,
    };
  }

  /** Stops (logout, stop_share); the partial file stays for a resume unless `discard`. */
  async stop(discard = false): Promise<void> {
    this.#stopping = true;
    this.#wakeup.wake();
    await this.done;
    if (discard && this.#phase !== "complete") {
      if (this.#opened) this.#c.shares.remove(this.groupId, this.#opened.file.fileIdHex);
      await removePart(this.partPath, this.#partIdentity, this.#c.files);
    }
  }

  /** The partial file this download created: only it is ever removed (not what another user put at its path). */
  get #partIdentity(): FileIdentity | undefined {
    return this.#opened?.part.identity ?? this.#resume?.partIdentity;
  }

  async #run(): Promise<void> {
    // from the tracker's answer on, a failure deletes whatever partial file there is
    let described = false;
    try {
      const info = await this.#begin();
      if (!info) {
        this.#setPhase("stopped");
        return;
      }
      described = true;
      const o = await this.#open(info.file);
      // in the state file from now on, so a crash before the first piece still resumes it
      this.#c.onStateChange();
      this.#use(o, info);
      this.#renewTimer = this.#clock.every(TICKET_REFRESH_MS, () => {
        // not twice within half the period (the loop below may just have refreshed):
        // sharers refuse renewals closer than a second. Errors wait for the loop, which
        // fails on a refusal and retries an outage.
        const due = this.#clock.now() - this.#grants.at >= TICKET_REFRESH_MS / 2;
        if (due && this.peerCount > 0 && !this.#stopping) this.#refreshNow(o).catch(() => {});
      });
      await this.#fetch(o);
      o.swarm.closeAll("download ended");
      // every piece the picker counts as ours must be on disk before we save or finish
      await this.#drainWrites();
      if (this.#failOnWake && this.error) throw new GsError(this.error.code, this.error.message);
      if (this.#stopping) {
        this.#setPhase("stopped");
        await o.part.touch();
        return;
      }
      await this.#finish(o);
    } catch (err) {
      const o = this.#opened;
      if (err instanceof GsError && err.code === "UNAUTHORIZED") {
        // the session ended (a login elsewhere, or our own logout): not the download's
        // fault; it keeps its partial file and resumes at the next login
        o?.swarm.closeAll("session ended");
        await this.#drainWrites();
        this.#setPhase("stopped");
        await o?.part.touch();
        return;
      }
      o?.swarm.closeAll("download failed");
      await this.#drainWrites();
      const failure = failureOf(err);
      this.error = failure;
      this.#setPhase("failed");
      if (o) this.#c.shares.remove(this.groupId, o.file.fileIdHex);
      await o?.part.close();
      // only a partial file this run opened: one refused at open is left as it is
      if (described) await removePart(this.partPath, o?.part.identity, this.#c.files);
      this.#c.news({ type: "failed", failure });
      // the tracker listed us as a partial sharer: peers must not be sent to a file we deleted
      if (this.#announced) await this.#c.tracker.removeSharer().catch(() => {});
    } finally {
      this.#renewTimer?.cancel();
      await this.#opened?.part.close();
      this.#c.onStateChange();
    }
  }

  /** Until every piece is ours or we stop: new peers at each round, waits on the retry schedule when none can serve. */
  async #fetch(o: Opened): Promise<void> {
    let started = this.#clock.now();
    while (!o.swarm.complete && !this.#stopping) {
      if (this.#held) {
        // no links, no requests: its pieces are served from the partial share meanwhile
        o.swarm.closeAll(this.#held);
        this.#setPhase(this.#held);
        await this.#wakeup.wait(HELD_RECHECK_MS);
        // the time held does not count towards giving up
        started = this.#clock.now();
        this.#patience.hopeful();
        continue;
      }
      if (this.#clock.now() >= this.#grants.dueAt) {
        try {
          await this.#refreshNow(o);
        } catch (err) {
          // a tracker outage does not stop a download that has peers; retry at the next round
          if (!(err instanceof GsError && err.code === "TRACKER_UNAVAILABLE")) throw err;
        }
      } else if (this.#grants.latest) o.swarm.connect(this.#grants.latest);
      if (o.swarm.hopeful) {
        this.#setPhase("downloading");
        this.#patience.hopeful();
        await this.#wakeup.wait(Math.max(0, this.#grants.dueAt - this.#clock.now()));
      } else {
        if (this.#patience.exhausted(started)) throw gaveUp(GIVE_UP_MS / 60_000);
        await this.#waitForRetry();
      }
    }
  }

  async #waitForRetry(): Promise<void> {
    this.#setPhase("waiting");
    await this.#wakeup.wait(this.#patience.next());
  }

  /** The file's hashes, a ticket and peers; retried while no tracker answers. Undefined when stopped. */
  async #begin(): Promise<({ file: FileInfo } & Grant) | undefined> {
    const since = this.#clock.now();
    for (;;) {
      try {
        return await this.#c.tracker.begin();
      } catch (err) {
        const outage = err instanceof GsError && err.code === "TRACKER_UNAVAILABLE";
        if (!outage || this.#clock.now() - since > GIVE_UP_MS) throw err;
      }
      await this.#waitForRetry();
      if (this.#stopping) return undefined;
    }
  }

  /** Opens (or, on resume, reopens and checks) the partial file beside the target. */
  async #open(info: FileInfo): Promise<Opened> {
    const pieceCount = pieceCountOf(info.size);
    const hashes = Buffer.from(info.pieces, "base64");
    if (hashes.length !== pieceCount * SHA1_LENGTH)
      throw new GsError("BAD_TRACKER_ANSWER", "tracker sent a bad piece list");
    // the file is what its pieces are: the id we ask peers for is ours, not the tracker's word
    const file: FileFacts = {
      sha1: info.sha1,
      size: info.size,
      pieceCount,
      fileIdHex: fileIdOf(info.size, hashes),
    };
    if (info.fileId !== undefined && info.fileId !== file.fileIdHex) {
      throw new GsError(
        "BAD_TRACKER_ANSWER",
        "the tracker's file id does not match the piece hashes it sent",
      );
    }
    const r = this.#resume;
    // any saved state is this download's, which may own a partial file at partPath
    const saved = r && {
      have: r.have,
      mtimeMs: r.mtimeMs,
      identity: r.partIdentity,
      sameFile:
        r.sha1 === file.sha1 && r.size === file.size && (r.fileId ?? file.fileIdHex) === file.fileIdHex,
    };
    const part = await PartFile.open(this.partPath, this.target, hashes, file.size, saved, {
      fs: this.#c.files,
      onRoom: () => this.#opened?.swarm.fillAll(),
      stopped: () => this.#stopping,
      now: () => this.#clock.now(),
    });
    const warn = (warning: DownloadWarning) => this.#c.news({ type: "warning", warning });
    const swarm = new Swarm(
      {
        clock: this.#clock,
        // the file rides along: a dialer asks the tracker for a reversal or relay by it
        dialer: (target, signal) =>
          this.#c.dialer({ ...target, file: { groupId: this.groupId, name: this.name } }, signal),
      },
      {
        fileId: Buffer.from(file.fileIdHex, "hex"),
        size: file.size,
        pieceCount,
        pieceLength: (piece) => pieceLength(file.size, piece),
        have: part.written,
        selfAddr: this.#c.selfAddr,
        rate: () => this.#c.limitShare?.({ groupId: this.groupId, name: this.name }),
        owner: {
          onVerified: (piece, data) => this.#onVerified(o, piece, data),
          onCorrupt: (addr, piece) => warn({ kind: "corrupt-piece", addr, piece }),
          onRefused: (addr, refusal) => warn({ kind: "refused", addr, refusal }),
          onImpostor: (addr) => warn({ kind: "impostor", addr }),
          onUnreachable: (addr, reason) => warn({ kind: "unreachable", addr, reason }),
          onIdle: () => this.#wakeup.wake(),
          // a sharer as soon as a peer can serve us: the others of a flash crowd link to us
          // now and hear of each piece as it lands, instead of at a refresh after our first
          onServable: () => {
            if (!this.#announced) void this.#announcePartial(o);
          },
          diskFull: () => part.full,
          checks: (piece, data) => part.checks(piece, data),
        },
      },
    );
    const o: Opened = { file, part, swarm };
    this.#opened = o;
    if (part.written.count > 0) await this.#announcePartial(o);
    return o;
  }

  /** A fresh grant: its ticket goes to every open link, its peers are dialled. One at a time. */
  #refreshNow(o: Opened): Promise<void> {
    this.#refreshing ??= this.#c.tracker
      .peers()
      .then((g) => this.#use(o, g))
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  #use(o: Opened, grant: Grant): void {
    this.#grants.record(grant, this.#clock.now());
    if (this.#stopping || this.#held) return;
    o.swarm.renew(grant.ticket);
    o.swarm.connect(grant);
  }

  #onVerified(o: Opened, piece: number, data: Buffer): void {
    this.#speed.add(data.length);
    this.#patience.progress();
    this.#setPhase("downloading");
    const now = this.#clock.now();
    if (now - this.#lastProgress >= PROGRESS_EVERY_MS) {
      this.#lastProgress = now;
      this.#c.news({ type: "progress" });
    }
    void this.#write(o, piece, data);
  }

  async #write(o: Opened, piece: number, data: Buffer): Promise<void> {
    this.#writes++;
    try {
      await o.part.write(piece, data);
      // only now may peers ask us for it, and a saved state claim it
      this.#c.shares.markHave(this.groupId, o.file.fileIdHex, piece);
      if (!this.#announced) await this.#announcePartial(o);
      const now = this.#clock.now();
      if (now - this.#lastSave >= SAVE_EVERY_MS) {
        this.#lastSave = now;
        await o.part.touch();
        this.#c.onStateChange();
      }
    } catch (err) {
      if (!this.#stopping && this.#phase !== "failed") {
        const e = err as NodeJS.ErrnoException;
        this.error =
          e.code === "ENOSPC"
            ? { code: "DISK_FULL", message: "disk full" }
            : { code: "DOWNLOAD_FAILED", message: `cannot write ${this.partPath}: ${e.code ?? e.message}` };
        this.#stopping = true;
        this.#failOnWake = true;
        this.#wakeup.wake();
      }
    } finally {
      this.#writes--;
      if (this.#writes === 0) this.#drained?.();
      if (o.swarm.complete) this.#wakeup.wake();
    }
  }

  #drainWrites(): Promise<void> {
    if (this.#writes === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = () => {
        this.#drained = undefined;
        resolve();
      };
    });
  }

  /** From the first peer that can serve us on, we share what we have (DESIGN.md "Download" 5). */
  async #announcePartial(o: Opened): Promise<void> {
    this.#announced = true;
    const { file } = o;
    // a share of this group only: the same bytes shared in another group are another entry
    this.#c.shares.add({
      groupId: this.groupId,
      fileId: file.fileIdHex,
      name: this.name,
      sha1: file.sha1,
      size: file.size,
      path: this.partPath,
      identity: o.part.identity,
      have: new Bitfield(file.pieceCount, o.swarm.have.bytes),
      mtimeMs: undefined,
      servedBefore: this.#uploadedBefore,
    });
    await this.#c.tracker.addSharer(false).catch((err) =>
      this.#c.news({
        type: "warning",
        warning: { kind: "announce-failed", complete: false, message: (err as Error).message },
      }),
    );
  }

  /** Whole-file SHA1, then the partial file goes under the final name, never over an existing file. */
  async #finish(o: Opened): Promise<void> {
    const { file } = o;
    this.#setPhase("verifying");
    const mtimeMs = await o.part.finish(file.sha1);
    // it may have been shared already (partial); it may be a 0-byte file with no piece
    if (!this.#c.shares.get(this.groupId, file.fileIdHex)) {
      this.#c.shares.add({
        groupId: this.groupId,
        fileId: file.fileIdHex,
        name: this.name,
        sha1: file.sha1,
        size: file.size,
        path: this.target,
        identity: o.part.identity,
        have: Bitfield.full(file.pieceCount),
        mtimeMs,
        servedBefore: this.#uploadedBefore,
      });
    }
    const share = this.#c.shares.get(this.groupId, file.fileIdHex);
    if (share) share.downloadedBytes = this.downloadedBytes;
    this.#c.shares.completed(this.groupId, file.fileIdHex, this.target, mtimeMs);
    // only now: until completed, peers are served from the partial name
    await o.part.dropPartName();
    this.#setPhase("complete");
    this.#c.onComplete({
      groupId: this.groupId,
      name: this.name,
      path: this.target,
      sha1: file.sha1,
      fileId: file.fileIdHex,
      size: file.size,
      mtimeMs,
      uploadedBytes: share ? uploadedOf(share) : this.#uploadedBefore,
      downloadedBytes: this.downloadedBytes,
    });
    await this.#c.tracker.addSharer(true).catch((err) =>
      this.#c.news({
        type: "warning",
        warning: { kind: "announce-failed", complete: true, message: (err as Error).message },
      }),
    );
    this.#c.news({ type: "complete" });
  }
}

/** Bytes in `pieces` verified pieces, close enough for an estimate (the last piece may be short). */
function bytesOf(pieces: number, file: FileFacts | undefined): number {
  return !file || file.pieceCount === 0
    ? 0
    : Math.min(file.size, Math.round((pieces * file.size) / file.pieceCount));
}

/** The error that ends a download nobody could serve. */
function gaveUp(minutes: number): GsError {
  return new GsError(
    "DOWNLOAD_STALLED",
    `no sharer had the missing pieces for ${minutes} minutes; try again later`,
  );
}

/** What ended a download, as a value: a GsError keeps its code; anything else failed here, locally. */
function failureOf(err: unknown): DownloadFailure {
  if (err instanceof GsError) return { code: err.code, message: err.message };
  return { code: "DOWNLOAD_FAILED", message: (err as Error).message };
}
