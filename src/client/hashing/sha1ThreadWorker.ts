/**
 * Worker thread of HashingThread (sha1Thread.ts): a running SHA1 per stream (one
 * per download) of the bytes streamed to it, in the order they come. Each
 * update's memory goes back with its answer; a drop has none.
 */
import { createHash, type Hash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import type { ThreadReply, ThreadRequest } from "./sha1Thread.js";

const port = parentPort!;
const streams = new Map<number, Hash>();

function stream(id: number): Hash {
  let hash = streams.get(id);
  if (!hash) {
    hash = createHash("sha1");
    streams.set(id, hash);
  }
  return hash;
}

port.on("message", (m: ThreadRequest) => {
  if (m.op === "drop") {
    streams.delete(m.stream);
  } else if (m.op === "digest") {
    const reply: ThreadReply = { op: "digest", stream: m.stream, sha1: stream(m.stream).digest("hex") };
    streams.delete(m.stream);
    port.postMessage(reply);
  } else {
    stream(m.stream).update(new Uint8Array(m.buf, m.offset, m.length));
    const reply: ThreadReply = { op: "updated", stream: m.stream, buf: m.buf };
    port.postMessage(reply, [m.buf]);
  }
});
