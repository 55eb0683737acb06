import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import type { Bitfield } from "../../shared/bitfield.js";
import { PIECE_SIZE } from "../../shared/constants.js";
import { LocalHasher, type StreamSha1 } from "../hashing/sha1Thread.js";

/**
 * Verified pieces held in memory ahead of the whole-file hash, waiting for the
 * pieces before them: 12 (6 MiB), as many as a download has in flight. Picked in
 * file order (picker.ts), pieces from several peers arrive a few requests out of
 * order; one that finds no room, or lies more than twice this far ahead (picked at
 * random: it would be held for most of the download), is read back from the
 * partial file when the hash gets to it.
 */
export const MAX_HELD = 12;
/** Pieces read back from the partial file ahead of the hash: reading outruns SHA1. */
const MAX_READ_AHEAD = 4;

/**
 * The whole file's SHA1, following the pieces as they are written instead of
 * reading the file back after the last one. The hash covers the prefix of pieces
 * on disk, in order: each from the verified buffer that was written, when it is
 * still held, else read back from the partial file (a piece from an earlier
 * session, or one that arrived too far ahead). Memory: MAX_HELD pieces and
 * MAX_READ_AHEAD read back, whatever the file's size. The SHA1 itself may run on
 * another thread (threadHasher); if the bytes are lost there, the digest reads the
 * whole file back instead.
 *
 * Reading 1 GiB back after the last piece cost the downloader 0.5 s of CPU in
 * libuv's pool and a worker thread's 0.7 s of SHA1 after the transfer, on one
 * core while the other idled; following, the SHA1 runs while the pieces move.
 */
export class WholeHash {
  /** Pieces [0, next) are hashed. */
  #next = 0;
  readonly #held = new Map<number, Buffer>();
  #reading: Promise<void> | undefined;
  #failed: Error | undefined;

  constructor(
    readonly pieceCount: number,
    readonly pieceLength: (piece: number) => number,
    /** Pieces whose write has completed. */
    readonly written: Bitfield,
    readonly file: () => FileHandle,
    readonly maxHeld = MAX_HELD,
    readonly sha1: StreamSha1 = new LocalHasher(),
  ) {}

  /** Pieces hashed so far (the prefix). */
  get hashed(): number {
    return this.#next;
  }

  /** Pieces held in memory now. */
  get held(): number {
    return this.#held.size;
  }

  /** A verified piece whose write has completed, with the bytes that were written (now ours). */
  add(piece: number, data: Buffer): void {
    if (piece > this.#next || this.#reading) this.#hold(piece, data);
    else if (piece === this.#next) {
      this.sha1.update(data, true);
      this.#next++;
    }
    this.#advance();
  }

  /** The SHA1 (hex) of the whole file, once every piece is written. */
  async digest(): Promise<string> {
    for (;;) {
      this.#advance();
      if (this.#failed) throw this.#failed;
      if (!this.#reading) break;
      await this.#reading;
    }
    if (this.#next !== this.pieceCount) throw new Error(`whole-file hash stopped at piece ${this.#next}`);
    return this.sha1.digest().catch(() => this.#rereadAll());
  }

  /** Keeps the piece if there is room, or if it is nearer the prefix than the farthest one held. */
  #hold(piece: number, data: Buffer): void {
    if (piece < this.#next || piece >= this.#next + 2 * this.maxHeld || this.#held.has(piece)) return;
    if (this.#held.size >= this.maxHeld) {
      let farthest = -1;
      for (const p of this.#held.keys()) if (p > farthest) farthest = p;
      if (farthest < piece) return;
      this.#held.delete(farthest);
    }
    this.#held.set(piece, data);
  }

  /** Hashes what is next from memory; starts reading the file back where the next piece is on disk only. */
  #advance(): void {
    if (this.#reading || this.#failed) return;
    while (this.#next < this.pieceCount) {
      const data = this.#held.get(this.#next);
      if (data === undefined) break;
      this.#held.delete(this.#next);
      this.sha1.update(data, true);
      this.#next++;
    }
    if (this.#next < this.pieceCount && this.written.has(this.#next)) {
      this.#reading = this.#readBack().then(
        () => {
          this.#reading = undefined;
          this.#advance();
        },
        (err: Error) => {
          this.#reading = undefined;
          this.#failed = err;
        },
      );
    }
  }

  /** Reads and hashes written pieces from the file while the next one is not held. */
  async #readBack(): Promise<void> {
    while (this.#next < this.pieceCount && !this.#held.has(this.#next) && this.written.has(this.#next)) {
      await this.sha1.room(MAX_READ_AHEAD);
      const buf = await this.#read(this.#next);
      this.sha1.update(buf, true);
      this.#next++;
    }
  }

  /** The whole file's SHA1 from the partial file, on this thread: the streamed bytes were lost. */
  async #rereadAll(): Promise<string> {
    const hash = createHash("sha1");
    for (let p = 0; p < this.pieceCount; p++) hash.update(await this.#read(p));
    return hash.digest("hex");
  }

  async #read(piece: number): Promise<Buffer> {
    const len = this.pieceLength(piece);
    const buf = Buffer.allocUnsafeSlow(len);
    const { bytesRead } = await this.file().read(buf, 0, len, piece * PIECE_SIZE);
    if (bytesRead !== len) throw new Error(`the partial file is shorter than piece ${piece}`);
    return buf;
  }
}
