/**
 * The peer server's time rules with a fake clock: ticket expiry, the renewal gap, the
 * TLS and wire handshake windows; and its slot caps. A real PeerServer on 127.0.0.1
 * with real TLS connections, a real shared file and tickets signed with a test key:
 * only time is fake, so no test waits out a ticket's life.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import type { Clock, Timer } from "../../src/client/peers/clock.js";
import { newPeerIdentity } from "../../src/client/peerIdentity.js";
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_SERVED,
  MAX_SERVED_PER_USER,
  MIN_RENEWAL_GAP_MS,
  PeerServer,
  type ServingWarning,
} from "../../src/client/serving/peerServer.js";
import { identityOf, ShareRegistry } from "../../src/client/serving/shares.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { signTicket, type TicketClaims } from "../../src/shared/tickets.js";
import {
  decodeMessage,
  encodeHandshake,
  encodeRequest,
  encodeTicket,
  FrameDecoder,
  type Message,
  RejectCode,
} from "../../src/wire/index.js";
import { FakeClock } from "../helpers/fakeClock.js";
import { fileIdOfFile, writeRandomFile } from "../helpers/files.js";
import { peerSocket, TEST_PEER } from "../helpers/tls.js";

const FILE_SIZE = PIECE_SIZE + 1_000;

/** A fake clock that also says when a timer of `ms` has been set for the `n`th time. */
class WatchedClock extends FakeClock implements Clock {
  readonly #set = new Map<number, number>();
  readonly #waiters: { ms: number; n: number; resolve: () => void }[] = [];

