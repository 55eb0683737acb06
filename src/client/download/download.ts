import { Bitfield } from "../../shared/bitfield.js";
import { SHA1_LENGTH, TICKET_REFRESH_MS } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import { type FileIdentity, pieceCountOf, pieceLength, type ShareRegistry } from "../serving/shares.js";
import type { DownloadState, ShareState } from "../state.js";
import { type Clock, systemClock, type Timer, Wakeup } from "./clock.js";
import { byPath, type Dialer } from "./dialer.js";
import type { FileInfo, FileTracker, Grant } from "./fileTracker.js";
import { GrantSchedule } from "./grantSchedule.js";
import { DownloadMessages, type DownloadNotices, gaveUp } from "./messages.js";
import { PartFile, type PartFileSystem, removePart } from "./partFile.js";
import { type DownloadPhase, type DownloadProgress, PhaseTimer } from "./progress.js";
import { GIVE_UP_MS, Patience } from "./retry.js";
import { SpeedMeter } from "./speed.js";
import { Swarm } from "./swarm.js";

export type { DownloadPhase } from "./progress.js";

/** Save the verified-piece bitfield at most this often (a crash refetches at most this much). */
const SAVE_EVERY_MS = 1_000;

/** The world a download works in. Tests pass stand-ins for any of them. */
export interface DownloadComponents {
  /** this file's tracker calls */
  tracker: FileTracker;
  shares: ShareRegistry;
  notices: DownloadNotices;
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
  /** default: node:fs */
  files?: PartFileSystem;
}

export interface DownloadInit {
  groupId: string;
  name: string;
  target: string;
  /** the saved state of a download that was in flight */
  resume?: DownloadState;
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
  error: string | undefined;
  sha1 = "";
  /** fileIdOf(size, pieces) in hex, computed here from the piece hashes */
  fileIdHex = "";
  size = 0;
  pieceCount = 0;

  readonly #c: DownloadComponents;
  readonly #clock: Clock;
  readonly #say: DownloadMessages;
  #phase: DownloadPhase = "starting";
  readonly #fetching = new PhaseTimer();
  #done: Promise<void> | undefined;
  #resume: DownloadState | undefined;
  #part: PartFile | undefined;
  #swarm: Swarm | undefined;
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
  /** The latest grant (ticket and peers), and when the next is due. */
  readonly #grants = new GrantSchedule();
  #refreshing: Promise<void> | undefined;
  /**
   * Every TICKET_REFRESH_MS while a link is open: a fresh ticket for each open
   * connection (sharers refuse one whose ticket expired), whatever phase we are in.
   */
  #renewTimer: Timer | undefined;

  constructor(components: DownloadComponents, init: DownloadInit) {
    this.#c = components;
    this.#clock = components.clock ?? systemClock;
    const { groupId, name, target, resume } = init;
    this.groupId = groupId;
    this.name = name;
    this.target = target;
    this.partPath = resume?.partPath ?? `${target}.gspart`;
    this.#say = new DownloadMessages(groupId, name);
    this.#wakeup = new Wakeup(this.#clock);
    this.#patience = new Patience(this.#clock);
    this.#speed = new SpeedMeter(this.#clock);
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
    return this.#phase;
  }

