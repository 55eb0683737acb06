import { EventEmitter } from "node:events";
import { stat } from "node:fs/promises";
import type { Bitfield } from "../../shared/bitfield.js";
import { PIECE_SIZE } from "../../shared/constants.js";

/** Which file a path named when it was checked: a file replaced under the same name has another. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

export function identityOf(st: { dev: number; ino: number }): FileIdentity {
  return { dev: st.dev, ino: st.ino };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * A file this client serves in one group: complete (an upload or a finished
 * download) or partial. The same bytes shared in two groups are two of these;
 * they may name the same path.
 */
export interface SharedFile {
  groupId: string;
  /** fileIdOf(size, piece hashes), hex: what a ticket and a handshake name */
  fileId: string;
  /** its name in the group */
  name: string;
  /** whole-file SHA1, hex (checked at the end of a download; names nothing here) */
  sha1: string;
  size: number;
  pieceCount: number;
  path: string;
  /**
   * the file that was verified (hashed at upload, or the partial file a download
   * wrote and checked): pieces are served only from it, never from another file
   * put at its path since
   */
  identity: FileIdentity;
  /** verified pieces; complete files have every bit set */
  have: Bitfield;
  /** mtime of a complete file when it was verified; serving stops if it changes */
  mtimeMs: number | undefined;
  /** piece data sent to peers since this client shared it (this session) */
  servedBytes: number;
  /** piece data sent to peers in earlier sessions (from the state file): lifetime uploaded = this + servedBytes */
  servedBefore: number;
  /** bytes downloaded to make this file (0 for an upload) */
  downloadedBytes: number;
}

/** Lifetime bytes uploaded from a share: earlier sessions' and this one's. */
export function uploadedOf(f: SharedFile): number {
  return f.servedBefore + f.servedBytes;
}

export function pieceCountOf(size: number): number {
  return Math.ceil(size / PIECE_SIZE);
}

export function pieceLength(size: number, piece: number): number {
  return Math.min(PIECE_SIZE, size - piece * PIECE_SIZE);
}

interface ShareEvents {
  /** a newly verified piece of a shared file: connected peers get `have` */
  have: [share: SharedFile, piece: number];
  /** a share ended (stop_share, leave_group, logout, a changed file): its connections close */
  removed: [share: SharedFile];
}

/** How long a file's size/mtime check stays fresh: one stat a second per file, not one per piece. */
const RECHECK_MS = 1_000;

const keyOf = (groupId: string, fileId: string) => `${groupId}\0${fileId}`;

/**
 * What the peer server may serve, keyed by group and file id. Nothing is ever
 * looked up by the whole-file SHA1 or across groups: a group's ticket reaches only
 * what is shared in that group, and removing a share in one group leaves the others.
 */
export class ShareRegistry extends EventEmitter<ShareEvents> {
  readonly #files = new Map<string, SharedFile>();
  readonly #checked = new Map<SharedFile, { at: number; ok: Promise<boolean> }>();

  constructor() {
    super();
    // every peer connection listens (two listeners each); the peer server bounds connections
    this.setMaxListeners(0);
  }

  /** The share a ticket for (groupId, fileId) may read, if any. */
  get(groupId: string, fileId: string): SharedFile | undefined {
    return this.#files.get(keyOf(groupId, fileId));
  }

  all(): SharedFile[] {
    return [...this.#files.values()];
  }

  /** Adds a share in one group; an existing one of the same file there is renamed, not duplicated. */
  add(
    f: Omit<SharedFile, "servedBytes" | "pieceCount" | "servedBefore" | "downloadedBytes"> &
      Partial<Pick<SharedFile, "servedBefore" | "downloadedBytes">>,
  ): SharedFile {
    const key = keyOf(f.groupId, f.fileId);
    const old = this.#files.get(key);
    if (old) {
      old.name = f.name;
      return old;
    }
    const entry: SharedFile = {
      servedBefore: 0,
      downloadedBytes: 0,
      ...f,
      pieceCount: pieceCountOf(f.size),
      servedBytes: 0,
    };
    this.#files.set(key, entry);
    return entry;
  }

  /** A partial download became complete at its final path (a link to the same file). */
  completed(groupId: string, fileId: string, path: string, mtimeMs: number): void {
    const e = this.get(groupId, fileId);
    if (!e) return;
    e.path = path;
    e.mtimeMs = mtimeMs;
    this.#checked.delete(e);
  }

  markHave(groupId: string, fileId: string, piece: number): void {
    const e = this.get(groupId, fileId);
    if (e?.have.set(piece)) this.emit("have", e, piece);
  }

  /** Stops sharing one file in one group: returns true if it was shared there. */
  remove(groupId: string, fileId: string): boolean {
    const key = keyOf(groupId, fileId);
    const e = this.#files.get(key);
    if (!e) return false;
    this.#files.delete(key);
    this.#checked.delete(e);
    this.emit("removed", e);
    return true;
  }

  /** Stops sharing everything in one group (leave_group). */
  removeGroup(groupId: string): void {
    for (const e of this.all()) if (e.groupId === groupId) this.remove(groupId, e.fileId);
  }

  find(groupId: string, name: string): SharedFile | undefined {
    for (const f of this.#files.values()) if (f.groupId === groupId && f.name === name) return f;
    return undefined;
  }

  clear(): void {
    for (const e of this.all()) this.remove(e.groupId, e.fileId);
  }

  /**
   * Is a share's path still the file we verified (same device and inode), and a
   * complete one unchanged (same size and mtime)? A partial file's bytes are ours
   * to write, so only its identity is checked. Cached for RECHECK_MS.
   */
  unchanged(f: SharedFile, now = Date.now()): Promise<boolean> {
    const c = this.#checked.get(f);
    if (c && now - c.at < RECHECK_MS) return c.ok;
    const ok = stat(f.path).then(
      (st) =>
        st.isFile() &&
        sameIdentity(identityOf(st), f.identity) &&
        (f.mtimeMs === undefined || (st.size === f.size && st.mtimeMs === f.mtimeMs)),
      () => false,
    );
    this.#checked.set(f, { at: now, ok });
    return ok;
  }
}
