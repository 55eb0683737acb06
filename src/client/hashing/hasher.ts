import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { PIECE_SIZE, SHA1_LENGTH } from "../../shared/constants.js";
import { GsError } from "../../shared/errors.js";
import { readAhead } from "../serving/readAhead.js";
import { type FileIdentity, identityOf } from "../serving/shares.js";
import { wholeFileSha1 } from "./wholeSha1.js";

export interface FileHashes {
  size: number;
  /** whole-file SHA1, hex */
  sha1: string;
  /** every piece's SHA1, concatenated */
  pieces: Buffer;
  mtimeMs: number;
  /** the file that was hashed (what its shares may serve) */
  identity: FileIdentity;
}

/** Reads of this many bytes at a time: a few pieces, so syscalls stay rare and memory stays small. */
const READ_SIZE = 4 * PIECE_SIZE;

/**
 * The SHA1 of every piece and of the whole file, streaming: memory is one read
 * buffer whatever the file's size. The whole-file hash runs on a worker thread,
 * reading the same open file alongside (from the page cache), so both cores hash.
 * Everything is read through the one descriptor opened here, so both hashes and the
 * identity are of one file even if its path is replaced meanwhile; opening does not
 * wait on a FIFO put in a file's place (it is refused as not a regular file).
 * `onProgress` is called with the bytes hashed so far after each read.
 */
export async function hashFile(
  path: string,
  onProgress?: (done: number, total: number) => void,
): Promise<FileHashes> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const stop = new AbortController();
  let whole: Promise<string> | undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GsError("BAD_REQUEST", `${path} is not a regular file`);
    const size = st.size;
    const pieceCount = Math.ceil(size / PIECE_SIZE);
    const pieces = Buffer.allocUnsafe(pieceCount * SHA1_LENGTH);
    whole = wholeFileSha1(fh.fd, size, path, stop.signal);
    whole.catch(() => {}); // awaited below; a failure there must not be an unhandled rejection first
    let piece: Hash | undefined;
    let pieceFill = 0;
    let pieceIndex = 0;
    let done = 0;
    for await (const chunk of readAhead(fh, size, READ_SIZE, path)) {
      const bytesRead = chunk.length;
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
    return { size, sha1: await whole, pieces, mtimeMs: st.mtimeMs, identity: identityOf(st) };
  } finally {
    // the worker reads through fh: it must have stopped before fh closes (and its number is reused)
    stop.abort();
    await whole?.catch(() => {});
    await fh.close();
  }
}
