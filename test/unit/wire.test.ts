import assert from "node:assert/strict";
import { once } from "node:events";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { MAX_FRAME_LENGTH, MAX_TICKET_LENGTH, PIECE_SIZE, WIRE_VERSION } from "../../src/shared/constants.js";
import {
  decodeMessage,
  encodeBitfield,
  encodeCancel,
  encodeHandshake,
  encodeHave,
  encodeKeepAlive,
  encodePieceHeader,
  encodeReject,
  encodeRequest,
  encodeTicket,
  FrameDecoder,
  MAX_REJECT_REASON_LENGTH,
  type Message,
  RejectCode,
  rejectCodeName,
  WIRE_ERROR_CODES,
  Wire,
  WireError,
  type WireErrorCode,
} from "../../src/wire/index.js";

const FILE_ID = Buffer.alloc(20, 0xab);
const LAST = 1000; // the last piece's length
const SIZE = 3 * PIECE_SIZE + LAST; // 4 pieces

function rng(seed: number): () => number {
  // mulberry32: small, seeded, reproducible
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(n: number, seed = 1): Buffer {
  const r = rng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const EVENTS = [
  "handshake",
  "bitfield",
  "have",
  "request",
  "piece",
  "cancel",
  "reject",
  "ticket",
  "keep-alive",
] as const;

/** Records every message event on a wire, in order. */
function record(w: Wire): { type: string; msg?: Message }[] {
  const seen: { type: string; msg?: Message }[] = [];
  for (const type of EVENTS) w.on(type, (msg?: Message) => seen.push({ type, ...(msg && { msg }) }));
  return seen;
}

/** A wire that has had the peer's handshake and knows the file: ready for raw bytes. */
function fedWire(): Wire {
  const w = new Wire();
  w.setFile({ size: SIZE });
  w.write(encodeHandshake(FILE_ID, "ticket"));
  return w;
}

/** Downloader `a` and serving peer `b`, piped together, handshakes exchanged. */
async function pair(): Promise<{ a: Wire; b: Wire }> {
  const a = new Wire();
  const b = new Wire();
  a.setFile({ size: SIZE });
  b.on("handshake", () => {
    b.setFile({ size: SIZE });
    b.handshake(FILE_ID, "");
  });
  a.pipe(b).pipe(a);
  const got = once(a, "handshake");
  a.handshake(FILE_ID, "ticket");
  await got;
  return { a, b };
}

function frames(dec: FrameDecoder, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) for (const f of dec.push(c)) out.push(Buffer.from(f));
  return out;
}

function split(buf: Buffer, sizes: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = Math.max(1, sizes());
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Writes `bytes` and expects exactly one WireError with `code`, no message events, a destroyed wire. */
async function expectWireError(w: Wire, input: Buffer, code: WireErrorCode): Promise<void> {
  const seen = record(w);
  const errored = once(w, "error");
  assert.doesNotThrow(() => w.write(input));
  const [err] = await errored;
  assert.ok(err instanceof WireError);
  assert.equal(err.code, code);
  assert.equal(w.destroyed, true);
  assert.deepEqual(seen, []);
}

describe("frames", () => {
  it("encodes and decodes every message", () => {
    const cases: [Buffer, Message][] = [
      [
        encodeHandshake(FILE_ID, "tkt"),
        { type: "handshake", version: WIRE_VERSION, fileId: FILE_ID, ticket: Buffer.from("tkt") },
      ],
      [encodeBitfield(Uint8Array.of(0xf0)), { type: "bitfield", bits: Buffer.of(0xf0) }],
      [encodeHave(7), { type: "have", piece: 7 }],
      [encodeRequest(1, 2, 3), { type: "request", piece: 1, offset: 2, length: 3 }],
      [encodeCancel(1, 2, PIECE_SIZE), { type: "cancel", piece: 1, offset: 2, length: PIECE_SIZE }],
      [encodeReject(RejectCode.BUSY, "later"), { type: "reject", code: RejectCode.BUSY, reason: "later" }],
      [encodeKeepAlive(), { type: "keep-alive" }],
      [encodeTicket("renewed"), { type: "ticket", ticket: Buffer.from("renewed") }],
      [
        Buffer.concat([encodePieceHeader(2, 16, 3), Buffer.of(1, 2, 3)]),
        { type: "piece", piece: 2, offset: 16, data: Buffer.of(1, 2, 3) },
      ],
    ];
    for (const [buf, msg] of cases) {
      assert.equal(buf.readUInt32BE(0), buf.length - 4);
      const [frame, ...rest] = new FrameDecoder().push(buf);
      assert.equal(rest.length, 0);
      assert.deepEqual(decodeMessage(frame!), msg);
    }
  });

  it("has fixed layouts", () => {
    assert.equal(encodeRequest(1, 2, 3).toString("hex"), "0000000d03" + "00000001" + "00000002" + "00000003");
    assert.equal(encodePieceHeader(1, 2, 3).toString("hex"), "0000000c04" + "00000001" + "00000002");
    assert.equal(encodeHandshake(FILE_ID, "").length, 4 + 24);
    assert.equal(encodeTicket("tk").toString("hex"), "00000003" + "07" + "746b");
  });

  it("bounds a ticket renewal like the handshake's ticket", () => {
    assert.throws(() => encodeTicket(""), RangeError);
    assert.throws(() => encodeTicket(Buffer.alloc(MAX_TICKET_LENGTH + 1)), RangeError);
    const longest = encodeTicket(Buffer.alloc(MAX_TICKET_LENGTH, 0x61));
    const [frame] = new FrameDecoder().push(longest);
    assert.equal((decodeMessage(frame!) as { ticket: Buffer }).ticket.length, MAX_TICKET_LENGTH);
  });

  it("exports the reject-code registry by name and number", () => {
    assert.deepEqual(RejectCode, {
      BAD_TICKET: 1,
      NOT_SHARED: 2,
      FILE_CHANGED: 3,
      BAD_REQUEST: 4,
      BUSY: 5,
      VERSION: 6,
      DONT_HAVE: 7,
    });
    assert.equal(rejectCodeName(RejectCode.DONT_HAVE), "DONT_HAVE");
  });

  it("cuts a long reject reason on a character boundary", () => {
    const [frame] = new FrameDecoder().push(encodeReject(RejectCode.BAD_REQUEST, "é".repeat(200)));
    const msg = decodeMessage(frame!);
    assert.equal(msg.type, "reject");
    assert.ok(msg.type === "reject" && msg.reason === "é".repeat(MAX_REJECT_REASON_LENGTH / 2));
  });

  it("refuses bad arguments when encoding", () => {
    assert.throws(() => encodeHandshake(Buffer.alloc(19), ""), RangeError);
    assert.throws(() => encodeHandshake(FILE_ID, Buffer.alloc(MAX_TICKET_LENGTH + 1)), RangeError);
    assert.throws(() => encodeRequest(0, 0, 0), RangeError);
    assert.throws(() => encodeRequest(0, 0, PIECE_SIZE + 1), RangeError);
    assert.throws(() => encodeHave(-1), RangeError);
    assert.throws(() => encodeHave(1.5), RangeError);
    assert.throws(() => encodeHave(2 ** 32), RangeError);
  });

  it("reassembles frames split at every position and one byte at a time", () => {
    const stream = Buffer.concat([
      encodeHandshake(FILE_ID, "t"),
      encodeKeepAlive(),
      encodeHave(3),
      encodePieceHeader(0, 0, 5),
      Buffer.from("hello"),
      encodeReject(RejectCode.VERSION, "v"),
    ]);
    const whole = frames(new FrameDecoder(), [stream]);
    assert.equal(whole.length, 5);
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(frames(new FrameDecoder(), [stream.subarray(0, i), stream.subarray(i)]), whole);
    }
    const dec = new FrameDecoder();
    assert.deepEqual(
      frames(
        dec,
        split(stream, () => 1),
      ),
      whole,
    );
    assert.equal(dec.buffered, 0);
  });

  it("slices a frame that lies inside one chunk without copying", () => {
    const chunk = Buffer.concat([encodeHave(1), encodeHave(2)]);
    const got = [...new FrameDecoder().push(chunk)];
    assert.equal(got.length, 2);
    for (const f of got) assert.equal(f.buffer, chunk.buffer);
  });

  it("tells which piece a partial piece frame carries and how much of its data is in, and nothing for other frames", () => {
    const d = new FrameDecoder();
    const frame = Buffer.concat([encodePieceHeader(7, 16384, 4096), Buffer.alloc(4096, 1)]);
    assert.deepEqual([...d.push(frame.subarray(0, 12))], []);
    assert.equal(d.arrivingPiece, undefined, "its piece and offset are not all in yet");
    assert.deepEqual([...d.push(frame.subarray(12, 1013))], []);
    assert.deepEqual(d.arrivingPiece, { piece: 7, offset: 16384, received: 1000 });
    assert.equal([...d.push(frame.subarray(1013))].length, 1);
    assert.equal(d.arrivingPiece, undefined, "whole: nothing arriving");
    const bits = encodeBitfield(Buffer.alloc(600));
    assert.deepEqual([...d.push(bits.subarray(0, 400))], []);
    assert.equal(d.arrivingPiece, undefined, "a bitfield on its way is no piece");
  });

  it("refuses an oversized length before buffering any body", () => {
    const dec = new FrameDecoder();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(2 ** 31);
    assert.throws(() => [...dec.push(header)], { code: "FRAME_TOO_LARGE" });
    assert.equal(dec.buffered, 0);
    // and stays refused
    assert.throws(() => [...dec.push(Buffer.alloc(100))], { code: "FRAME_TOO_LARGE" });
    assert.equal(dec.buffered, 0);

    const small = new FrameDecoder({ maxFrameLength: 8 });
    assert.throws(() => [...small.push(Buffer.from("0000000900", "hex"))], { code: "FRAME_TOO_LARGE" });
    assert.equal([...new FrameDecoder({ maxFrameLength: 10 }).push(encodePieceHeader(0, 0, 1))].length, 0);
  });

  it("accepts a frame of exactly the maximum length", () => {
    const len = MAX_FRAME_LENGTH;
    const buf = Buffer.alloc(4 + len);
    buf.writeUInt32BE(len);
    assert.equal([...new FrameDecoder().push(buf)][0]!.length, len);
  });

  it("rejects malformed frames with typed codes", () => {
    const bad: [string, string, WireErrorCode][] = [
      ["unknown id", "08", "UNKNOWN_MESSAGE"],
      ["empty ticket renewal", "07", "MALFORMED"],
      ["ticket renewal too long", "07" + "61".repeat(MAX_TICKET_LENGTH + 1), "MALFORMED"],
      ["truncated handshake", "00" + "01" + "ab".repeat(20), "MALFORMED"],
      ["handshake ticket overrun", "00" + "01" + "ab".repeat(20) + "0005" + "aa", "MALFORMED"],
      ["short have", "02000001", "MALFORMED"],
      ["long have", "020000000100", "MALFORMED"],
      ["short request", "03" + "00000000" + "00000000", "MALFORMED"],
      ["request length 0", "03" + "00000000" + "00000000" + "00000000", "MALFORMED"],
      ["request too long", "03" + "00000000" + "00000000" + "00080001", "MALFORMED"],
      ["empty piece", "04" + "00000000" + "00000000", "MALFORMED"],
      ["reject without code", "06", "MALFORMED"],
      ["unknown reject code", "0663", "MALFORMED"],
      ["reject reason too long", "0601" + "61".repeat(257), "MALFORMED"],
    ];
    for (const [what, hex, code] of bad) {
      assert.throws(() => decodeMessage(Buffer.from(hex, "hex")), { code }, what);
    }
  });
});

describe("Wire", () => {
  it("round-trips every message between two piped wires", async () => {
    const { a, b } = await pair();
    assert.deepEqual(b.peerHandshake, {
      type: "handshake",
      version: WIRE_VERSION,
      fileId: FILE_ID,
      ticket: Buffer.from("ticket"),
    });
    assert.equal(a.peerHandshake?.ticket.length, 0);

    const atA = record(a);
    const atB = record(b);
    const data = bytes(LAST);
    b.bitfield(Uint8Array.of(0b1101_0000));
    b.have(2);
    b.piece(3, 0, data);
    b.reject(RejectCode.DONT_HAVE, "no piece 1");
    b.keepAlive();
    a.request(3, 0, LAST);
    a.cancel(0, PIECE_SIZE - 16, 16);
    a.ticket("renewed");
    await new Promise((r) => setImmediate(r));

    assert.deepEqual(atA, [
      { type: "bitfield", msg: { type: "bitfield", bits: Buffer.of(0b1101_0000) } },
      { type: "have", msg: { type: "have", piece: 2 } },
      { type: "piece", msg: { type: "piece", piece: 3, offset: 0, data } },
      { type: "reject", msg: { type: "reject", code: RejectCode.DONT_HAVE, reason: "no piece 1" } },
      { type: "keep-alive" },
    ]);
    assert.deepEqual(atB, [
      { type: "request", msg: { type: "request", piece: 3, offset: 0, length: LAST } },
      { type: "cancel", msg: { type: "cancel", piece: 0, offset: PIECE_SIZE - 16, length: 16 } },
      { type: "ticket", msg: { type: "ticket", ticket: Buffer.from("renewed") } },
    ]);
    assert.equal(b.bytesUploaded, LAST);
    assert.equal(a.bytesDownloaded, LAST);
    assert.equal(a.bytesUploaded, 0);
    a.destroy();
    b.destroy();
  });

  it("delivers a 512 KiB piece byte-identical in one chunk, random chunks and one byte at a time", () => {
    const data = bytes(PIECE_SIZE, 7);
    const stream = Buffer.concat([encodePieceHeader(1, 0, PIECE_SIZE), data]);
    const r = rng(42);
    const feeds: [string, Buffer[]][] = [
      ["one chunk", [stream]],
      ["random chunks", split(stream, () => (r() * 70_000) | 0)],
      ["one byte at a time", split(stream, () => 1)],
    ];
    for (const [how, chunks] of feeds) {
      const w = fedWire();
      const got: Buffer[] = [];
      w.on("piece", (m) => got.push(m.data));
      for (const c of chunks) w.write(c);
      assert.equal(got.length, 1, how);
      assert.ok(got[0]!.equals(data), how);
      assert.equal(w.bytesDownloaded, PIECE_SIZE, how);
      w.destroy();
    }
  });

  it("errors on an oversized length prefix before any body is delivered", async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(2 ** 31);
    await expectWireError(fedWire(), header, "FRAME_TOO_LARGE");
    await expectWireError(fedWire(), Buffer.concat([header, Buffer.alloc(64, 4)]), "FRAME_TOO_LARGE");
  });

  it("errors, once, and destroys the wire on garbled frames", async () => {
    const frame = (hex: string) => {
      const body = Buffer.from(hex, "hex");
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      return Buffer.concat([len, body]);
    };
    const u32 = (n: number) => n.toString(16).padStart(8, "0");
    const cases: [string, Buffer, WireErrorCode][] = [
      ["unknown id", frame("09"), "UNKNOWN_MESSAGE"],
      ["truncated handshake", frame("0001abab"), "MALFORMED"],
      ["bitfield of wrong length", frame("01f000"), "MALFORMED"],
      ["bitfield with spare bits set", frame("01f8"), "MALFORMED"],
      ["have beyond piece count", encodeHave(4), "MALFORMED"],
      ["request beyond end of file", encodeRequest(3, 0, LAST + 1), "MALFORMED"],
      ["request beyond end of piece", encodeRequest(0, PIECE_SIZE - 1, 2), "MALFORMED"],
      ["request beyond piece count", encodeRequest(4, 0, 1), "MALFORMED"],
      ["request length 0", frame("03" + u32(0) + u32(0) + u32(0)), "MALFORMED"],
      ["request length > PIECE_SIZE", frame("03" + u32(0) + u32(0) + u32(PIECE_SIZE + 1)), "MALFORMED"],
      ["cancel beyond piece", encodeCancel(3, LAST, 1), "MALFORMED"],
      [
        "piece beyond end of file",
        Buffer.concat([encodePieceHeader(3, LAST - 1, 2), Buffer.alloc(2)]),
        "MALFORMED",
      ],
      ["second handshake", encodeHandshake(FILE_ID, ""), "UNEXPECTED_MESSAGE"],
    ];
    for (const [what, input, code] of cases) {
      // a valid `have` after the bad frame, in the same chunk, must not be delivered
      await expectWireError(fedWire(), Buffer.concat([input, encodeHave(0)]), code).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
    }
  });

  it("treats a message before the handshake as a protocol error", async () => {
    for (const input of [
      encodeHave(0),
      encodeRequest(0, 0, 1),
      encodeBitfield(Uint8Array.of(0)),
      encodeTicket("renewed"),
    ]) {
      const w = new Wire();
      w.setFile({ size: SIZE });
      await expectWireError(w, input, "UNEXPECTED_MESSAGE");
    }
  });

  it("accepts a reject and keep-alives before the handshake", () => {
    const w = new Wire();
    const seen = record(w);
    w.write(Buffer.concat([encodeKeepAlive(), encodeReject(RejectCode.BAD_TICKET, "expired")]));
    assert.deepEqual(seen, [
      { type: "keep-alive" },
      { type: "reject", msg: { type: "reject", code: RejectCode.BAD_TICKET, reason: "expired" } },
    ]);
    assert.equal(w.destroyed, false);
    w.destroy();
  });

  it("errors when the peer's stream ends inside a frame", async () => {
    const w = fedWire();
    w.resume();
    w.write(encodeHave(1).subarray(0, 6));
    const errored = once(w, "error");
    w.end();
    const [err] = await errored;
    assert.equal(err.code, "MALFORMED");
  });

  it("holds messages that name pieces until setFile, backing up the peer", async () => {
    const a = new Wire();
    const b = new Wire({ writableHighWaterMark: 1024 });
    const atB = record(b);
    a.pipe(b).pipe(a);
    a.handshake(FILE_ID, "t");
    a.request(0, 0, 16);
    let sent = 0;
    while (a.piece(0, 0, Buffer.alloc(16 * 1024)) && sent < 1000) sent++;
    assert.ok(sent < 10, `sent ${sent} blocks before backpressure`);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      atB.map((e) => e.type),
      ["handshake"],
    );
    const resumed = a.whenWritable();
    b.setFile({ size: SIZE });
    await resumed;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(atB.map((e) => e.type).slice(0, 3), ["handshake", "request", "piece"]);
    assert.equal(atB.length, 2 + sent + 1);
    a.destroy();
    b.destroy();
  });

  it("reports 'not writable' after bounded buffering when the reader does not read", async () => {
    const a = new Wire({ readableHighWaterMark: 64 * 1024 });
    // a peer socket that accepts one chunk and then never calls back
    const stuck = new Writable({ highWaterMark: 64 * 1024, write: () => {} });
    a.pipe(stuck);
    const tick = () => new Promise<false>((r) => setImmediate(() => r(false)));
    await tick(); // pipe() starts flowing on the next tick
    const block = Buffer.alloc(16 * 1024);
    let sends = 0;
    // send as a serving peer would: until told to wait, then wait
    for (;;) {
      while (a.piece(0, 0, block)) sends++;
      sends++;
      assert.ok(sends < 100, "never reported backpressure");
      const resumed = await Promise.race([a.whenWritable().then(() => true), tick()]);
      if (!resumed) break;
    }
    const queued = a.readableLength + stuck.writableLength;
    assert.ok(queued <= 2 * 64 * 1024 + block.length + 13, `queued ${queued}`);
    let released = false;
    const waiting = a.whenWritable().then(
      () => {
        released = true;
      },
      (e) => e,
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(released, false);
    a.destroy();
    const err = await waiting;
    assert.ok(err instanceof WireError);
    assert.equal(err.code, "CLOSED");
    assert.equal(a.piece(0, 0, block), false);
  });

  it("resumes senders when the reader drains", async () => {
    const a = new Wire();
    const block = Buffer.alloc(PIECE_SIZE);
    assert.equal(a.piece(0, 0, block), false);
    let sendable = 0;
    a.on("sendable", () => sendable++);
    const waiting = a.whenWritable();
    a.read();
    await waiting;
    assert.equal(sendable, 1);
    a.destroy();
  });

  it("emits nothing after a listener destroys the wire", () => {
    const w = fedWire();
    const seen = record(w);
    w.on("have", () => w.destroy());
    w.write(Buffer.concat([encodeHave(0), encodeHave(1)]));
    assert.deepEqual(seen.length, 1);
  });
});

