import { createHash } from "node:crypto";
import { type FileHandle, link, open, stat, unlink } from "node:fs/promises";
import { Bitfield } from "../../shared/bitfield.js";
import { PIECE_SIZE, SHA1_LENGTH } from "../../shared/constants.js";
import { type MakeHasher, type StreamHasher, threadHasher } from "../hashing/sha1Thread.js";
import { pieceLength } from "../serving/shares.js";
import { MAX_HELD, WholeHash } from "./wholeHash.js";

/**
 * Verified pieces held in memory until their write completes. At this bound no peer
 * gets a new request until a write completes: without it a disk slower than the
 * network lets received pieces pile up without limit (a 1 GiB download peaked at
 * 500 MiB RSS). 12 x 512 KiB = 6 MiB keeps libuv's 4 threads writing; 16 measured
 * no faster and 10 to 25 MiB more at peak.
 */
export const MAX_UNWRITTEN = 12;
/**
 * Written pieces sent to the hashing thread for the whole file's SHA1 and not yet
 * hashed: the thread hashes faster than a download receives, so a few keep it
 * busy; past this bound no peer gets a new request until it catches up.
 */
export const MAX_HASHING = 8;
/**
 * Written bytes are made durable in the background once this many are unsynced and
 * SYNC_GAP_MS has passed since the last sync, so the fsync before the final name
 * finds little left. A 64 MiB download on a capped link otherwise leaves all of it
 * for the end, when the disk holds a whole flash crowd's: with 16 downloaders on
 * one disk the last piece was 3 s from the complete line (BENCHMARKS.md).
 */
const SYNC_EVERY_BYTES = 4 * 1024 * 1024;
const SYNC_GAP_MS = 1_000;