  #setPhase(phase: DownloadPhase): void {
    this.#phase = phase;
    this.#fetching.set(phase === "downloading", this.#clock.now());
  }

  /** Our verified pieces (empty until the partial file is open). */
  get have(): Bitfield {
    return this.#swarm?.have ?? new Bitfield(0);
  }

  get peerCount(): number {
    return this.#swarm?.peerCount ?? 0;
  }

  /** Bytes per second over the last few seconds. */
  get speed(): number {
    return this.#speed.rate;
  }

  get percent(): number {
    if (this.#phase === "complete") return 100;
    if (!this.#swarm) return 0;
    return this.pieceCount === 0 ? 100 : (100 * this.#swarm.have.count) / this.pieceCount;
  }

  /** The figures of this download now. */
  progress(): DownloadProgress {
    const now = this.#clock.now();
    const speed = this.speed;
    const done = this.#swarm?.have.count ?? 0;
    const left = this.#phase === "complete" ? 0 : Math.max(0, this.size - this.#bytesOf(done));
    return {
      phase: this.#phase,
      percent: this.percent,
      size: this.size,
      pieceCount: this.pieceCount,
      piecesDone: this.#phase === "complete" ? this.pieceCount : done,
      bytesDone: this.size - left,
      bytesThisRun: this.#speed.total,
      fetchingMs: this.#fetching.total(now),
      peers: this.peerCount,
      paths: this.#swarm?.paths ?? byPath(),
      receivedByPath: { ...(this.#swarm?.received ?? byPath()) },
      speed,
      etaSeconds: left === 0 ? 0 : speed > 0 ? left / speed : undefined,
      tries: this.#patience.tries,
      nextTryMs: this.#patience.nextAt - now,
    };
  }

  /** Bytes in `pieces` verified pieces, close enough for an estimate (the last piece may be short). */
  #bytesOf(pieces: number): number {
    return this.pieceCount === 0
      ? 0
      : Math.min(this.size, Math.round((pieces * this.size) / this.pieceCount));
  }

  /** One line of state for show_downloads. */
  describe(): string {
    return this.#say.describe(this.progress(), this.error);
  }

  /** What survives a restart: only unfinished downloads are saved. */
  snapshot(): DownloadState | undefined {
    if (this.#phase === "complete" || this.#phase === "failed") return undefined;
    const part = this.#part;
    // not open yet (asking the tracker, checking the partial file): keep what we resume from
    if (!this.sha1 || !part) return this.#resume;
    return {
      groupId: this.groupId,
      name: this.name,
      sha1: this.sha1,
      fileId: this.fileIdHex,
      size: this.size,
      target: this.target,
      partPath: this.partPath,
      have: part.written.toBase64(),
      mtimeMs: part.mtimeMs,
      partIdentity: part.identity,
    };
  }

  /** Stops (logout, stop_share); the partial file stays for a resume unless `discard`. */
  async stop(discard = false): Promise<void> {
    this.#stopping = true;
    this.#wakeup.wake();
    await this.done;
    if (discard && this.#phase !== "complete") {
      this.#c.shares.remove(this.groupId, this.fileIdHex);
      await removePart(this.partPath, this.#partIdentity, this.#c.files);
    }
  }

  /** The partial file this download created: only it is ever removed (not what another user put at its path). */
  get #partIdentity(): FileIdentity | undefined {
    return this.#part?.identity ?? this.#resume?.partIdentity;
  }

  async #run(): Promise<void> {
    try {
      const info = await this.#begin();
      if (!info) {
        this.#setPhase("stopped");
        return;
      }
      await this.#open(info.file);
      // in the state file from now on, so a crash before the first piece still resumes it
      this.#c.onStateChange();
      this.#use(info);
      this.#renewTimer = this.#clock.every(TICKET_REFRESH_MS, () => {
        // not twice within half the period (the loop below may just have refreshed):
        // sharers refuse renewals closer than a second. Errors wait for the loop, which
        // fails on a refusal and retries an outage.
        const due = this.#clock.now() - this.#grants.at >= TICKET_REFRESH_MS / 2;
        if (due && this.peerCount > 0 && !this.#stopping) this.#refreshNow().catch(() => {});
      });
      await this.#fetch();
      this.#swarm!.closeAll("download ended");
      // every piece the picker counts as ours must be on disk before we save or finish
      await this.#drainWrites();
      if (this.#failOnWake) throw new Error(this.error);
      if (this.#stopping) {
        this.#setPhase("stopped");
        await this.#part!.touch();
        return;
      }
      await this.#finish();
    } catch (err) {
      if (err instanceof GsError && err.code === "UNAUTHORIZED") {
        // the session ended (a login elsewhere, or our own logout): not the download's
        // fault; it keeps its partial file and resumes at the next login
        this.#swarm?.closeAll("session ended");
        await this.#drainWrites();
        this.#setPhase("stopped");
        await this.#part?.touch();
        return;
      }
      this.#swarm?.closeAll("download failed");
      await this.#drainWrites();
      this.#setPhase("failed");
      this.error = (err as Error).message;
      this.#c.shares.remove(this.groupId, this.fileIdHex);
      await this.#part?.close();
      // only a partial file this run opened: one refused at open is left as it is
      if (this.sha1) await removePart(this.partPath, this.#part?.identity, this.#c.files);
      this.#c.notices.event(this.#say.failed(this.error));
      // the tracker listed us as a partial sharer: peers must not be sent to a file we deleted
      if (this.#announced) await this.#c.tracker.removeSharer().catch(() => {});
    } finally {
      this.#renewTimer?.cancel();
      await this.#part?.close();
      this.#c.onStateChange();
    }
  }

  /** Until every piece is ours or we stop: new peers at each round, waits on the retry schedule when none can serve. */
  async #fetch(): Promise<void> {
    const swarm = this.#swarm!;
    const started = this.#clock.now();
    while (!swarm.complete && !this.#stopping) {
      if (this.#clock.now() >= this.#grants.dueAt) {
        try {
          await this.#refreshNow();
        } catch (err) {
          // a tracker outage does not stop a download that has peers; retry at the next round
          if (!(err instanceof GsError && err.code === "TRACKER_UNAVAILABLE")) throw err;
        }
      } else if (this.#grants.latest) swarm.connect(this.#grants.latest);
      if (swarm.hopeful) {
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
  async #open(file: FileInfo): Promise<void> {
    this.sha1 = file.sha1;
    this.size = file.size;
    this.pieceCount = pieceCountOf(file.size);
    const hashes = Buffer.from(file.pieces, "base64");
    if (hashes.length !== this.pieceCount * SHA1_LENGTH) throw new Error("tracker sent a bad piece list");
    // the file is what its pieces are: the id we ask peers for is ours, not the tracker's word
    this.fileIdHex = fileIdOf(file.size, hashes);
    if (file.fileId !== undefined && file.fileId !== this.fileIdHex) {
      throw new Error("the tracker's file id does not match the piece hashes it sent");
    }
    const r = this.#resume;
    // any saved state is this download's, which may own a partial file at partPath
    const saved = r && {
      have: r.have,
      mtimeMs: r.mtimeMs,
      identity: r.partIdentity,
      sameFile:
        r.sha1 === file.sha1 && r.size === file.size && (r.fileId ?? this.fileIdHex) === this.fileIdHex,
    };
    const part = await PartFile.open(this.partPath, this.target, hashes, file.size, saved, {
      fs: this.#c.files,
      onRoom: () => this.#swarm?.fillAll(),
      stopped: () => this.#stopping,
      now: () => this.#clock.now(),
    });
    this.#part = part;
    this.#swarm = new Swarm(
      {
        clock: this.#clock,
        // the file rides along: a dialer asks the tracker for a reversal or relay by it
        dialer: (target, signal) =>
          this.#c.dialer({ ...target, file: { groupId: this.groupId, name: this.name } }, signal),
      },
      {
        fileId: Buffer.from(this.fileIdHex, "hex"),
        size: file.size,
        pieceCount: this.pieceCount,
        pieceLength: (piece) => pieceLength(file.size, piece),
        have: part.written,
        selfAddr: this.#c.selfAddr,
        owner: {
          onVerified: (piece, data) => this.#onVerified(piece, data),
          onCorrupt: (addr, piece) => this.#c.notices.warn(this.#say.corruptPiece(addr, piece)),
          onRefused: (addr, refusal) => this.#c.notices.warn(this.#say.refused(addr, refusal)),
          onImpostor: (addr) => this.#c.notices.warn(this.#say.impostor(addr)),
          onUnreachable: (addr, why) => this.#c.notices.warn(this.#say.unreachable(addr, why)),
          onIdle: () => this.#wakeup.wake(),
          // a sharer as soon as a peer can serve us: the others of a flash crowd link to us
          // now and hear of each piece as it lands, instead of at a refresh after our first
          onServable: () => {
            if (!this.#announced) void this.#announcePartial();
          },
          diskFull: () => part.full,
          checks: (piece, data) => part.checks(piece, data),
        },
      },
    );
    if (part.written.count > 0) await this.#announcePartial();
  }

  /** A fresh grant: its ticket goes to every open link, its peers are dialled. One at a time. */
  #refreshNow(): Promise<void> {
    this.#refreshing ??= this.#c.tracker
      .peers()
      .then((g) => this.#use(g))
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  #use(grant: Grant): void {
    this.#grants.record(grant, this.#clock.now());
    if (this.#stopping) return;
    this.#swarm!.renew(grant.ticket);
    this.#swarm!.connect(grant);
  }

  #onVerified(piece: number, data: Buffer): void {
    this.#speed.add(data.length);
    this.#patience.progress();
    this.#setPhase("downloading");
    void this.#write(piece, data);
  }

  async #write(piece: number, data: Buffer): Promise<void> {
    const part = this.#part!;
    this.#writes++;
    try {
      await part.write(piece, data);
      // only now may peers ask us for it, and a saved state claim it
      this.#c.shares.markHave(this.groupId, this.fileIdHex, piece);
      if (!this.#announced) await this.#announcePartial();
      const now = this.#clock.now();
      if (now - this.#lastSave >= SAVE_EVERY_MS) {
        this.#lastSave = now;
        await part.touch();
        this.#c.onStateChange();
      }
    } catch (err) {
      if (!this.#stopping && this.#phase !== "failed") {
        const e = err as NodeJS.ErrnoException;
        this.error =
          e.code === "ENOSPC" ? "disk full" : `cannot write ${this.partPath}: ${e.code ?? e.message}`;
        this.#stopping = true;
        this.#failOnWake = true;
        this.#wakeup.wake();
      }
    } finally {
      this.#writes--;
      if (this.#writes === 0) this.#drained?.();
      if (this.#swarm!.complete) this.#wakeup.wake();
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
  async #announcePartial(): Promise<void> {
    this.#announced = true;
    // a share of this group only: the same bytes shared in another group are another entry
    this.#c.shares.add({
      groupId: this.groupId,
      fileId: this.fileIdHex,
      name: this.name,
      sha1: this.sha1,
      size: this.size,
      path: this.partPath,
      identity: this.#part!.identity,
      have: new Bitfield(this.pieceCount, this.#swarm!.have.bytes),
      mtimeMs: undefined,
    });
    await this.#c.tracker
      .addSharer(false)
      .catch((err) => this.#c.notices.warn(this.#say.announceFailed(false, err)));
  }

  /** Whole-file SHA1, then the partial file goes under the final name, never over an existing file. */
  async #finish(): Promise<void> {
    this.#setPhase("verifying");
    const part = this.#part!;
    const mtimeMs = await part.finish(this.sha1);
    // it may have been shared already (partial); it may be a 0-byte file with no piece
    if (!this.#c.shares.get(this.groupId, this.fileIdHex)) {
      this.#c.shares.add({
        groupId: this.groupId,
        fileId: this.fileIdHex,
        name: this.name,
        sha1: this.sha1,
        size: this.size,
        path: this.target,
        identity: part.identity,
        have: Bitfield.full(this.pieceCount),
        mtimeMs,
      });
    }
    this.#c.shares.completed(this.groupId, this.fileIdHex, this.target, mtimeMs);
    // only now: until completed, peers are served from the partial name
    await part.dropPartName();
    this.#setPhase("complete");
    this.#c.onComplete({
      groupId: this.groupId,
      name: this.name,
      path: this.target,
      sha1: this.sha1,
      fileId: this.fileIdHex,
      size: this.size,
      mtimeMs,
    });
    await this.#c.tracker
      .addSharer(true)
      .catch((err) => this.#c.notices.warn(this.#say.announceFailed(true, err)));
    this.#c.notices.event(this.#say.complete(this.target, this.progress()));
  }
}