describe("fuzz", () => {
  const ROUNDS = 2000;
  const SEED = 0x5eed;
  const FUZZ_SIZE = 2 * PIECE_SIZE + 5000; // 3 pieces
  const FUZZ_ID = Buffer.alloc(20, 7);

  it(`${ROUNDS} random and mutated frames end in valid events or one WireError`, async () => {
    const rand = rng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const small = () => (rand() < 0.5 ? int(4) : int(PIECE_SIZE + 2));

    // mostly plausible frames, near the edges of what is valid
    const valid = (): Buffer => {
      switch (int(8)) {
        case 0:
          return encodeHandshake(FUZZ_ID, Buffer.alloc(int(40), 1));
        case 1:
          return encodeBitfield(Uint8Array.of(int(256)));
        case 2:
          return encodeHave(int(5));
        case 3:
          return encodeRequest(int(4), small(), 1 + int(PIECE_SIZE));
        case 4:
          return encodeCancel(int(4), small(), 1 + int(PIECE_SIZE));
        case 5: {
          const n = 1 + int(6000);
          return Buffer.concat([encodePieceHeader(int(4), small(), n), Buffer.alloc(n, 9)]);
        }
        case 6:
          return encodeReject(RejectCode.BUSY, "x".repeat(int(300)));
        default:
          return encodeKeepAlive();
      }
    };
    const mutate = (b: Buffer): Buffer => {
      const out = Buffer.from(b);
      switch (int(4)) {
        case 0: // flip a few bytes, the length prefix and id included
          for (let k = 1 + int(3); k > 0; k--) out[int(out.length)] = int(256);
          return out;
        case 1: // truncate
          return out.subarray(0, int(out.length));
        case 2: // extend with junk
          return Buffer.concat([out, Buffer.alloc(1 + int(20), int(256))]);
        default: // pure noise
          return Buffer.from(Array.from({ length: 1 + int(32) }, () => int(256)));
      }
    };

    let errors = 0;
    let events = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const w = new Wire();
      w.setFile({ size: FUZZ_SIZE });
      w.resume();
      let errored: unknown[] = [];
      let afterError = 0;
      w.on("error", (e) => errored.push(e));
      for (const type of EVENTS) {
        w.on(type, () => {
          if (errored.length > 0 || w.destroyed) afterError++;
          events++;
        });
      }
      const parts = [rand() < 0.9 ? encodeHandshake(FUZZ_ID, "t") : valid()];
      for (let k = 1 + int(3); k > 0; k--) parts.push(rand() < 0.5 ? valid() : mutate(valid()));
      const input = Buffer.concat(parts);
      const closed = new Promise((r) => w.once("close", r));
      for (let i = 0; i < input.length; ) {
        const n = 1 + int(rand() < 0.5 ? 16 : 8192);
        assert.doesNotThrow(() => w.write(input.subarray(i, i + n)), `round ${round}`);
        i += n;
      }
      w.end();
      await closed;
      assert.ok(errored.length <= 1, `round ${round}: ${errored.length} errors`);
      assert.equal(afterError, 0, `round ${round}: events after the error`);
      for (const e of errored) {
        assert.ok(e instanceof WireError, `round ${round}: ${e}`);
        assert.ok(WIRE_ERROR_CODES.includes(e.code), `round ${round}: ${e.code}`);
        errors++;
      }
      errored = [];
    }
    // the mix must exercise both outcomes
    assert.ok(errors > ROUNDS / 10, `${errors} errors`);
    assert.ok(events > ROUNDS, `${events} events`);
  });
});
