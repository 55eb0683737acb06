import { createHash } from "node:crypto";
import { type FileHandle, link, open, stat, unlink } from "node:fs/promises";
import { Bitfield } from "../../shared/bitfield.js";
import { PIECE_SIZE, SHA1_LENGTH, TICKET_REFRESH_MS } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { fileIdOf } from "../../shared/fileId.js";
import { printable } from "../../shared/ids.js";
import { parseHostPort } from "../../shared/trackerInfo.js";
import type { PieceMessage } from "../../wire/index.js";
import type { ClientEvents } from "../client.js";
import { formatBytes, formatRate } from "../format.js";
import { wholeFileSha1 } from "../wholeSha1.js";
import { pieceCountOf, pieceLength, type ShareRegistry } from "../shares.js";
import type { DownloadState, ShareState } from "../state.js";
import { quoteWord } from "../tokenize.js";
import { filePath, type TrackerClient } from "../trackerClient.js";
import { type LinkOwner, PeerLink, PIPELINE_DEPTH } from "./peerLink.js";
import { PiecePicker } from "./picker.js";

/** Peers connected at once per download. */
const MAX_PEERS = 8;
/** Ask the tracker for new peers this often while downloading (tickets are renewed every TICKET_REFRESH_MS). */
const REFRESH_MS = 5_000;
/** When no sharer has a missing piece: wait this long before each new try... */
const RETRY_SCHEDULE_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
/** ...and give up after this long without progress (a script's end waits at most this). */
const GIVE_UP_MS = 10 * 60_000;
/** Save the verified-piece bitfield at most this often (a crash refetches at most this much). */
const SAVE_EVERY_MS = 1_000;
/**
 * Verified pieces held in memory until their write completes. At this bound no peer
 * gets a new request until a write completes: without it a disk slower than the
 * network lets received pieces pile up without limit (a 1 GiB download peaked at
 * 500 MiB RSS). 12 x 512 KiB = 6 MiB keeps libuv's 4 threads writing; 16 measured
 * no faster and 10 to 25 MiB more at peak.
 */
const MAX_UNWRITTEN = 12;
/**
 * Pieces requested at once by one download, shared among its peers (each keeps
 * PIPELINE_DEPTH at most, 2 at least): 6 MiB in flight however many peers serve,
 * so the downloader's memory does not grow with the swarm (16 took 4 seeders to
 * 159 MiB at peak, 12 keeps them near 135 MiB at the same speed).
 */
const MAX_IN_FLIGHT = 12;
/** Speed is averaged over this window. */
const SPEED_WINDOW_MS = 5_000;
/**
 * The start gate's bound: the first requests wait at most this long after the first
 * bitfield for the other peers dialled with it (a loopback or LAN peer answers in
 * milliseconds; one that doesn't is not worth holding the download for).
 */
const START_GATE_MS = 2_000;

export type DownloadPhase =
  | "starting"
  | "downloading"
  | "waiting"
  | "verifying"
  | "complete"
  | "failed"
  | "stopped";

interface FileInfo {
  name: string;
  size: number;
  sha1: string;
  /** fileIdOf(size, pieces), from trackers that send it: it must match what we compute */
  fileId?: string;
  pieces: string;
}

interface Grant {
  ticket: string;
  peers: { userId: string; addr: string; complete: boolean }[];
}

export interface DownloadDeps {
  tracker: TrackerClient;
  shares: ShareRegistry;
  events: ClientEvents;
  selfAddr: string;
  /** Something worth saving changed (a piece, the end). */
  onStateChange(): void;
  /** The download completed and is now a share of a complete file. */
  onComplete(share: ShareState): void;
}

/** A saved bitfield, or undefined when it does not fit the file (a hand-edited state file). */
function savedBits(pieceCount: number, base64: string): Bitfield | undefined {
  try {
    return Bitfield.fromBase64(pieceCount, base64);
  } catch {
    return undefined;
  }
}

/** Are two paths links to one file (same device and inode)? */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}

/** A promise that a timer or an event can settle, whichever comes first. */
class Wakeup {
  #wake: (() => void) | undefined;
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(t);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
  }
  wake(): void {
    this.#wake?.();
  }
}

/**
 * One file's download: pieces from several peers at once, each checked against
 * its SHA1 and written at its offset into a partial file beside the target; the
 * whole file's SHA1 checked at the end; then the partial file is linked under
 * the final name (never over an existing file) and becomes a share.
 */
