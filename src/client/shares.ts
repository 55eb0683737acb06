import { EventEmitter } from "node:events";
import { stat } from "node:fs/promises";
import type { Bitfield } from "../shared/bitfield.js";
import { PIECE_SIZE } from "../shared/constants.js";

/** A file this client serves: complete (an upload or a finished download) or partial. */
export interface SharedFile {
  sha1: string;
  size: number;
  pieceCount: number;
  path: string;
  /** verified pieces; complete files have every bit set */
  have: Bitfield;
  /** mtime of a complete file when it was verified; serving stops if it changes */
  mtimeMs: number | undefined;
  /** groups it is shared in, with its name there */
  groups: Map<string, string>;
  /** piece data sent to peers */
  servedBytes: number;
}

export function pieceCountOf(size: number): number {
  return Math.ceil(size / PIECE_SIZE);
}

export function pieceLength(size: number, piece: number): number {
  return Math.min(PIECE_SIZE, size - piece * PIECE_SIZE);
}

interface ShareEvents {
  /** a newly verified piece of a shared file: connected peers get `have` */
  have: [sha1: string, piece: number];
  /** a share ended (stop_share, logout, a changed file): its connections close */
  removed: [sha1: string];
}

/** How long a file's size/mtime check stays fresh: one stat a second per file, not one per piece. */
const RECHECK_MS = 1_000;

/**
 * What the peer server may serve, keyed by file id (whole-file SHA1). Each entry
 * remembers the groups it is shared in, so a ticket for another group gets nothing.
 */
export class ShareRegistry extends EventEmitter<ShareEvents> {
  readonly #files = new Map<string, SharedFile>();
  readonly #checked = new Map<string, { at: number; ok: Promise<boolean> }>();

  constructor() {
    super();
    // every peer connection listens (two listeners each); the peer server bounds connections
    this.setMaxListeners(0);
  }

  get(sha1: string): SharedFile | undefined {
    return this.#files.get(sha1);
  }

  all(): SharedFile[] {
    return [...this.#files.values()];
  }

  /** Adds (or extends to another group) a share. */
  add(
    groupId: string,
    name: string,
    f: Omit<SharedFile, "groups" | "servedBytes" | "pieceCount">,
  ): SharedFile {
    let entry = this.#files.get(f.sha1);
    if (!entry) {
      entry = { ...f, pieceCount: pieceCountOf(f.size), groups: new Map(), servedBytes: 0 };
      this.#files.set(f.sha1, entry);
    }
    entry.groups.set(groupId, name);
    return entry;
  }

  /** A partial download became complete at its final path. */
  completed(sha1: string, path: string, mtimeMs: number): void {
    const e = this.#files.get(sha1);
    if (!e) return;
    e.path = path;
    e.mtimeMs = mtimeMs;
    this.#checked.delete(sha1);
  }

  markHave(sha1: string, piece: number): void {
    const e = this.#files.get(sha1);
    if (e?.have.set(piece)) this.emit("have", sha1, piece);
  }

  /** Stops sharing in one group (or every group): returns true if it was shared there. */
  remove(sha1: string, groupId?: string): boolean {
    const e = this.#files.get(sha1);
    if (!e) return false;
    if (groupId !== undefined) {
      if (!e.groups.delete(groupId)) return false;
      if (e.groups.size > 0) return true;
    }
    this.#files.delete(sha1);
    this.#checked.delete(sha1);
    this.emit("removed", sha1);
    return true;
  }

  find(groupId: string, name: string): SharedFile | undefined {
    for (const f of this.#files.values()) if (f.groups.get(groupId) === name) return f;
    return undefined;
  }

  clear(): void {
    for (const sha1 of [...this.#files.keys()]) this.remove(sha1);
  }

  /**
   * Is a complete share still the file we verified (same size and mtime)? Partial
   * files are ours to write, so they are not checked. Cached for RECHECK_MS.
   */
  unchanged(f: SharedFile, now = Date.now()): Promise<boolean> {
    if (f.mtimeMs === undefined) return Promise.resolve(true);
    const c = this.#checked.get(f.sha1);
    if (c && now - c.at < RECHECK_MS) return c.ok;
    const ok = stat(f.path).then(
      (st) => st.isFile() && st.size === f.size && st.mtimeMs === f.mtimeMs,
      () => false,
    );
    this.#checked.set(f.sha1, { at: now, ok });
    return ok;
  }
}
