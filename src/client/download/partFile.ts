import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { type FileHandle, link, lstat, open, unlink } from "node:fs/promises";
import { Bitfield } from "../../shared/bitfield.js";
import { PIECE_SIZE, SHA1_LENGTH } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { type MakeHasher, type StreamHasher, threadHasher } from "../hashing/sha1Thread.js";
import { type FileIdentity, identityOf, pieceLength, sameIdentity } from "../serving/shares.js";
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

/** A partial file until it is complete and checked: its owner's only, so no other local user reads or writes it. */
export const PART_MODE = 0o600;
/**
 * A complete download: its owner's to write, readable by others as the umask allows
 * (what `cp` gives a new file, without the group or world write a loose umask adds).
 */
export const DONE_MODE = 0o644;

const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
/** an existing partial file: never through a symbolic link (ELOOP) */
const REOPEN = O_RDWR | O_NOFOLLOW;
/** a new one: only if nothing, not even a dangling link, holds the name (EEXIST) */
const CREATE = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW;

/** The file operations a partial file uses: node:fs/promises, or a test's stand-in (a full disk). */
export interface PartFileSystem {
  open(path: string, flags: number, mode?: number): Promise<FileHandle>;
  lstat(path: string): Promise<Stats>;
  link(existing: string, created: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export const nodeFiles: PartFileSystem = { open, lstat, link, unlink };

/** What a saved state says of the partial file. */
export interface SavedPart {
  /** the verified-piece bitfield, base64 */
  have: string;
  /** the partial file's mtime when the bitfield was saved */
  mtimeMs: number;
  /** the partial file's device and inode; undefined in a state saved before they were recorded */
  identity: FileIdentity | undefined;
  /** the state is of this same file (size and piece hashes): its pieces may be kept */
  sameFile: boolean;
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
  /** the final name, linked to this file once it checks */
  readonly target: string;
  readonly size: number;
  readonly pieceCount: number;
  /** the device and inode of the file this object writes: what is checked, published and served */
  readonly identity: FileIdentity;
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
    at: { path: string; target: string; fh: FileHandle; identity: FileIdentity },
    hashes: Buffer,
    size: number,
    fs: PartFileSystem,
    onRoom: () => void,
    now: () => number,
    makeHasher: MakeHasher,
  ) {
    this.#now = now;
    this.#syncedAt = now();
    this.path = at.path;
    this.target = at.target;
    this.#fh = at.fh;
    this.identity = at.identity;
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
   * Opens the partial file `<target>.gspart` for a file of these piece hashes (see
   * openPart: one this download left there, checked, or a new one). Kept with the
   * same file's pieces: as we left it (same mtime), the saved bitfield is trusted;
   * touched since (a crash after the last save), every piece is re-hashed and those
   * that check are kept. `onRoom`: the disk caught up after MAX_UNWRITTEN held
   * requests back.
   */
  static async open(
    path: string,
    target: string,
    hashes: Buffer,
    size: number,
    saved: SavedPart | undefined,
    options: {
      fs?: PartFileSystem;
      /** default: a hashing thread */
      hasher?: MakeHasher;
      onRoom: () => void;
      stopped: () => boolean;
      now: () => number;
    },
  ): Promise<PartFile> {
    const fs = options.fs ?? nodeFiles;
    const { fh, st, kept } = await openPart(fs, path, target, size, saved);
    const part = new PartFile(
      { path, target, fh, identity: identityOf(st) },
      hashes,
      size,
      fs,
      options.onRoom,
      options.now,
      options.hasher ?? threadHasher,
    );
    try {
      await part.#start(kept ? saved : undefined, st.mtimeMs, options.stopped);
    } catch (err) {
      await part.close();
      throw err;
    }
    return part;
  }

  /** Which pieces the file holds (see open), then the whole file's SHA1 follows them. */
  async #start(saved: SavedPart | undefined, mtimeMs: number, stopped: () => boolean): Promise<void> {
    if (saved) {
      this.#written =
        (mtimeMs === saved.mtimeMs && savedBits(this.pieceCount, saved.have)) ||
        (await this.#rehash(stopped));
    }
    this.#whole = new WholeHash(
      this.pieceCount,
      (p) => this.pieceLength(p),
      this.#written,
      () => this.#open(),
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
        const { bytesWritten } = await this.#open().write(
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

  /** The open file; a use after close() is a bug, told as such rather than as a TypeError. */
  #open(): FileHandle {
    if (!this.#fh) throw new Error(`${this.path} used after it was closed`);
    return this.#fh;
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
    this.mtimeMs = (await this.#open().stat()).mtimeMs;
  }

  /**
   * Durable, checked against the whole file's SHA1, made DONE_MODE (minus the umask),
   * then linked under the final name (never over an existing file). Returns the
   * file's mtime. The SHA1 has followed the writes (WholeHash): what is left of it
   * here is the pieces it had not reached, read back beside the fsync. The partial
   * name stays until dropPartName.
   */
  async finish(sha1: string): Promise<number> {
    const fh = this.#open();
    await this.#syncing;
    const [whole] = await Promise.all([this.#whole.digest(), fh.sync()]);
    if (whole !== sha1) {
      throw new Error("the whole file's SHA1 does not match (the partial file was changed on disk?)");
    }
    await fh.chmod(DONE_MODE & ~process.umask());
    const { mtimeMs } = await fh.stat();
    await this.#publish();
    await this.close();
    return mtimeMs;
  }

  /**
   * Links the checked file under the target. link(2) takes a path, not our
   * descriptor (and does not follow /proc/self/fd/N): so the partial name must
   * still be our file before the link, and the target must be after it; a name
   * swapped in between is taken back and nothing is published.
   */
  async #publish(): Promise<void> {
    const replaced = () =>
      new Error(`${this.path} was replaced on disk (by another user?): not linked to ${this.target}`);
    if (!(await this.#names(this.path))) throw replaced();
    try {
      await this.#fs.link(this.path, this.target); // fails with EEXIST instead of overwriting
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // our own link, made just before a crash that left the partial file and the saved state
      if (e.code !== "EEXIST" || !(await this.#names(this.target))) {
        throw new Error(
          e.code === "EEXIST"
            ? `${this.target} appeared meanwhile; not overwritten`
            : `cannot create ${this.target}: ${e.code}`,
        );
      }
      return;
    }
    if (!(await this.#names(this.target))) {
      await this.#fs.unlink(this.target).catch(() => {});
      throw replaced();
    }
  }

  /** Does `path` name this file (not a link to it: the same device and inode)? */
  #names(path: string): Promise<boolean> {
    return namesFile(this.#fs, path, this.identity);
  }

  /** Removes the partial name once the file is published under the target (and shared there). */
  async dropPartName(): Promise<void> {
    await removePart(this.path, this.identity, this.#fs);
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
      const { bytesRead } = await this.#open().read(buf, 0, len, i * PIECE_SIZE);
      if (bytesRead === len && this.checks(i, buf.subarray(0, bytesRead))) have.set(i);
    }
    return have;
  }
}

/** Does `path` itself (never a link's target) name the file of this identity? */
async function namesFile(fs: PartFileSystem, path: string, identity: FileIdentity): Promise<boolean> {
  const st = await fs.lstat(path).catch(() => undefined);
  return st?.isFile() === true && sameIdentity(identityOf(st), identity);
}

/** An existing partial file this download does not use or touch. */
function refused(path: string, why: string): GsError {
  return new GsError("BAD_REQUEST", `${path} ${why}: left alone; remove it or choose another destination`);
}

/**
 * Why a file found at the partial path is not the one this download left there, or
 * undefined when it is. Another local user who can write the folder could have put
 * it there: to own what we download (their file, which they could rewrite after our
 * checks) or to have us overwrite a file of ours (a link to it).
 */
async function notOurs(
  fs: PartFileSystem,
  st: Stats,
  saved: SavedPart,
  target: string,
): Promise<string | undefined> {
  const uid = process.getuid?.();
  if (!st.isFile()) return "is not a regular file";
  if (uid !== undefined && st.uid !== uid) return `belongs to another user (uid ${st.uid})`;
  if (st.mode & 0o022) return "is writable by other users";
  const identity = identityOf(st);
  // absent from a state saved by an older client: the checks above must do
  if (saved.identity && !sameIdentity(identity, saved.identity)) {
    return "is not the partial file this client left there (replaced since?)";
  }
  // one name; two when a crash came between linking the final name and removing this one
  const crashedAtLink = st.nlink === 2 && saved.sameFile && (await namesFile(fs, target, identity));
  if (st.nlink > 1 && !crashedAtLink) return "has other names (hard links)";
  return undefined;
}

/**
 * The partial file's descriptor: the one this download left at `path` (`saved`,
 * checked by notOurs, never through a symbolic link), or a new one created
 * PART_MODE where nothing holds the name. Anything else at the path is refused and
 * left as it is. `kept`: it holds the same file's pieces, to check; a stale one of
 * ours (another file's bytes) starts over empty.
 */
async function openPart(
  fs: PartFileSystem,
  path: string,
  target: string,
  size: number,
  saved: SavedPart | undefined,
): Promise<{ fh: FileHandle; st: Stats; kept: boolean }> {
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(path, REOPEN);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT")
      throw refused(path, code === "ELOOP" ? "is a symbolic link" : `cannot be opened (${code})`);
  }
  let kept = false;
  if (fh) {
    try {
      const st = await fh.stat();
      const why = saved ? await notOurs(fs, st, saved, target) : "exists";
      if (why) throw refused(path, why);
      // left group- or world-readable by an older client under a looser umask
      if (st.mode & 0o077) await fh.chmod(PART_MODE);
      kept = saved!.sameFile && st.size === size;
      if (!kept) await fh.truncate(0);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  } else {
    try {
      fh = await fs.open(path, CREATE, PART_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw refused(path, "appeared meanwhile");
      throw err;
    }
  }
  try {
    if (!kept) await fh.truncate(size);
    return { fh, st: await fh.stat(), kept };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

/** Removes a partial file, if the path still names the one of this identity (not whatever replaced it). */
export async function removePart(
  path: string,
  identity: FileIdentity | undefined,
  fs: PartFileSystem = nodeFiles,
): Promise<void> {
  if (identity && (await namesFile(fs, path, identity))) await fs.unlink(path).catch(() => {});
}