/** The file operations a partial file uses: node:fs/promises, or a test's stand-in (a full disk). */
export interface PartFileSystem {
  open(path: string, flags: "r+" | "w+"): Promise<FileHandle>;
  stat(path: string): Promise<{ isFile(): boolean; size: number; mtimeMs: number; dev: number; ino: number }>;
  link(existing: string, created: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export const nodeFiles: PartFileSystem = { open, stat, link, unlink };

/** What a saved state says of the partial file. */
export interface SavedPart {
  /** the verified-piece bitfield, base64 */
  have: string;
  /** the partial file's mtime when the bitfield was saved */
  mtimeMs: number;
}

/** A saved bitfield, or undefined when it does not fit the file (a hand-edited state file). */
function savedBits(pieceCount: number, base64: string): Bitfield | undefined {
  try {
    return Bitfield.fromBase64(pieceCount, base64);
  } catch {
    return undefined;
  }
}

/**
 * The partial file beside the target (`<target>.gspart`): pieces written at their
 * offsets, which of them are on disk, durability before the final name, and
 * the checks that let a download resume from it.
 */
export class PartFile {
  readonly path: string;
  readonly size: number;
  readonly pieceCount: number;
  readonly #hashes: Buffer;
  readonly #fs: PartFileSystem;
  readonly #onRoom: () => void;
  /** `full` was seen true: onRoom is due when it clears. */
  #heldBack = false;
  readonly #hasher: StreamHasher;
  #fh: FileHandle | undefined;
  /** Pieces whose write has completed: what a saved state may claim. */
  #written: Bitfield;
  /** The whole file's SHA1, following the written pieces (set once #written is known). */
  #whole!: WholeHash;
  /** The file's mtime as of the last save point. */
  mtimeMs = 0;
  /** Verified pieces whose write has not completed (see MAX_UNWRITTEN). */
  #unwritten = 0;
  /** Bytes written since the last background sync began, when it began, and the sync running. */
  #unsynced = 0;
  #syncedAt: number;
  #syncing: Promise<void> | undefined;
  readonly #now: () => number;

  private constructor(
    path: string,
    hashes: Buffer,
    size: number,
    fs: PartFileSystem,
    onRoom: () => void,
    now: () => number,
    makeHasher: MakeHasher,
  ) {
    this.#now = now;
    this.#syncedAt = now();
    this.path = path;
    this.size = size;
    this.pieceCount = hashes.length / SHA1_LENGTH;
    this.#hashes = hashes;
    this.#fs = fs;
    this.#onRoom = onRoom;
    this.#written = new Bitfield(this.pieceCount);
    this.#hasher = makeHasher(() => this.#eased());
  }

  /** Pieces whose write has completed: what a saved state may claim. */
  get written(): Bitfield {
    return this.#written;
  }

  /**
   * Opens the partial file for a file of these piece hashes. With `resume` (a saved
   * state of this same file) an existing partial file of the right size is kept:
   * as we left it, the saved bitfield is trusted; touched since (a crash after the
   * last save, or someone else), every piece is re-hashed and those that check are
   * kept. Otherwise it is created, or truncated (a stale one we cannot vouch for).
   * `onRoom`: the disk caught up after MAX_UNWRITTEN held requests back.
   */
  static async open(
    path: string,
    hashes: Buffer,
    size: number,
    resume: SavedPart | undefined,
    options: {
      fs?: PartFileSystem;
      /** default: a hashing thread */
      hasher?: MakeHasher;
      onRoom: () => void;
      stopped: () => boolean;
      now: () => number;
    },
  ): Promise<PartFile> {
    const part = new PartFile(
      path,
      hashes,
      size,
      options.fs ?? nodeFiles,
      options.onRoom,
      options.now,
      options.hasher ?? threadHasher,
    );
    try {
      await part.#openFile(resume, options.stopped);
    } catch (err) {
      await part.close();
      throw err;
    }
    return part;
  }

  /** Opens, reopens or creates the file (see open) and starts the whole file's SHA1. */
  async #openFile(resume: SavedPart | undefined, stopped: () => boolean): Promise<void> {
    if (resume) {
      const st = await this.#fs.stat(this.path).catch(() => undefined);
      if (st?.isFile() && st.size === this.size) {
        this.#fh = await this.#fs.open(this.path, "r+");
        this.#written =
          (st.mtimeMs === resume.mtimeMs && savedBits(this.pieceCount, resume.have)) ||
          (await this.#rehash(stopped));
      }
    }
    if (!this.#fh) {
      this.#fh = await this.#fs.open(this.path, "w+");
      await this.#fh.truncate(this.size);
    }
    this.#whole = new WholeHash(
      this.pieceCount,
      (p) => this.pieceLength(p),
      this.#written,
      () => this.#fh!,
      MAX_HELD,
      this.#hasher,
    );
    await this.touch();
  }

  pieceLength(piece: number): number {
    return pieceLength(this.size, piece);
  }

  /** Is this piece's data what its SHA1 says? */
  checks(piece: number, data: Buffer): boolean {
    const digest = createHash("sha1").update(data).digest();
    return digest.equals(this.#hashes.subarray(piece * SHA1_LENGTH, (piece + 1) * SHA1_LENGTH));
  }

  /**
   * So many verified pieces wait for the disk, or written ones for the hashing thread,
   * that no more should be requested; onRoom follows when that clears.
   */
  get full(): boolean {
    const full = this.#unwritten >= MAX_UNWRITTEN || this.#hasher.backlog >= MAX_HASHING;
    if (full) this.#heldBack = true;
    return full;
  }

  /** The disk or the hashing thread caught up a little: links held back by `full` may ask again. */
  #eased(): void {
    if (this.#heldBack && !this.full) {
      this.#heldBack = false;
      this.#onRoom();
    }
  }

  /**
   * Writes a verified piece at its offset; once it completes, the piece counts as on
   * disk, and its bytes go to the whole file's SHA1.
   */
  async write(piece: number, data: Buffer): Promise<void> {
    this.#unwritten++;
    try {
      // a short write (the disk filling up) goes on with the rest, which then fails with
      // its reason (ENOSPC); the whole-file hash takes the buffer as written, so every
      // byte must be
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.#fh!.write(
          data,
          done,
          data.length - done,
          piece * PIECE_SIZE + done,
        );
        if (bytesWritten === 0) {
          throw Object.assign(new Error(`no byte of piece ${piece} was written`), { code: "ENOSPC" });
        }
        done += bytesWritten;
      }
    } finally {
      this.#unwritten--;
      this.#eased();
    }
    this.#written.set(piece);
    this.#whole.add(piece, data);
    this.#unsynced += data.length;
    this.#syncSome();
  }

  /** A background fdatasync of what is written so far, when enough is and none is running. */
  #syncSome(): void {
    const now = this.#now();
    if (this.#syncing || this.#unsynced < SYNC_EVERY_BYTES || now - this.#syncedAt < SYNC_GAP_MS) return;
    const fh = this.#fh;
    if (!fh) return;
    this.#unsynced = 0;
    this.#syncedAt = now;
    // a failure shows again at the final sync, which fails the download
    this.#syncing = fh
      .datasync()
      .catch(() => {})
      .finally(() => {
        this.#syncing = undefined;
      });
  }

  /** Records the file's mtime now, for a saved state to match against at resume. */
  async touch(): Promise<void> {
    this.mtimeMs = (await this.#fh!.stat()).mtimeMs;
  }

  /**
   * Durable, checked against the whole file's SHA1, then linked under `target`
   * (never over an existing file) and the partial name removed. Returns the
   * target's mtime. The SHA1 has followed the writes (WholeHash): what is left of
   * it here is the pieces it had not reached, read back beside the fsync.
   */
  async finish(sha1: string, target: string): Promise<number> {
    const fh = this.#fh!;
    await this.#syncing;
    const [whole] = await Promise.all([this.#whole.digest(), fh.sync()]);
    if (whole !== sha1) {
      throw new Error("the whole file's SHA1 does not match (the partial file was changed on disk?)");
    }
    await this.close();
    try {
      await this.#fs.link(this.path, target); // fails with EEXIST instead of overwriting
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // our own link, made just before a crash that left the partial file and the saved state
      if (e.code !== "EEXIST" || !(await this.#sameFile(target))) {
        throw new Error(
          e.code === "EEXIST"
            ? `${target} appeared meanwhile; not overwritten`
            : `cannot create ${target}: ${e.code}`,
        );
      }
    }
    await this.#fs.unlink(this.path).catch(() => {});
    return (await this.#fs.stat(target)).mtimeMs;
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await this.#hasher.close();
    await this.#syncing;
    await fh?.close().catch(() => {});
  }

  /** Which pieces of the partial file match their SHA1: one streaming pass, one piece buffer. */
  async #rehash(stopped: () => boolean): Promise<Bitfield> {
    const have = new Bitfield(this.pieceCount);
    const buf = Buffer.allocUnsafe(PIECE_SIZE);
    for (let i = 0; i < this.pieceCount && !stopped(); i++) {
      const len = this.pieceLength(i);
      const { bytesRead } = await this.#fh!.read(buf, 0, len, i * PIECE_SIZE);
      if (bytesRead === len && this.checks(i, buf.subarray(0, bytesRead))) have.set(i);
    }
    return have;
  }

  /** Are the partial file and `other` links to one file (same device and inode)? */
  async #sameFile(other: string): Promise<boolean> {
    const [x, y] = await Promise.all([
      this.#fs.stat(this.path).catch(() => undefined),
      this.#fs.stat(other).catch(() => undefined),
    ]);
    return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
  }
}

/** Removes a partial file, if there is one. */
export async function removePart(path: string, fs: PartFileSystem = nodeFiles): Promise<void> {
  await fs.unlink(path).catch(() => {});
}
