/**
 * The reference the download is measured against: a bare Node TCP pipeline on
 * loopback, file → socket → file, with no protocol, no hashing and no tracker.
 *
 *   node dist/bench/bare.js serve <file>          prints "port <n>", serves the file to each connection
 *   node dist/bench/bare.js fetch <port> <dest>   prints "ms <elapsed>" once dest is written and synced
 *
 * The fetch side syncs the file at the end, as a download does before its final check.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { pipeline } from "node:stream/promises";

async function serve(file: string): Promise<void> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    void pipeline(createReadStream(file, { highWaterMark: 512 * 1024 }), socket).catch(() =>
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

async function fetch(port: number, dest: string): Promise<void> {
  const started = performance.now();
  const socket = connect({ host: "127.0.0.1", port });
  await pipeline(socket, createWriteStream(dest, { flags: "wx" }));
  const fh = await open(dest, "r+");
  await fh.sync();
  await fh.close();
  process.stdout.write(`ms ${(performance.now() - started).toFixed(1)}\n`);
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "serve" && a) await serve(a);
else if (mode === "fetch" && a && b) await fetch(Number(a), b);
else {
  process.stderr.write("usage: bare.js serve <file> | bare.js fetch <port> <dest>\n");
  process.exit(2);
}
