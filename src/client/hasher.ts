import { createHash, type Hash } from "node:crypto";
import { open } from "node:fs/promises";
import { PIECE_SIZE, SHA1_LENGTH } from "../shared/constants.js";
import { wholeFileSha1 } from "./wholeSha1.js";

export interface FileHashes {
  size: number;
  /** whole-file SHA1, hex */
  sha1: string;
  /** every piece's SHA1, concatenated */
  pieces: Buffer;
  mtimeMs: number;
}

/** Reads of this many bytes at a time: a few pieces, so syscalls stay rare and memory stays small. */
const READ_SIZE = 4 * PIECE_SIZE;

/**
 * The SHA1 of every piece and of the whole file, streaming: memory is one read
 * buffer whatever the file's size. The whole-file hash runs on a worker thread,
 * reading the same file alongside (from the page cache), so both cores hash.
 * `onProgress` is called with the bytes hashed so far after each read.
 */
export async function hashFile(
  path: string,
  onProgress?: (done: number, total: number) => void,
): Promise<FileHashes> {
  const fh = await open(path, "r");
  try {
    const st = await fh.stat();
    const size = st.size;
    const pieceCount = Math.ceil(size / PIECE_SIZE);
    const pieces = Buffer.allocUnsafe(pieceCount * SHA1_LENGTH);
    const whole = wholeFileSha1(path, size);
    whole.catch(() => {}); // awaited below; a failure there must not be an unhandled rejection first
    // two buffers: the next read runs (on libuv's pool) while this one is hashed
    const bufs = [Buffer.allocUnsafe(READ_SIZE), Buffer.allocUnsafe(READ_SIZE)] as const;
    const readInto = (i: 0 | 1, at: number) => {
      const r = fh.read(bufs[i], 0, Math.min(READ_SIZE, size - at), at);
      r.catch(() => {}); // awaited in the loop; not unhandled if the loop ends first
      return r;
    };
    let cur: 0 | 1 = 0;
    let next = size > 0 ? readInto(0, 0) : undefined;
    let piece: Hash | undefined;
    let pieceFill = 0;
    let pieceIndex = 0;
    let done = 0;
    while (done < size) {
      const { bytesRead } = await next!;
      if (bytesRead === 0) throw new Error(`${path} shrank while it was being hashed`);
      const chunk = bufs[cur].subarray(0, bytesRead);
      cur = cur === 0 ? 1 : 0;
      if (done + bytesRead < size) next = readInto(cur, done + bytesRead);
      let at = 0;
      while (at < bytesRead) {
        const take = Math.min(PIECE_SIZE - pieceFill, bytesRead - at);
        piece ??= createHash("sha1");
        piece.update(chunk.subarray(at, at + take));
        pieceFill += take;
        at += take;
        if (pieceFill === PIECE_SIZE || done + at === size) {
          piece.digest().copy(pieces, pieceIndex * SHA1_LENGTH);
          pieceIndex++;
          piece = undefined;
          pieceFill = 0;
        }
      }
      done += bytesRead;
      onProgress?.(done, size);
    }
    const after = await fh.stat();
    if (after.size !== size || after.mtimeMs !== st.mtimeMs)
      throw new Error(`${path} changed while it was being hashed`);
    return { size, sha1: await whole, pieces, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}
