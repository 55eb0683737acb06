/**
 * Worker thread: the SHA1 of the first `length` bytes of a file, read on its own
 * through the descriptor the main thread opened (threads share the process's
 * descriptors): the file hashed here is the one the main thread hashes piece by piece,
 * whatever happens to its path meanwhile. It runs beside the piece hashing of the main
 * thread, so the two hashes of upload_file use both cores.
 */
import { createHash } from "node:crypto";
import { read } from "node:fs";
import { promisify } from "node:util";
import { parentPort, workerData } from "node:worker_threads";
import { readAhead } from "../serving/readAhead.js";

const READ_SIZE = 2 * 1024 * 1024;
const readAt = promisify(read);

async function main(): Promise<void> {
  const { fd, length, path } = workerData as { fd: number; length: number; path: string };
  const reader = {
    read: async (buffer: Buffer, offset: number, count: number, position: number) => {
      const { bytesRead } = await readAt(fd, buffer, offset, count, position);
      return { bytesRead };
    },
  };
  const hash = createHash("sha1");
  for await (const chunk of readAhead(reader, length, READ_SIZE, path)) hash.update(chunk);
  parentPort!.postMessage({ sha1: hash.digest("hex") });
}

main().catch((err: Error) => parentPort!.postMessage({ error: err.message }));