export class Download implements LinkOwner {
  readonly groupId: string;
  readonly name: string;
  readonly target: string;
  readonly partPath: string;
  phase: DownloadPhase = "starting";
  error: string | undefined;
  sha1 = "";
  /** fileIdOf(size, pieces) in hex, computed here from the piece hashes */
  fileIdHex = "";
  size = 0;
  pieceCount = 0;
  fileId = Buffer.alloc(SHA1_LENGTH);
  picker!: PiecePicker;
  /** Set when the download ends, however it ends. */
  readonly done: Promise<void>;

  readonly #deps: DownloadDeps;
  #hashes = Buffer.alloc(0);
  #resume: DownloadState | undefined;
  #fh: FileHandle | undefined;
  readonly #links = new Map<string, PeerLink>();
  /** Peers that sent a corrupt piece: never again in this download. */
  readonly #banned = new Set<string>();
  /**
   * Peers whose connection ended before their bitfield (refused, dead, rejected us):
   * not tried again before `until`, on the retry schedule. Without this a dead
   * peer the tracker still lists (until its TTL) is redialled in a tight loop.
   */
  readonly #backoff = new Map<string, { fails: number; until: number }>();
  readonly #wakeup = new Wakeup();
  /** Refusals already reported (peer and reason): a peer that refuses each retry is told once. */
  readonly #refusals = new Set<string>();
  /**
   * The start gate: no request before every peer of the first round has sent its
   * bitfield (or gone), or START_GATE_MS passed. Availability is counted before the
   * first pick (DESIGN.md "Download" 2-3), so the first requests spread over every
   * sharer instead of all going to whichever answered first.
   */
  #gateOpen = false;
  #gateTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  #announced = false;
  #writes = 0;
  /** Pieces received and verified whose write has not completed (see MAX_UNWRITTEN). */
  #unwritten = 0;
  #lastSave = 0;
  #waitingUntil = 0;
  #retry = 0;
  #samples: [number, number][] = [];
  #startedAt = Date.now();
  #lastProgress = Date.now();
  #partMtime = 0;
  /** Pieces whose write has completed: what a saved state may claim. */
  #written = new Bitfield(0);
  /** The latest grant (ticket and peers) and when it came. */
  #grant: Grant | undefined;
  #grantAt = 0;
  #refreshing: Promise<void> | undefined;
  /**
   * Every TICKET_REFRESH_MS while a link is open: a fresh ticket for each open
   * connection (sharers refuse one whose ticket expired), whatever phase we are in.
   */
  #renewTimer: NodeJS.Timeout | undefined;

  constructor(deps: DownloadDeps, groupId: string, name: string, target: string, resume?: DownloadState) {
    this.#deps = deps;
    this.groupId = groupId;
    this.name = name;
    this.target = target;
    this.partPath = resume?.partPath ?? `${target}.gspart`;
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
    this.done = this.#run();
  }

  pieceLength(piece: number): number {
    return pieceLength(this.size, piece);
  }

  get have(): Bitfield {
    return this.picker.have;
  }

