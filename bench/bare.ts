/**
 * The practical limit for a Node downloader on this machine: a bare pipeline on
 * loopback with no protocol, no tracker and no access control. The server reads
 * the file in 512 KiB pieces and sends them over TCP; the fetcher cuts the
 * stream back into pieces, checks each one's SHA1 (on its main thread, as a
 * plain Node program would), writes it at its offset, and syncs the file.
 *
 *   node dist/bench/bare.js serve <file>                           prints "port <n>"
 *   node dist/bench/bare.js fetch <port> <dest> <hashes> <size>    prints "ms <elapsed> cpu <s>"
 *
 * <hashes> holds every piece's SHA1, concatenated (made with the file).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { pipeline } from "node:stream/promises";
import { PIECE_SIZE, SHA1_LENGTH } from "../src/shared/constants.js";

/** Pieces awaiting their write before the socket is paused: the same bound as the client's. */
const MAX_UNWRITTEN = 16;

async function serve(file: string): Promise<void> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    void pipeline(createReadStream(file, { highWaterMark: PIECE_SIZE }), socket).catch(() =>
      socket.destroy(),
    );
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const a = server.address();
  process.stdout.write(`port ${typeof a === "object" && a ? a.port : 0}\n`);
  // runs until killed (or stdin ends)
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
}

async function fetch(port: number, dest: string, hashesPath: string, size: number): Promise<void> {
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const hashes = await readFile(hashesPath);
  const pieceCount = Math.ceil(size / PIECE_SIZE);
  if (hashes.length !== pieceCount * SHA1_LENGTH) throw new Error("hash list does not fit the size");
  const fh = await open(dest, "wx");
  await fh.truncate(size);
  const socket = connect({ host: "127.0.0.1", port });
  let piece = 0;
  let buf = Buffer.allocUnsafe(Math.min(PIECE_SIZE, size));
  let fill = 0;
  let unwritten = 0;
  let failed: Error | undefined;
  const writes: Promise<void>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    socket.on("error", reject);
    socket.on("end", () => (piece === pieceCount ? resolve() : reject(new Error(`ended at piece ${piece}`))));
  });
  const complete = (p: number, data: Buffer) => {
    const digest = createHash("sha1").update(data).digest();
    if (!digest.equals(hashes.subarray(p * SHA1_LENGTH, (p + 1) * SHA1_LENGTH))) {
      failed = new Error(`piece ${p} has the wrong SHA1`);
      socket.destroy(failed);
      return;
    }
    unwritten++;
    if (unwritten >= MAX_UNWRITTEN) socket.pause();
    writes.push(
      fh.write(data, 0, data.length, p * PIECE_SIZE).then(() => {
        if (unwritten-- === MAX_UNWRITTEN) socket.resume();
      }),
    );
  };
  socket.on("data", (chunk: Buffer) => {
    for (let at = 0; at < chunk.length && piece < pieceCount; ) {
      const n = chunk.copy(buf, fill, at);
      at += n;
      fill += n;
      if (fill === buf.length) {
        complete(piece, buf);
        piece++;
        fill = 0;
        if (piece < pieceCount) buf = Buffer.allocUnsafe(Math.min(PIECE_SIZE, size - piece * PIECE_SIZE));
      }
    }
  });
  await done;
  if (failed) throw failed;
  await Promise.all(writes);
  await fh.sync();
  await fh.close();
  const c = process.cpuUsage(cpu0);
  process.stdout.write(
    `ms ${(performance.now() - started).toFixed(1)} cpu ${((c.user + c.system) / 1e6).toFixed(2)}\n`,
  );
}

const [mode, a, b, c, d] = process.argv.slice(2);
if (mode === "serve" && a) await serve(a);
else if (mode === "fetch" && a && b && c && d) await fetch(Number(a), b, c, Number(d));
else {
  process.stderr.write("usage: bare.js serve <file> | bare.js fetch <port> <dest> <hashes> <size>\n");
  process.exit(2);
}
