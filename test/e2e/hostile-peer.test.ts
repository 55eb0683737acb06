/**
 * Hostile input on the peer wire: a real client process's peer port, spoken
 * to with node:net and the wire encoders. Each hostile connection is closed (with a
 * reject where the protocol has one); the process carries on, keeps its memory
 * bounded, and still serves a legitimate download afterwards.
 *
 * Tickets: the test signs its own with the trackers' key, read from the tracker's
 * SQLite store (table signing_keys), to forge expired, other-file and other-group ones.
 */
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdir, readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { MAX_FRAME_LENGTH, PIECE_SIZE, WIRE_VERSION } from "../../src/shared/constants.js";
import { signTicket, type TicketClaims } from "../../src/shared/tickets.js";
import {
  decodeMessage,
  encodeCancel,
  encodeHandshake,
  encodeHave,
  encodeKeepAlive,
  encodeRequest,
  encodeTicket,
  FrameDecoder,
  type Message,
  RejectCode,
} from "../../src/wire/index.js";
import { fileIdOfFile, prng, sha1File, writeRandomFile } from "../helpers/files.js";
import { Cluster, type Proc } from "../helpers/procs.js";
import { peerSocket, TEST_PEER } from "../helpers/tls.js";

/** 4 pieces, the last one short: requests beyond the end and beyond the piece are both possible. */
const FILE_SIZE = 3 * PIECE_SIZE + 1_000;
const PIECES = 4;
/** A hostile connection must be closed by the sharer within this (its handshake window is 3 s). */
const CLOSE_MS = 15_000;
/** Sharer's RSS may grow by at most this much over a burst of hostile connections. */
const RSS_BOUND_BYTES = 160 * 1024 * 1024;

interface Outcome {
  /** The sharer closed the connection (rather than our bound running out). */
  closed: boolean;
  messages: Message[];
  /** Bytes of piece data received. */
  pieceBytes: number;
  /** The frames we got were themselves well formed. */
  garbled: boolean;
}

/**
 * Opens a connection, writes `chunks`, and collects what comes back until the
 * sharer closes the connection or `waitMs` passes (then we close it ourselves).
 */
function probe(
  port: number,
  chunks: Buffer[],
  waitMs = CLOSE_MS,
  enough: (o: Outcome) => boolean = () => false,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: Socket = peerSocket(port);
    const decoder = new FrameDecoder();
    const out: Outcome = { closed: false, messages: [], pieceBytes: 0, garbled: false };
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.closed = closed;
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("error", () => {}); // a reset is one way of being closed; 'close' follows
    socket.on("close", () => finish(true));
    socket.on("data", (chunk: Buffer) => {
      if (out.garbled) return;
      try {
        for (const frame of decoder.push(chunk)) {
          const m = decodeMessage(frame);
          if (m.type === "piece") {
            out.pieceBytes += m.data.length;
            out.messages.push({ ...m, data: Buffer.alloc(0) }); // keep counts, not the data
          } else out.messages.push(m);
        }
      } catch {
        out.garbled = true;
      }
      if (enough(out)) finish(false);
    });
    socket.on("secureConnect", () => {
      for (const c of chunks) socket.write(c);
    });
  });
}

/** The first message a sharer sends on `socket`, or undefined if it closes first (bounded). */
function firstMessage(socket: Socket): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const decoder = new FrameDecoder();
    const timer = setTimeout(() => done(undefined), CLOSE_MS);
    const done = (m: Message | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      resolve(m);
    };
    const onData = (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) return done(decodeMessage(f));
    };
    const onClose = () => done(undefined);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

function rejects(o: Outcome): { code: number; reason: string }[] {
  return o.messages.flatMap((m) => (m.type === "reject" ? [{ code: m.code, reason: m.reason }] : []));
}

function frame(id: number, payload: Buffer = Buffer.alloc(0), len = 1 + payload.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(len, 0);
  head[4] = id;
  return Buffer.concat([head, payload]);
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  assert.ok(m, "VmRSS in /proc/<pid>/status");
  return Number(m[1]) * 1024;
}

