import { createHash, randomFillSync } from "node:crypto";
import { open } from "node:fs/promises";

/** Random data is generated and written this many bytes at a time: the file is never whole in memory. */
const CHUNK = 4 * 1024 * 1024;

/** Writes `bytes` random bytes to `path` in chunks; returns the file's SHA1 (hex). */
export async function makeRandomFile(path: string, bytes: number): Promise<string> {
  const fh = await open(path, "wx");
  try {
    const hash = createHash("sha1");
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let at = 0; at < bytes; ) {
      const n = Math.min(CHUNK, bytes - at);
      const chunk = buf.subarray(0, n);
      randomFillSync(chunk);
      hash.update(chunk);
      // the write finishes before the buffer is refilled
      for (let off = 0; off < n; ) {
        const { bytesWritten } = await fh.write(chunk, off, n - off, at + off);
        off += bytesWritten;
      }
      at += n;
    }
    return hash.digest("hex");
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
