import { createHash, randomFillSync } from "node:crypto";
import { open } from "node:fs/promises";
import { PIECE_SIZE } from "../src/shared/constants.js";

/** Random data is generated and written this many bytes at a time: the file is never whole in memory. */
const CHUNK = 4 * 1024 * 1024;

/**
 * Writes `bytes` random bytes to `path` in chunks; returns the file's SHA1 (hex)
 * and, if `pieces` is set, the SHA1 of every PIECE_SIZE piece, concatenated (for
 * the bare pipeline, which checks pieces as a download does).
 */
export async function makeRandomFile(
  path: string,
  bytes: number,
  opts: { pieces?: boolean } = {},
): Promise<{ sha1: string; pieces: Buffer | undefined }> {
  const fh = await open(path, "wx");
  try {
    const hash = createHash("sha1");
    const pieceHashes: Buffer[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let at = 0; at < bytes; ) {
      const n = Math.min(CHUNK, bytes - at);
      const chunk = buf.subarray(0, n);
      randomFillSync(chunk);
      hash.update(chunk);
      // CHUNK is a whole number of pieces, so pieces never span chunks
      if (opts.pieces) {
        for (let p = 0; p < n; p += PIECE_SIZE) {
          pieceHashes.push(
            createHash("sha1")
              .update(chunk.subarray(p, Math.min(n, p + PIECE_SIZE)))
              .digest(),
          );
        }
      }
      // the write finishes before the buffer is refilled
      for (let off = 0; off < n; ) {
        const { bytesWritten } = await fh.write(chunk, off, n - off, at + off);
        off += bytesWritten;
      }
      at += n;
    }
    return { sha1: hash.digest("hex"), pieces: opts.pieces ? Buffer.concat(pieceHashes) : undefined };
  } finally {
    await fh.close();
  }
}

/** The SHA1 (hex) of a file, read in chunks. */
export async function sha1File(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    const hash = createHash("sha1");
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let at = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, at);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return hash.digest("hex");
  } finally {
    await fh.close();
  }
}