describe("hostile peers: every bad connection is closed, the sharer carries on", () => {
  let c: Cluster;
  let alice: Proc & { port: number };
  let bob: Proc & { port: number };
  let fileSha1 = "";
  let fileIdHex = "";
  let fileId: Buffer;
  let privateKeyPem = "";
  let downloads = 0;

  const ticket = (claims: Partial<TicketClaims> = {}, key: string = privateKeyPem) =>
    signTicket(key, {
      u: "mallory",
      g: "g",
      f: fileIdHex,
      k: TEST_PEER.publicKey,
      exp: Date.now() + 60_000,
      ...claims,
    });
  const hello = (t: string = ticket(), id: Buffer = fileId) => encodeHandshake(id, t);

  /** A legitimate download by bob: the sharer still serves, byte for byte. */
  async function legitimateDownload(): Promise<void> {
    const out = join(c.dir, `bob-${++downloads}`);
    await mkdir(out);
    await bob.run(`download_file g f.bin ${out}`, /^downloading \[g\] f\.bin/);
    await bob.expect(/^download complete: \[g\] f\.bin -> /, 60_000);
    assert.equal(await sha1File(join(out, "f.bin")), fileSha1);
    // the next round downloads again: bob must not already share it
    await bob.run("stop_share g f.bin", /^stopped sharing f\.bin in g/);
  }

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    alice = await c.client("alice");
    bob = await c.client("bob");
    for (const [p, u] of [
      [alice, "alice"],
      [bob, "bob"],
    ] as const) {
      await p.run(`create_user ${u} pw`, /^user .* created/);
      await p.run(`login ${u} pw`, /^logged in as/);
    }
    await alice.run("create_group g", /^group g created/);
    await alice.run("create_group other", /^group other created/);
    await bob.run("join_group g", /^asked to join/);
    await alice.run("accept_request g bob", /^bob is now a member/);
    const path = join(c.dir, "f.bin");
    fileSha1 = await writeRandomFile(path, FILE_SIZE);
    fileIdHex = await fileIdOfFile(path);
    fileId = Buffer.from(fileIdHex, "hex");
    await alice.run(`upload_file ${path} g`, /^uploaded f\.bin to g/);
    const db = new Database(join(c.dir, "groupshare.db"), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT private_key FROM signing_keys WHERE id = 1").get() as {
        private_key: string;
      };
      privateKeyPem = row.private_key;
    } finally {
      db.close();
    }
  });

  after(() => c?.close());

  it("answers a well-formed request with the piece (the probe itself is sound)", async () => {
    const o = await probe(
      alice.port,
      [hello(), encodeRequest(0, 0, PIECE_SIZE)],
      CLOSE_MS,
      (x) => x.pieceBytes >= PIECE_SIZE,
    );
    assert.ok(o.messages.some((m) => m.type === "bitfield"));
    assert.equal(o.pieceBytes, PIECE_SIZE);
    assert.deepEqual(rejects(o), []);
  });

  it("closes on framing garbage: oversized length prefixes, unknown ids, random bytes, early requests", async () => {
    const cases: [string, Buffer[]][] = [
      ["length 0xffffffff", [Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3])]],
      ["one byte over the frame bound", [frame(4, Buffer.alloc(16), MAX_FRAME_LENGTH + 1)]],
      ["unknown message id 99", [frame(99)]],
      ["unknown message id 8 after a valid handshake", [hello(), frame(8, Buffer.alloc(8))]],
      ["a request before any handshake", [encodeRequest(0, 0, 16)]],
      ["a truncated handshake", [frame(0, Buffer.alloc(10))]],
      [
        "a handshake whose ticket length lies",
        [frame(0, Buffer.concat([Buffer.from([WIRE_VERSION]), fileId, Buffer.from([0xff, 0xff])]))],
      ],
      ["a have with 9 bytes", [hello(), frame(2, Buffer.alloc(8))]],
      ["1 KiB of random bytes", [Buffer.concat([Buffer.from([0x7f]), randomBytes(1023)])]],
    ];
    for (const [what, chunks] of cases) {
      const o = await probe(alice.port, chunks);
      assert.ok(o.closed, `${what}: connection left open`);
      assert.equal(o.pieceBytes, 0, `${what}: got piece data`);
    }
    assert.ok(alice.alive);
  });

  it("refuses bad tickets: forged, expired, malformed, for another file, for another group", async () => {
    const foreign = generateKeyPairSync("ed25519", {
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    }).privateKey;
    const otherSha1 = createHash("sha1").update("another file").digest("hex");
    const cases: [string, Buffer, number, RegExp][] = [
      ["no ticket", hello(""), RejectCode.BAD_TICKET, /malformed/],
      ["a forged ticket (another key)", hello(ticket({}, foreign)), RejectCode.BAD_TICKET, /signature/],
      ["an expired ticket", hello(ticket({ exp: Date.now() - 1_000 })), RejectCode.BAD_TICKET, /expired/],
      ["a garbled signature", hello(`${ticket().slice(0, -4)}AAAA`), RejectCode.BAD_TICKET, /signature/],
      ["a ticket for another file", hello(ticket({ f: otherSha1 })), RejectCode.BAD_TICKET, /another file/],
      ["a ticket for another group", hello(ticket({ g: "other" })), RejectCode.NOT_SHARED, /not shared/],
      [
        "a valid ticket for a file not shared here",
        hello(ticket({ f: otherSha1 }), Buffer.from(otherSha1, "hex")),
        RejectCode.NOT_SHARED,
        /not shared/,
      ],
      [
        "another protocol version",
        encodeHandshake(fileId, ticket(), WIRE_VERSION + 1),
        RejectCode.VERSION,
        /version/,
      ],
    ];
    // all at once: a refused connection with a request behind its handshake lingers up to 2 s
    const outcomes = await Promise.all(
      // requests right behind the handshake must not be served either
      cases.map(([, hs]) => probe(alice.port, [hs, encodeRequest(0, 0, PIECE_SIZE)])),
    );
    for (const [k, [what, , code, reason]] of cases.entries()) {
      const o = outcomes[k]!;
      assert.ok(o.closed, `${what}: connection left open`);
      assert.equal(o.pieceBytes, 0, `${what}: got piece data`);
      const r = rejects(o);
      assert.equal(r.length, 1, `${what}: one reject, got ${JSON.stringify(o.messages)}`);
      assert.equal(r[0]!.code, code, `${what}: reject code`);
      assert.match(r[0]!.reason, reason, what);
    }
    assert.ok(alice.alive);
  });

  it("closes on requests beyond the end of the file or of a piece, and on a second handshake", async () => {
    const last = FILE_SIZE - 3 * PIECE_SIZE;
    const cases: [string, Buffer[]][] = [
      ["a request for piece 4 of 4", [encodeRequest(PIECES, 0, 16)]],
      ["a request for piece 2^32-1", [encodeRequest(0xffff_ffff, 0, 16)]],
      ["a request past the short last piece", [encodeRequest(3, 0, last + 1)]],
      ["a request at an offset past the piece", [encodeRequest(0, PIECE_SIZE, 1)]],
      ["an offset that overflows with the length", [encodeRequest(0, 0xffff_fff0, 0x20)]],
      ["a cancel past the end", [encodeCancel(PIECES, 0, 16)]],
      ["a have past the end", [encodeHave(PIECES)]],
      ["a second handshake", [hello()]],
    ];
    for (const [what, chunks] of cases) {
      const o = await probe(alice.port, [hello(), ...chunks]);
      assert.ok(o.closed, `${what}: connection left open`);
      assert.equal(o.pieceBytes, 0, `${what}: got piece data`);
    }
  });

  it("refuses a flood of requests beyond its queue bound with BUSY, and closes", async () => {
    const flood = Array.from({ length: 400 }, (_, i) => encodeRequest(i % PIECES, 0, 1_000));
    const o = await probe(alice.port, [hello(), Buffer.concat(flood)]);
    assert.ok(o.closed, "connection left open");
    assert.ok(
      rejects(o).some((r) => r.code === RejectCode.BUSY),
      JSON.stringify(rejects(o)),
    );
    assert.ok(o.pieceBytes < 400 * 1_000, `served ${o.pieceBytes} bytes of a 400-request flood`);
  });

  it("survives 120 mutated transcripts: each is closed unless it is still a valid conversation", async () => {
    const rand = prng(0x5eed);
    const good = Buffer.concat([
      hello(),
      encodeRequest(1, 0, PIECE_SIZE),
      encodeKeepAlive(),
      encodeRequest(3, 0, 1_000),
    ]);
    let closed = 0;
    // sixty at a time (more than the pending pool of 32, whose oldest give way); each flips
    // a few bytes of a valid transcript, and some are cut short (the sharer waits 3 s for a
    // handshake); the valid ones all carry mallory's ticket, and past 8 get BUSY
    for (let round = 0; round < 2; round++) {
      const batch = Array.from({ length: 60 }, () => {
        const bytes = Buffer.from(good);
        const edits = 1 + Math.floor(rand() * 4);
        for (let e = 0; e < edits; e++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
        const cut = rand() < 0.3 ? Math.floor(rand() * bytes.length) : bytes.length;
        return probe(alice.port, [bytes.subarray(0, cut)], CLOSE_MS);
      });
      for (const o of await Promise.all(batch)) {
        if (o.closed) closed++;
        // still open: only a conversation the sharer accepted (its handshake answer came)
        else
          assert.ok(
            o.messages.some((m) => m.type === "handshake"),
            JSON.stringify(o.messages),
          );
      }
    }
    process.stdout.write(
      `# mutated transcripts: ${closed} of 120 closed by the sharer, the rest still valid\n`,
    );
    assert.ok(closed > 0);
    assert.ok(alice.alive);
    await legitimateDownload();
  });

  it("refuses renewals from another user, group or file, expired ones, and tickets naming no valid user", async () => {
    const cases: [string, Buffer[], RegExp][] = [
      ["a ticket whose user is not an id", [hello(ticket({ u: "mal lory\n" }))], /user is not a valid id/],
      ["a ticket whose user is empty", [hello(ticket({ u: "" }))], /user is not a valid id/],
      ["a renewal from another user", [hello(), encodeTicket(ticket({ u: "eve" }))], /another user/],
      ["a renewal for another group", [hello(), encodeTicket(ticket({ g: "other" }))], /another user/],
      [
        "a renewal for another file",
        [hello(), encodeTicket(ticket({ f: createHash("sha1").update("x").digest("hex") }))],
        /another user/,
      ],
      ["an expired renewal", [hello(), encodeTicket(ticket({ exp: Date.now() - 1 }))], /renewal: expired/],
      ["a forged renewal", [hello(), encodeTicket(`${ticket().slice(0, -4)}AAAA`)], /renewal: bad ticket/],
    ];
    // a flood of valid renewals: each would cost a signature check
    const flood = await probe(alice.port, [hello(), encodeTicket(ticket()), encodeTicket(ticket())]);
    assert.ok(flood.closed, "renewal flood: connection left open");
    assert.deepEqual(
      rejects(flood).map((r) => [r.code, r.reason]),
      [[RejectCode.BAD_REQUEST, "renewals more often than once a second"]],
    );
    const outcomes = await Promise.all(
      cases.map(([, chunks]) => probe(alice.port, [...chunks, encodeRequest(0, 0, PIECE_SIZE)])),
    );
    for (const [k, [what, , reason]] of cases.entries()) {
      const o = outcomes[k]!;
      assert.ok(o.closed, `${what}: connection left open`);
      const r = rejects(o);
      assert.equal(r.length, 1, `${what}: one reject, got ${JSON.stringify(r)}`);
      assert.equal(r[0]!.code, RejectCode.BAD_TICKET, what);
      assert.match(r[0]!.reason, reason, what);
    }
  });

  it("caps served slots per user: a ninth connection of one user gets BUSY", async () => {
    const held: Socket[] = [];
    try {
      const first: string[] = [];
      for (let i = 0; i < 10; i++) {
        // from 127.0.0.2: another host as far as the sharer can tell
        const socket = peerSocket(alice.port, { localAddress: "127.0.0.2" });
        socket.on("error", () => {});
        held.push(socket);
        socket.write(hello());
        const m = await firstMessage(socket);
        first.push(m?.type === "reject" ? `reject ${m.code}` : (m?.type ?? "closed"));
      }
      const busy = `reject ${RejectCode.BUSY}`;
      assert.deepEqual(first, [...Array(8).fill("handshake"), busy, busy]);
      // another user is served meanwhile
      await legitimateDownload();
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it("keeps connections without a ticket in a small pool of their own, at most 4 per address", async () => {
    const sockets = Array.from({ length: 6 }, () => {
      const s = peerSocket(alice.port, { localAddress: "127.0.0.3" });
      s.on("error", () => {});
      return s;
    });
    // sent nothing: the first four are let in and, at the end of the handshake window, told
    // why they are dropped; the other two are closed at once without a word
    const outcomes = await Promise.all(sockets.map((s) => firstMessage(s)));
    const told = outcomes.filter((m) => m?.type === "reject" && /no handshake/.test(m.reason)).length;
    const dropped = outcomes.filter((m) => m === undefined).length;
    assert.deepEqual([told, dropped], [4, 2]);
  });

  it("serves a member while 64 idle sockets from 127.0.0.2 to .9 are held open", async () => {
    let stop = false;
    const live = new Set<Socket>();
    let opened = 0;
    const connected: Promise<unknown>[] = [];
    const hold = (from: string) => {
      if (stop) return;
      const s = peerSocket(alice.port, { localAddress: from });
      opened++;
      live.add(s);
      s.on("error", () => {});
      s.resume(); // read what the sharer says, so that its close is noticed at once
      connected.push(once(s, "secureConnect").catch(() => {}));
      // dropped (pool full, or its handshake window over): come straight back, paced
      s.on("close", () => {
        live.delete(s);
        if (!stop) setTimeout(() => hold(from), 50);
      });
    };
    try {
      for (let a = 2; a <= 9; a++) for (let k = 0; k < 8; k++) hold(`127.0.0.${a}`);
      // every socket of the first round is open before the member asks
      await Promise.all(connected);
      // a member's connection is answered at once, not when an idle socket gives way
      const member = await probe(alice.port, [hello()], CLOSE_MS, (o) =>
        o.messages.some((m) => m.type === "bitfield"),
      );
      assert.deepEqual(
        member.messages.map((m) => m.type),
        ["handshake", "bitfield"],
      );
      await legitimateDownload();
      process.stdout.write(`# idle-socket flood: ${opened} connections opened during the download\n`);
    } finally {
      stop = true;
      for (const s of live) s.destroy();
    }
  });

  it("keeps its memory bounded through 200 hostile connections, and serves afterwards", async () => {
    const pid = alice.child.pid!;
    const before = await rssBytes(pid);
    let peak = before;
    // each one claims a full-size frame and sends half of it, then holds the connection:
    // the most a connection can make the sharer buffer before it is refused
    const half = Buffer.concat([frame(0, Buffer.alloc(0), MAX_FRAME_LENGTH), randomBytes(PIECE_SIZE / 2)]);
    const rounds: Promise<Outcome>[] = [];
    for (let i = 0; i < 200; i++) {
      const chunks =
        i % 4 === 0
          ? [half]
          : i % 4 === 1
            ? [
                hello(ticket({ exp: 1 })),
                Buffer.concat(Array.from({ length: 50 }, () => encodeRequest(0, 0, PIECE_SIZE))),
              ]
            : i % 4 === 2
              ? [
                  hello(),
                  Buffer.concat(Array.from({ length: 200 }, (_, k) => encodeRequest(k % PIECES, 0, 4096))),
                ]
              : [Buffer.from([0xff, 0xff, 0xff, 0xf0]), randomBytes(PIECE_SIZE)];
      rounds.push(probe(alice.port, chunks, 3_000));
      if (i % 10 === 9) peak = Math.max(peak, await rssBytes(pid));
    }
    await Promise.all(rounds);
    peak = Math.max(peak, await rssBytes(pid));
    assert.ok(alice.alive);
    await legitimateDownload();
    const afterRss = await rssBytes(pid);
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    process.stdout.write(`# sharer RSS: before ${mib(before)}, peak ${mib(peak)}, after ${mib(afterRss)}\n`);
    assert.ok(peak - before < RSS_BOUND_BYTES, `RSS grew from ${mib(before)} to ${mib(peak)}`);
    assert.ok(afterRss - before < RSS_BOUND_BYTES, `RSS grew from ${mib(before)} to ${mib(afterRss)}`);
    await alice.run("show_shares", /^\[g\] f\.bin /);
  });
});
