/**
 * A trace of one client in the swarm bench, loaded before the client with
 * `node --import <this file's URL>` and GS_TRACE=<file>. It wraps a few methods
 * of the engine's classes (same module instances as the client's, so the
 * client runs unchanged) and appends one JSON array per event to the file:
 *
 *   ["out", t, piece]                  a piece sent by this peer server
 *   ["req", t, piece, peer]            a request (the picker handed a piece to a link)
 *   ["in", t, piece, peer]             a verified piece received (first copy)
 *   ["add", t, peer, pieces]           a link's bitfield arrived (pieces it had)
 *   ["rm", t, peer]                    a link ended
 *   ["grant", t, [[addr, complete]]]   the tracker's peer list (at the start, at each refresh)
 *   ["call", t, "POST shares", ms]     a tracker call: when it began, what, how long it took
 *   ["finish", t, ms]                  the partial file's end: background sync, whole SHA1 and fsync, link
 *   ["s", t, missing, inFlight, ready, interesting]   every SAMPLE_MS while downloading
 *
 * t is milliseconds since the epoch (performance.timeOrigin + now), comparable
 * across the processes of one machine. A method the engine no longer has is
 * skipped with a note in the trace: the client must keep running.
 */
import { appendFileSync } from "node:fs";
import { PartFile } from "../../src/client/download/partFile.js";
import { PiecePicker } from "../../src/client/download/picker.js";
import { TrackerClient } from "../../src/client/tracker/trackerClient.js";
import { Wire } from "../../src/wire/wire.js";

const FILE = process.env["GS_TRACE"];
const SAMPLE_MS = 100;
const FLUSH_MS = 500;

type Fn = (this: unknown, ...args: never[]) => unknown;

const now = () => Math.round((performance.timeOrigin + performance.now()) * 10) / 10;
let buffered: string[] = [];
const emit = (...e: unknown[]) => buffered.push(JSON.stringify(e));
const flush = () => {
  if (!FILE || buffered.length === 0) return;
  appendFileSync(FILE, `${buffered.join("\n")}\n`);
  buffered = [];
};

/** Replaces `proto[name]` with a wrapper that sees its arguments and result. */
function wrap<S, A extends unknown[], R>(
  proto: object,
  name: string,
  after: (self: S, args: A, result: R) => void,
): void {
  const p = proto as Record<string, Fn>;
  const original = p[name];
  if (typeof original !== "function") {
    emit("note", now(), `no method ${name} to trace`);
    return;
  }
  p[name] = function (this: unknown, ...args: never[]) {
    const result = original.apply(this, args);
    try {
      after(this as S, args as unknown as A, result as R);
    } catch {}
    return result;
  };
}

if (FILE) {
  const pickers = new Map<PiecePicker, Set<string>>();
  const peersOf = (p: PiecePicker) => {
    let s = pickers.get(p);
    if (!s) {
      s = new Set();
      pickers.set(p, s);
    }
    return s;
  };

  wrap(Wire.prototype, "piece", (_w: Wire, [piece]: [number]) => {
    emit("out", now(), piece);
  });
  wrap(PiecePicker.prototype, "pick", (_p: PiecePicker, [peer]: [string], piece: number | undefined) => {
    if (piece !== undefined) emit("req", now(), piece, peer);
  });
  wrap(PiecePicker.prototype, "received", (_p: PiecePicker, [piece, peer]: [number, string]) => {
    emit("in", now(), piece, peer);
  });
  wrap(PiecePicker.prototype, "addPeer", (p: PiecePicker, [peer, bits]: [string, { count: number }]) => {
    peersOf(p).add(peer);
    emit("add", now(), peer, bits.count);
  });
  wrap(PiecePicker.prototype, "removePeer", (p: PiecePicker, [peer]: [string]) => {
    peersOf(p).delete(peer);
    emit("rm", now(), peer);
  });
  const tc = TrackerClient.prototype as unknown as Record<string, Fn>;
  const call = tc["call"];
  if (typeof call === "function") {
    tc["call"] = async function (this: unknown, ...args: never[]) {
      const path = String(args[1]);
      const start = now();
      let result: { peers?: { addr: string; complete: boolean }[] };
      try {
        result = (await call.apply(this, args)) as typeof result;
      } finally {
        emit("call", start, `${String(args[0])} ${path.replace(/^.*\//, "")}`, Math.round(now() - start));
      }
      if (/\/(download|peers)$/.test(path) && Array.isArray(result?.peers)) {
        emit(
          "grant",
          now(),
          result.peers.map((p) => [p.addr, p.complete]),
        );
      }
      return result;
    };
  }

  const pf = PartFile.prototype as unknown as Record<string, Fn>;
  const finish = pf["finish"];
  if (typeof finish === "function") {
    pf["finish"] = async function (this: unknown, ...args: never[]) {
      const start = now();
      try {
        return await finish.apply(this, args);
      } finally {
        emit("finish", start, Math.round(now() - start));
      }
    };
  }

  setInterval(() => {
    for (const [p, peers] of pickers) {
      if (p.complete) {
        pickers.delete(p);
        continue;
      }
      let inFlight = 0;
      let interesting = 0;
      for (const peer of peers) {
        inFlight += p.inFlight(peer);
        if (p.interesting(peer)) interesting++;
      }
      emit("s", now(), p.missing, inFlight, peers.size, interesting);
    }
  }, SAMPLE_MS).unref();
  setInterval(flush, FLUSH_MS).unref();
  process.on("exit", flush);
}