  override after(ms: number, fn: () => void): Timer {
    const n = (this.#set.get(ms) ?? 0) + 1;
    this.#set.set(ms, n);
    for (const w of this.#waiters.filter((w) => w.ms === ms && w.n <= n)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
    return super.after(ms, fn);
  }

  /** How many timers of `ms` have been set. */
  count(ms: number): number {
    return this.#set.get(ms) ?? 0;
  }

  /** Resolves once `n` timers of `ms` have been set in all. */
  set(ms: number, n: number): Promise<void> {
    if ((this.#set.get(ms) ?? 0) >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ ms, n, resolve }));
  }
}

/** One downloader's connection: what the sharer sends, in order, and whether it closed. */
class Peer {
  readonly socket: Socket;
  readonly got: Message[] = [];
  closed = false;
  readonly #decoder = new FrameDecoder();
  #notify: (() => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("error", () => {}); // a reset is one way of being closed; 'close' follows
    socket.on("data", (chunk: Buffer) => {
      for (const f of this.#decoder.push(chunk)) {
        const m = decodeMessage(f);
        this.got.push(m.type === "piece" ? { ...m, data: Buffer.alloc(0) } : m);
      }
      this.#notify?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#notify?.();
    });
  }

  /** Resolves once `cond` holds (checked on every message and on close); the test's timeout bounds it. */
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.closed) assert.fail(`closed first: ${JSON.stringify(this.rejects())}`);
      await new Promise<void>((r) => (this.#notify = r));
    }
  }

  count(type: Message["type"]): number {
    return this.got.filter((m) => m.type === type).length;
  }

  rejects(): [number, string][] {
    return this.got.flatMap((m) => (m.type === "reject" ? [[m.code, m.reason] as [number, string]] : []));
  }

  /** Resolves with the reject that ended the connection, once it has closed. */
  async ended(): Promise<[number, string][]> {
    while (!this.closed) await new Promise<void>((r) => (this.#notify = r));
    return this.rejects();
  }

  write(...chunks: Buffer[]): void {
    for (const c of chunks) this.socket.write(c);
  }
}

/** Each test's bound: one that hangs (a rule not kept) fails on its own. */
const EACH = { timeout: 10_000 };

describe("peer server time rules, with a fake clock", () => {
  let dir: string;
  let path: string;
  let fileIdHex: string;
  const tracker = generateKeyPairSync("ed25519");
  const warnings: ServingWarning[] = [];
  const sharer = newPeerIdentity();
  let shares: ShareRegistry;
  let clock: WatchedClock;
  let server: PeerServer;
  let peers: Peer[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-peer-server-"));
    path = join(dir, "f.bin");
    const sha1 = await writeRandomFile(path, FILE_SIZE);
    fileIdHex = await fileIdOfFile(path);
    const st = await stat(path);
    shares = new ShareRegistry();
    shares.add({
      groupId: "g",
      fileId: fileIdHex,
      name: "f.bin",
      sha1,
      size: FILE_SIZE,
      path,
      identity: identityOf(st),
      have: Bitfield.full(2),
      mtimeMs: st.mtimeMs,
    });
  });

  // a server of its own per test: slots held by one test are not another's
  beforeEach(async () => {
    clock = new WatchedClock();
    server = new PeerServer({
      shares,
      publicKey: () => tracker.publicKey,
      warn: (w) => warnings.push(w),
      clock,
    });
    await server.listen("127.0.0.1", 0, sharer);
  });

  afterEach(async () => {
    for (const p of peers) p.socket.destroy();
    peers = [];
    await server.close();
    assert.deepEqual(warnings, []);
  });

  after(() => rm(dir, { recursive: true, force: true }));

  /** A ticket for mallory's key and the shared file, good for a minute of the fake clock unless `claims` say otherwise. */
  const signed = (claims: Partial<TicketClaims>) =>
    signTicket(tracker.privateKey, {
      u: "mallory",
      g: "g",
      f: fileIdHex,
      k: TEST_PEER.publicKey,
      exp: clock.now() + 60_000,
      ...claims,
    });
  const ticket = (claims: Partial<TicketClaims> = {}) => encodeTicket(signed(claims));
  const hello = (claims: Partial<TicketClaims> = {}) =>
    encodeHandshake(Buffer.from(fileIdHex, "hex"), signed(claims));

  /** A TLS connection that has sent its wire handshake and been answered. */
  async function served(claims: Partial<TicketClaims> = {}): Promise<Peer> {
    const p = connect();
    await new Promise((r) => p.socket.once("secureConnect", r));
    p.write(hello(claims));
    await p.until(() => p.count("handshake") === 1 || p.count("reject") > 0);
    return p;
  }

  function connect(socket: Socket = peerSocket(server.port)): Peer {
    const p = new Peer(socket);
    peers.push(p);
    return p;
  }

  /** Asks for piece `n` whole and resolves when it has come (every piece before it in order). */
  async function piece(p: Peer, n: number): Promise<void> {
    const before = p.count("piece");
    p.write(encodeRequest(n, 0, n === 0 ? PIECE_SIZE : FILE_SIZE - PIECE_SIZE));
    await p.until(() => p.count("piece") > before);
  }

  it("a ticket that is not renewed ends the connection just past its exp, not before", EACH, async () => {
    const p = await served({ exp: clock.now() + 10_000 });
    await clock.advance(10_000);
    // verifyTicket takes a ticket up to and including its exp
    await piece(p, 0);
    assert.equal(p.closed, false);
    await clock.advance(1);
    assert.deepEqual(await p.ended(), [[RejectCode.BAD_TICKET, "ticket expired without a renewal"]]);
  });

  it(
    "a renewed ticket carries the connection past the first ticket's end, until the renewal's",
    EACH,
    async () => {
      const p = await served({ exp: clock.now() + 10_000 });
      p.write(ticket({ exp: clock.now() + 60_000 }));
      await piece(p, 0); // the renewal was read before this request
      await clock.advance(10_001);
      await piece(p, 1);
      assert.deepEqual(p.rejects(), []);
      await clock.advance(60_000 - 10_001);
      assert.equal(p.closed, false, "closed before the renewal's exp");
      await clock.advance(1);
      assert.deepEqual(await p.ended(), [[RejectCode.BAD_TICKET, "ticket expired without a renewal"]]);
    },
  );

  it("a ticket already expired at the handshake is refused, judged by the sharer's clock", EACH, async () => {
    const p = await served({ exp: clock.now() - 1 });
    assert.deepEqual(await p.ended(), [[RejectCode.BAD_TICKET, "expired ticket"]]);
  });

  it(
    `refuses renewals closer together than ${MIN_RENEWAL_GAP_MS} ms, and takes one that waited`,
    EACH,
    async () => {
      const quick = await served();
      quick.write(ticket());
      await piece(quick, 0);
      await clock.advance(MIN_RENEWAL_GAP_MS - 1);
      quick.write(ticket());
      assert.deepEqual(await quick.ended(), [
        [RejectCode.BAD_REQUEST, "renewals more often than once a second"],
      ]);

      const patient = await served();
      patient.write(ticket());
      await piece(patient, 0);
      await clock.advance(MIN_RENEWAL_GAP_MS);
      patient.write(ticket());
      await piece(patient, 1);
      assert.deepEqual(patient.rejects(), []);
    },
  );

  it(
    "a connection that sends no wire handshake is told so when the handshake window ends",
    EACH,
    async () => {
      const before = clock.count(HANDSHAKE_TIMEOUT_MS);
      const p = connect();
      // set twice: the TLS handshake's window, then the wire handshake's once TLS is up
      await clock.set(HANDSHAKE_TIMEOUT_MS, before + 2);
      await clock.advance(HANDSHAKE_TIMEOUT_MS - 1);
      assert.equal(p.closed, false, "closed before the window ended");
      assert.deepEqual(p.rejects(), []);
      await clock.advance(1);
      assert.deepEqual(await p.ended(), [[RejectCode.BAD_REQUEST, "no handshake"]]);
    },
  );

  it("a connection that never starts TLS is closed when the handshake window ends", EACH, async () => {
    const before = clock.count(HANDSHAKE_TIMEOUT_MS);
    const raw = netConnect({ host: "127.0.0.1", port: server.port });
    const p = connect(raw);
    await clock.set(HANDSHAKE_TIMEOUT_MS, before + 1);
    await clock.advance(HANDSHAKE_TIMEOUT_MS - 1);
    assert.equal(p.closed, false, "closed before the window ended");
    await clock.advance(1);
    await p.ended();
  });

  it(
    `serves at most ${MAX_SERVED_PER_USER} connections of one user and ${MAX_SERVED} in all: the rest get BUSY`,
    EACH,
    async () => {
      const busy: [number, string][] = [[RejectCode.BUSY, "no free slot for this user now: try again later"]];
      const held: Peer[] = [];
      for (let i = 0; i < MAX_SERVED_PER_USER; i++) held.push(await served({ u: "u0" }));
      assert.ok(held.every((p) => p.count("handshake") === 1));
      assert.deepEqual(await (await served({ u: "u0" })).ended(), busy);
      // other users fill the rest of the slots
      for (let u = 1; held.length < MAX_SERVED; u++) {
        for (let i = 0; i < MAX_SERVED_PER_USER && held.length < MAX_SERVED; i++) {
          held.push(await served({ u: `u${u}` }));
        }
      }
      assert.ok(held.every((p) => p.count("handshake") === 1 && !p.closed));
      assert.deepEqual(await (await served({ u: "newcomer" })).ended(), busy);
    },
  );
});