  get peerCount(): number {
    let n = 0;
    for (const l of this.#links.values()) if (!l.closed) n++;
    return n;
  }

  /** Bytes per second over the last SPEED_WINDOW_MS. */
  get speed(): number {
    const now = Date.now();
    this.#samples = this.#samples.filter(([t]) => now - t <= SPEED_WINDOW_MS);
    const bytes = this.#samples.reduce((s, [, b]) => s + b, 0);
    const span = Math.min(SPEED_WINDOW_MS, now - this.#startedAt);
    return span > 0 ? (bytes * 1000) / span : 0;
  }

  get percent(): number {
    if (this.phase === "complete") return 100;
    if (!this.picker) return 0;
    return this.pieceCount === 0 ? 100 : (100 * this.picker.have.count) / this.pieceCount;
  }

  /** One line of state for show_downloads. */
  describe(): string {
    switch (this.phase) {
      case "starting":
        return "starting";
      case "downloading": {
        const pct = this.percent;
        return `${pct.toFixed(1)}%  ${formatRate(this.speed)}  ${this.peerCount} peer${this.peerCount === 1 ? "" : "s"}`;
      }
      case "waiting": {
        const pct = this.percent;
        const secs = Math.max(0, Math.ceil((this.#waitingUntil - Date.now()) / 1000));
        return `${pct.toFixed(1)}%  waiting for a sharer: try ${this.#retry} in ${secs} s`;
      }
      case "verifying":
        return "100%  checking the whole file's SHA1";
      case "complete":
        return "complete";
      case "failed":
        return `failed: ${this.error}`;
      case "stopped":
        return "stopped (resumes at next login)";
    }
  }

  /** What survives a restart: only unfinished downloads are saved. */
  snapshot(): DownloadState | undefined {
    if (this.phase === "complete" || this.phase === "failed") return undefined;
    // not open yet (asking the tracker, checking the partial file): keep what we resume from
    if (!this.sha1 || this.#written.length !== this.pieceCount) return this.#resume;
    return {
      groupId: this.groupId,
      name: this.name,
      sha1: this.sha1,
      fileId: this.fileIdHex,
      size: this.size,
      target: this.target,
      partPath: this.partPath,
      have: this.#written.toBase64(),
      mtimeMs: this.#partMtime,
    };
  }

  /** Stops (logout, stop_share); the partial file stays for a resume unless `discard`. */
  async stop(discard = false): Promise<void> {
    this.#stopping = true;
    this.#wakeup.wake();
    await this.done;
    if (discard && this.phase !== "complete") {
      this.#deps.shares.remove(this.groupId, this.fileIdHex);
      await unlink(this.partPath).catch(() => {});
    }
  }

  async #run(): Promise<void> {
    try {
      const info = await this.#begin();
      if (!info) {
        this.phase = "stopped";
        return;
      }
      await this.#open(info.file);
      // in the state file from now on, so a crash before the first piece still resumes it
      this.#deps.onStateChange();
      this.#use(info);
      this.#renewTimer = setInterval(() => {
        // not twice within half the period (the loop below may just have refreshed):
        // sharers refuse renewals closer than a second. Errors wait for the loop, which
        // fails on a refusal and retries an outage.
        const due = Date.now() - this.#grantAt >= TICKET_REFRESH_MS / 2;
        if (due && this.peerCount > 0 && !this.#stopping) this.#refreshNow().catch(() => {});
      }, TICKET_REFRESH_MS);
      const started = Date.now();
      while (!this.picker.complete && !this.#stopping) {
        if (Date.now() - this.#grantAt >= TICKET_REFRESH_MS) {
          try {
            await this.#refreshNow();
          } catch (err) {
            // a tracker outage does not stop a download that has peers; retry at the next round
            if (!(err instanceof GsError && err.code === "TRACKER_UNAVAILABLE")) throw err;
          }
        } else if (this.#grant) this.#connect(this.#grant);
        // a peer still connecting may have what we lack; a connected one must have it
        const hopeful = [...this.#links.values()].some(
          (l) => !l.closed && (!l.ready || this.picker.interesting(l.addr)),
        );
        if (hopeful) {
          this.phase = "downloading";
          this.#retry = 0;
          await this.#wakeup.wait(REFRESH_MS);
        } else {
          if (Date.now() - Math.max(this.#lastProgress, started) > GIVE_UP_MS) {
            throw new Error(
              `no sharer had the missing pieces for ${GIVE_UP_MS / 60_000} minutes; try again later`,
            );
          }
          await this.#waitForRetry();
        }
      }
      this.#closeLinks("download ended");
      // every piece the picker counts as ours must be on disk before we save or finish
      await this.#drainWrites();
      if (this.#failOnWake) throw new Error(this.error);
      if (this.#stopping) {
        this.phase = "stopped";
        this.#partMtime = (await this.#fh!.stat()).mtimeMs;
        return;
      }
      await this.#finish();
    } catch (err) {
      this.#closeLinks("download failed");
      await this.#drainWrites();
      this.phase = "failed";
      this.error = (err as Error).message;
      this.#deps.shares.remove(this.groupId, this.fileIdHex);
      await this.#fh?.close().catch(() => {});
      this.#fh = undefined;
      if (this.sha1) await unlink(this.partPath).catch(() => {});
      this.#deps.events.event(`download failed: [${this.groupId}] ${quoteWord(this.name)}: ${this.error}`);
      // the tracker listed us as a partial sharer: peers must not be sent to a file we deleted
      if (this.#announced) await this.#deps.tracker.call("DELETE", this.#sharePath()).catch(() => {});
    } finally {
      clearInterval(this.#renewTimer);
      await this.#fh?.close().catch(() => {});
      this.#fh = undefined;
      this.#deps.onStateChange();
    }
  }

  async #waitForRetry(): Promise<void> {
    this.phase = "waiting";
    const delay = RETRY_SCHEDULE_MS[Math.min(this.#retry, RETRY_SCHEDULE_MS.length - 1)]!;
    this.#retry++;
    this.#waitingUntil = Date.now() + delay;
    await this.#wakeup.wait(delay);
  }

  /** The file's hashes, a ticket and peers; retried while no tracker answers. Undefined when stopped. */
  async #begin(): Promise<({ file: FileInfo } & Grant) | undefined> {
    const since = Date.now();
    for (;;) {
      try {
        return await this.#deps.tracker.call<{ file: FileInfo } & Grant>(
          "POST",
          filePath(this.groupId, this.name, "download"),
          {},
        );
      } catch (err) {
        const outage = err instanceof GsError && err.code === "TRACKER_UNAVAILABLE";
        if (!outage || Date.now() - since > GIVE_UP_MS) throw err;
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
    this.#hashes = Buffer.from(file.pieces, "base64");
    if (this.#hashes.length !== this.pieceCount * SHA1_LENGTH)
      throw new Error("tracker sent a bad piece list");
    // the file is what its pieces are: the id we ask peers for is ours, not the tracker's word
    this.fileIdHex = fileIdOf(file.size, this.#hashes);
    if (file.fileId !== undefined && file.fileId !== this.fileIdHex) {
      throw new Error("the tracker's file id does not match the piece hashes it sent");
    }
    this.fileId = Buffer.from(this.fileIdHex, "hex");
    let have = new Bitfield(this.pieceCount);
    const r = this.#resume;
    if (
      r &&
      r.sha1 === file.sha1 &&
      r.size === file.size &&
      (r.fileId ?? this.fileIdHex) === this.fileIdHex
    ) {
      const st = await stat(r.partPath).catch(() => undefined);
      if (st?.isFile() && st.size === file.size) {
        this.#fh = await open(r.partPath, "r+");
        // as we left it: trust the saved bitfield; touched since (a crash after the last
        // save, or someone else): re-hash every piece and keep those that check
        have = (st.mtimeMs === r.mtimeMs && savedBits(this.pieceCount, r.have)) || (await this.#rehash());
      }
    }
    if (!this.#fh) {
      // 'w+' truncates a stale partial file that we cannot vouch for
      this.#fh = await open(this.partPath, "w+");
      await this.#fh.truncate(file.size);
    }
    this.#partMtime = (await this.#fh.stat()).mtimeMs;
    this.picker = new PiecePicker(this.pieceCount, have);
    this.#written = new Bitfield(this.pieceCount, have.bytes);
    if (have.count > 0) await this.#announcePartial();
  }

  /** Which pieces of the partial file match their SHA1: one streaming pass, one piece buffer. */
  async #rehash(): Promise<Bitfield> {
    const have = new Bitfield(this.pieceCount);
    const buf = Buffer.allocUnsafe(PIECE_SIZE);
    for (let i = 0; i < this.pieceCount && !this.#stopping; i++) {
      const len = this.pieceLength(i);
      const { bytesRead } = await this.#fh!.read(buf, 0, len, i * PIECE_SIZE);
      const digest = createHash("sha1").update(buf.subarray(0, bytesRead)).digest();
      if (bytesRead === len && digest.equals(this.#hashes.subarray(i * SHA1_LENGTH, (i + 1) * SHA1_LENGTH))) {
        have.set(i);
      }
    }
    return have;
  }

  async #refresh(): Promise<Grant> {
    return await this.#deps.tracker.call<Grant>("POST", filePath(this.groupId, this.name, "peers"), {});
  }

  /** A fresh grant: its ticket goes to every open link, its peers are dialled. One at a time. */
  #refreshNow(): Promise<void> {
    this.#refreshing ??= this.#refresh()
      .then((g) => this.#use(g))
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  #use(grant: Grant): void {
    this.#grant = grant;
    this.#grantAt = Date.now();
    if (this.#stopping) return;
    for (const l of this.#links.values()) l.renew(grant.ticket);
    this.#connect(grant);
  }

  #connect(grant: Grant): void {
    // complete seeders first: they can serve any piece
    const peers = [...grant.peers].sort((a, b) => Number(b.complete) - Number(a.complete));
    for (const p of peers) {
      if (this.peerCount >= MAX_PEERS) break;
      if (p.addr === this.#deps.selfAddr || this.#banned.has(p.addr)) continue;
      if ((this.#backoff.get(p.addr)?.until ?? 0) > Date.now()) continue;
      const existing = this.#links.get(p.addr);
      if (existing && !existing.closed) continue;
      const hp = parseHostPort(p.addr);
      if (typeof hp === "string") continue;
      this.#links.set(p.addr, new PeerLink(p.addr, hp.host, hp.port, grant.ticket, this));
    }
  }

  onPiece(link: PeerLink, msg: PieceMessage): void {
    const { piece, data } = msg;
    if (msg.offset !== 0 || data.length !== this.pieceLength(piece)) {
      this.#banned.add(link.addr);
      link.close("sent a piece of the wrong length");
      return;
    }
    const digest = createHash("sha1").update(data).digest();
    if (!digest.equals(this.#hashes.subarray(piece * SHA1_LENGTH, (piece + 1) * SHA1_LENGTH))) {
      this.picker.failed(piece, link.addr);
      this.#banned.add(link.addr);
      this.#deps.events.warn(
        `warning: peer ${printable(link.addr)} sent a corrupt piece ${piece} of [${this.groupId}] ${quoteWord(this.name)}: dropped it`,
      );
      link.close("sent a corrupt piece");
      return;
    }
    if (this.picker.have.has(piece)) {
      this.#fill(link);
      return;
    }
    for (const other of this.picker.received(piece, link.addr)) this.#links.get(other)?.cancel(piece);
    this.#samples.push([Date.now(), data.length]);
    this.#lastProgress = Date.now();
    this.#retry = 0;
    this.phase = "downloading";
    void this.#write(piece, data);
    this.#fill(link);
  }

  /** More requests for this link, unless the disk is behind (MAX_UNWRITTEN). */
  #fill(link: PeerLink): void {
    if (this.#unwritten < MAX_UNWRITTEN) link.fill();
  }

  async #write(piece: number, data: Buffer): Promise<void> {
    this.#writes++;
    this.#unwritten++;
    try {
      try {
        await this.#fh!.write(data, 0, data.length, piece * PIECE_SIZE);
      } finally {
        // the disk caught up by one piece: links held back by MAX_UNWRITTEN may ask again
        if (this.#unwritten-- === MAX_UNWRITTEN) for (const l of this.#links.values()) l.fill();
      }
      // only now may peers ask us for it, and a saved state claim it
      this.#written.set(piece);
      this.#deps.shares.markHave(this.groupId, this.fileIdHex, piece);
      if (!this.#announced) await this.#announcePartial();
      const now = Date.now();
      if (now - this.#lastSave >= SAVE_EVERY_MS) {
        this.#lastSave = now;
        this.#partMtime = (await this.#fh!.stat()).mtimeMs;
        this.#deps.onStateChange();
      }
    } catch (err) {
      if (!this.#stopping && this.phase !== "failed") {
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
      if (this.picker.complete) this.#wakeup.wake();
    }
  }

  #failOnWake = false;
  #drained: (() => void) | undefined;

  #drainWrites(): Promise<void> {
    if (this.#writes === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = () => {
        this.#drained = undefined;
        resolve();
      };
    });
  }

  /** From the first verified piece on, we share what we have (DESIGN.md "Download" 5). */
  async #announcePartial(): Promise<void> {
    this.#announced = true;
    // a share of this group only: the same bytes shared in another group are another entry
    this.#deps.shares.add({
      groupId: this.groupId,
      fileId: this.fileIdHex,
      name: this.name,
      sha1: this.sha1,
      size: this.size,
      path: this.partPath,
      have: new Bitfield(this.pieceCount, this.picker.have.bytes),
      mtimeMs: undefined,
    });
    await this.#deps.tracker
      .call("POST", this.#sharePath(), { complete: false })
      .catch((err) =>
        this.#deps.events.warn(`warning: could not announce a partial share: ${(err as Error).message}`),
      );
  }

  #sharePath(): string {
    return filePath(this.groupId, this.name, "shares");
  }

  /** Whole-file SHA1, then the partial file goes under the final name, never over an existing file. */
  async #finish(): Promise<void> {
    this.phase = "verifying";
    const fh = this.#fh!;
    // durable before it gets its final name; the check reads from the page cache meanwhile
    const [whole] = await Promise.all([wholeFileSha1(this.partPath, this.size), fh.sync()]);
    if (whole !== this.sha1) {
      throw new Error("the whole file's SHA1 does not match (the partial file was changed on disk?)");
    }
    await fh.close();
    this.#fh = undefined;
    try {
      await link(this.partPath, this.target); // fails with EEXIST instead of overwriting
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // our own link, made just before a crash that left the partial file and the saved state
      if (e.code !== "EEXIST" || !(await sameFile(this.partPath, this.target))) {
        throw new Error(
          e.code === "EEXIST"
            ? `${this.target} appeared meanwhile; not overwritten`
            : `cannot create ${this.target}: ${e.code}`,
        );
      }
    }
    await unlink(this.partPath).catch(() => {});
    const mtimeMs = (await stat(this.target)).mtimeMs;
    // it may have been shared already (partial); it may be a 0-byte file with no piece
    if (!this.#deps.shares.get(this.groupId, this.fileIdHex)) {
      this.#deps.shares.add({
        groupId: this.groupId,
        fileId: this.fileIdHex,
        name: this.name,
        sha1: this.sha1,
        size: this.size,
        path: this.target,
        have: Bitfield.full(this.pieceCount),
        mtimeMs,
      });
    }
    this.#deps.shares.completed(this.groupId, this.fileIdHex, this.target, mtimeMs);
    this.phase = "complete";
    this.#deps.onComplete({
      groupId: this.groupId,
      name: this.name,
      path: this.target,
      sha1: this.sha1,
      fileId: this.fileIdHex,
      size: this.size,
      mtimeMs,
    });
    await this.#deps.tracker
      .call("POST", this.#sharePath(), { complete: true })
      .catch((err) =>
        this.#deps.events.warn(`warning: could not announce the complete file: ${(err as Error).message}`),
      );
    const secs = (Date.now() - this.#startedAt) / 1000;
    this.#deps.events.event(
      `download complete: [${this.groupId}] ${quoteWord(this.name)} -> ${this.target} (${formatBytes(this.size)} in ${secs < 10 ? secs.toFixed(2) : secs.toFixed(0)} s, ${formatRate(this.size / Math.max(secs, 0.001))})`,
    );
  }

  onClosed(link: PeerLink, _reason: string): void {
    if (this.#links.get(link.addr) === link) this.#links.delete(link.addr);
    // a refusal is news (a ticket refused, a share stopped), once per peer and reason;
    // BUSY is routine and retried
    const refusal = link.refusal;
    const key = `${link.addr} ${refusal}`;
    if (refusal && !refusal.startsWith("BUSY") && !this.#refusals.has(key)) {
      this.#refusals.add(key);
      this.#deps.events.warn(
        `warning: peer ${printable(link.addr)} refused [${this.groupId}] ${quoteWord(this.name)}: ${refusal}`,
      );
    }
    if (link.ready) {
      this.#backoff.delete(link.addr);
    } else {
      const fails = (this.#backoff.get(link.addr)?.fails ?? 0) + 1;
      const delay = RETRY_SCHEDULE_MS[Math.min(fails, RETRY_SCHEDULE_MS.length) - 1]!;
      this.#backoff.set(link.addr, { fails, until: Date.now() + delay });
    }
    // its pieces went back to the pool: let the other peers take them now
    for (const l of this.#links.values()) l.fill();
    if (this.peerCount === 0) this.#wakeup.wake();
  }

  depth(): number {
    let ready = 0;
    for (const l of this.#links.values()) if (l.ready && !l.closed) ready++;
    return Math.max(2, Math.min(PIPELINE_DEPTH, Math.floor(MAX_IN_FLIGHT / Math.max(1, ready))));
  }

  mayRequest(asker: PeerLink): boolean {
    if (this.#gateOpen) return true;
    if ([...this.#links.values()].some((l) => !l.closed && !l.ready)) {
      this.#gateTimer ??= setTimeout(() => this.#openGate(), START_GATE_MS);
      return false;
    }
    this.#openGate(asker);
    return true;
  }

  /** Every ready link may request now; the asker fills itself when this returns. */
  #openGate(asker?: PeerLink): void {
    if (this.#gateOpen) return;
    this.#gateOpen = true;
    clearTimeout(this.#gateTimer);
    for (const l of [...this.#links.values()]) if (l !== asker) l.fill();
  }

  #closeLinks(reason: string): void {
    clearTimeout(this.#gateTimer);
    for (const l of [...this.#links.values()]) l.close(reason);
    this.#links.clear();
  }
}
