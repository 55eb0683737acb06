/**
 * Worker thread: the SHA1 of a whole file (or of its first `length` bytes), read
 * on its own. It runs beside the piece hashing of the main thread, so the two
 * hashes of upload_file (or the final check of a download) use both cores.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { parentPort, workerData } from "node:worker_threads";

const READ_SIZE = 2 * 1024 * 1024;

async function main(): Promise<void> {
  const { path, length } = workerData as { path: string; length: number };
  const fh = await open(path, "r");
  try {
    const hash = createHash("sha1");
    // two buffers: the next read runs (on libuv's pool) while this one is hashed
    const bufs = [Buffer.allocUnsafe(READ_SIZE), Buffer.allocUnsafe(READ_SIZE)] as const;
    const readInto = (i: 0 | 1, at: number) => {
      const r = fh.read(bufs[i], 0, Math.min(READ_SIZE, length - at), at);
      r.catch(() => {}); // awaited below; not unhandled if the loop ends first
      return r;
    };
    let cur: 0 | 1 = 0;
    let next = length > 0 ? readInto(0, 0) : undefined;
    for (let at = 0; at < length; ) {
      const { bytesRead } = await next!;
      if (bytesRead === 0) throw new Error(`${path} is shorter than ${length} bytes`);
      const chunk = bufs[cur].subarray(0, bytesRead);
      at += bytesRead;
      cur = cur === 0 ? 1 : 0;
      if (at < length) next = readInto(cur, at);
      hash.update(chunk);
    }
    parentPort!.postMessage({ sha1: hash.digest("hex") });
  } finally {
    await fh.close();
  }
}

main().catch((err: Error) => parentPort!.postMessage({ error: err.message }));
