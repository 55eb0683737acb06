/**
 * Worker thread: the SHA1 of a whole file (or of its first `length` bytes), read
 * on its own. It runs beside the piece hashing of the main thread, so the two
 * hashes of upload_file use both cores.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { parentPort, workerData } from "node:worker_threads";
import { readAhead } from "../serving/readAhead.js";

const READ_SIZE = 2 * 1024 * 1024;

async function main(): Promise<void> {
  const { path, length } = workerData as { path: string; length: number };
  const fh = await open(path, "r");
  try {
    const hash = createHash("sha1");
    for await (const chunk of readAhead(fh, length, READ_SIZE, path)) hash.update(chunk);
    parentPort!.postMessage({ sha1: hash.digest("hex") });
  } finally {
    await fh.close();
  }
}

main().catch((err: Error) => parentPort!.postMessage({ error: err.message }));
