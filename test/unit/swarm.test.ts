import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { afterEach, describe, it } from "node:test";
import type { Grant } from "../../src/client/download/fileTracker.js";
import { START_GATE_MS, WINDOW_SECONDS } from "../../src/client/download/gate.js";
import { STALL_BYTES } from "../../src/client/download/peerLink.js";
import { Swarm, type SwarmOwner } from "../../src/client/download/swarm.js";
import { LimitTree } from "../../src/client/limits/buckets.js";
import { ThrottledStream } from "../../src/client/limits/throttle.js";
import type { Dialer } from "../../src/client/peers/dialer.js";
import { pieceCountOf, pieceLength } from "../../src/client/serving/shares.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { SHA1_LENGTH } from "../../src/shared/constants.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";
import { type MemoryFile, memoryFile } from "../helpers/files.js";
import { MemorySharer, memoryDialer } from "../helpers/memoryPeers.js";

/** A swarm over in-memory sharers, with a fake clock, recording what it tells its download. */
function harness(
  pieces: number,
  sharers: Record<string, (f: MemoryFile) => MemorySharer>,
  unreachable: string[] = [],
  rate?: () => number | undefined,
) {
  const f = memoryFile(pieces);
  const clock = new FakeClock();
  const table = new Map(Object.entries(sharers).map(([addr, make]) => [addr, make(f)]));
  const dialled: string[] = [];
  const verified: number[] = [];
  const corrupt: string[] = [];
  const refused: string[] = [];
  const swarm = new Swarm(
    { clock, dialer: memoryDialer(table, dialled, new Set(unreachable)) },
    {
      ...fileOf(f),
      rate,
      owner: {
        onVerified: (piece) => verified.push(piece),
        onCorrupt: (addr, piece) => corrupt.push(`${addr} ${piece}`),
        onRefused: (addr, reason) => refused.push(`${addr} ${reason}`),
        onImpostor: (addr) => refused.push(`${addr} impostor`),
        onUnreachable: (addr, why) => refused.push(`${addr} unreachable ${why}`),
        onIdle: () => {},
        onServable: () => {},
        diskFull: () => false,
        checks: checksOf(f),
      },
    },
  );
  const grant: Grant = {
    ticket: "t",
    peers: [...table.keys(), ...unreachable, "10.0.0.1:7000"].map((addr, i) => ({
      userId: `u${i}`,
      addr,
      key: `k${i}`,
      complete: true,
    })),
  };
  const sharer = (addr: string) => table.get(addr)!;
  return { f, clock, swarm, grant, dialled, verified, corrupt, refused, sharer, table };
}

/** A download that only checks pieces (the swarm tests that look at links, not at what it is told). */
function quietOwner(f: MemoryFile): SwarmOwner {
  return {
    onVerified: () => {},
    onCorrupt: () => {},
    onRefused: () => {},
    onImpostor: () => {},
    onUnreachable: () => {},
    onIdle: () => {},
    onServable: () => {},
    diskFull: () => false,
    checks: checksOf(f),
  };
}

/** What a swarm of `f`'s download starts from: nothing yet, at our address 10.0.0.1:7000. */
function fileOf(f: MemoryFile) {
  const pieceCount = pieceCountOf(f.data.length);
  return {
    fileId: f.fileId,
    size: f.data.length,
    pieceCount,
    pieceLength: (p: number) => pieceLength(f.data.length, p),
    have: new Bitfield(pieceCount),
    selfAddr: "10.0.0.1:7000",
  };
}

/** Whether a piece's data is what its SHA1 in `f` says. */
function checksOf(f: MemoryFile): SwarmOwner["checks"] {
  return (piece, data) =>
    createHash("sha1")
      .update(data)
      .digest()
      .equals(f.hashes.subarray(piece * SHA1_LENGTH, (piece + 1) * SHA1_LENGTH));
}

let open: Swarm[] = [];
afterEach(() => {
  for (const s of open) s.closeAll("test over");
  open = [];
});

describe("swarm: the start gate", () => {
  it("holds every request until each dialled peer has sent its bitfield", async () => {
    const h = harness(8, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
      "10.0.0.3:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true, holdBitfield: true }),
    });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    assert.deepEqual(h.sharer("10.0.0.2:1").requests, [], "the first ready peer waits for the other");
    h.sharer("10.0.0.3:1").bitfieldNow();
    await settle();
    // the budget (12) shared by two ready links: 6 each, spread over both
    assert.equal(h.sharer("10.0.0.2:1").requests.length, 6);
    assert.equal(h.sharer("10.0.0.3:1").requests.length, 6);
  });

  it("opens after START_GATE_MS for a peer that never sends its bitfield", async () => {
    const h = harness(8, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
      "10.0.0.3:1": (f) => new MemorySharer(f.data, f.fileId, { holdBitfield: true }),
    });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await h.clock.advance(START_GATE_MS - 1);
    assert.deepEqual(h.sharer("10.0.0.2:1").requests, []);
    await h.clock.advance(1);
    // one ready link of two: depth is the budget over ready links, capped at PIPELINE_DEPTH
    assert.equal(h.sharer("10.0.0.2:1").requests.length, 6);
  });
});

describe("swarm: backoff and bans", () => {
  it("redials a peer that failed before its bitfield on the retry schedule, not at each round", async () => {
    const h = harness(4, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
    });
    open.push(h.swarm);
    // 10.0.0.9 is not in the table: its connection is refused
    const grant: Grant = {
      ...h.grant,
      peers: [...h.grant.peers, { userId: "u9", addr: "10.0.0.9:1", key: "k9", complete: true }],
    };
    const dials = () => h.dialled.filter((a) => a === "10.0.0.9:1").length;
    h.swarm.connect(grant);
    await settle();
    assert.equal(dials(), 1);
    h.swarm.connect(grant);
    await h.clock.advance(999);
    h.swarm.connect(grant);
    assert.equal(dials(), 1, "not again within 1 s");
    await h.clock.advance(1);
    h.swarm.connect(grant);
    await settle();
    assert.equal(dials(), 2, "again after 1 s");
    await h.clock.advance(1_999);
    h.swarm.connect(grant);
    assert.equal(dials(), 2, "the second wait is 2 s");
    await h.clock.advance(1);
    h.swarm.connect(grant);
    assert.equal(dials(), 3);
    assert.ok(!h.dialled.includes("10.0.0.1:7000"), "never dials itself");
  });

  it("bans a peer that sent a corrupt piece, for good, and takes the piece from another", async () => {
    const h = harness(1, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { corrupt: new Set([0]) }),
    });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    assert.deepEqual(h.corrupt, ["10.0.0.2:1 0"]);
    assert.equal(h.swarm.peerCount, 0, "dropped");
    assert.deepEqual(h.verified, []);
    await h.clock.advance(60_000);
    h.swarm.connect(h.grant);
    await settle();
    assert.equal(h.sharer("10.0.0.2:1").dials, 1, "never dialled again");
    // a good sharer appears: the piece went back to the pool and comes from it
    const good = new MemorySharer(h.f.data, h.f.fileId);
    h.table.set("10.0.0.3:1", good);
    h.swarm.connect({
      ...h.grant,
      peers: [...h.grant.peers, { userId: "u3", addr: "10.0.0.3:1", key: "k3", complete: true }],
    });
    await settle();
    assert.deepEqual(h.verified, [0]);
    assert.ok(h.swarm.complete);
  });

  it("reports a refusal once per peer and reason, and BUSY not at all", async () => {
    const h = harness(2, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { refuse: { code: 1, reason: "expired" } }),
      "10.0.0.3:1": (f) => new MemorySharer(f.data, f.fileId, { refuse: { code: 5, reason: "no slot" } }),
    });
    open.push(h.swarm);
    for (let i = 0; i < 3; i++) {
      h.swarm.connect(h.grant);
      await h.clock.advance(40_000);
    }
    assert.equal(h.sharer("10.0.0.2:1").dials, 3, "retried");
    assert.deepEqual(h.refused, ["10.0.0.2:1 BAD_TICKET expired"]);
  });
});

describe("swarm: end-game", () => {
  it("asks a second peer for pieces in flight once the pool is empty, and cancels the loser", async () => {
    const h = harness(2, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
      "10.0.0.3:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
    });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    const a = h.sharer("10.0.0.2:1");
    const b = h.sharer("10.0.0.3:1");
    // two pieces, two peers: each piece is asked of both, at most DEFAULT_MAX_DUPLICATES = 2
    assert.deepEqual([...a.requests].sort(), [0, 1]);
    assert.deepEqual([...b.requests].sort(), [0, 1]);
    a.serve(0);
    b.serve(1);
    await settle();
    assert.deepEqual(b.cancels, [0], "b's request for 0 is cancelled");
    assert.deepEqual(a.cancels, [1]);
    assert.deepEqual([...h.verified].sort(), [0, 1]);
    assert.ok(h.swarm.complete);
  });

  it("returns a timed-out peer's pieces to the pool for the others", async () => {
    const h = harness(3, {
      "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
    });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    assert.equal(h.sharer("10.0.0.2:1").requests.length, 3);
    const b = new MemorySharer(h.f.data, h.f.fileId, { have: new Bitfield(3) });
    h.table.set("10.0.0.3:1", b);
    h.swarm.connect({
      ...h.grant,
      peers: [...h.grant.peers, { userId: "u3", addr: "10.0.0.3:1", key: "k3", complete: false }],
    });
    await settle();
    assert.deepEqual(b.requests, [], "b has nothing yet");
    // REQUEST_TIMEOUT_MS: a is dropped and its three pieces go back
    await h.clock.advance(20_000);
    assert.equal(h.swarm.peerCount, 1);
    b.gain(1);
    await settle();
    assert.deepEqual(b.requests, [1]);
    assert.deepEqual(h.verified, [1]);
  });
});

describe("swarm: requests under a download limit", () => {
  /** Bytes requested of `s` and not answered yet. */
  const heldBytes = (s: MemorySharer) =>
    s.held.length && s.ranges.slice(-s.held.length).reduce((n, r) => n + r.length, 0);

  it("keeps no more than the window requested, in blocks spread over its links, and puts pieces together", async () => {
    const window = 96 * 1024;
    const rate = window / WINDOW_SECONDS;
    const h = harness(
      3,
      {
        "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
        "10.0.0.3:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }),
      },
      [],
      () => rate,
    );
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    const sharers = [h.sharer("10.0.0.2:1"), h.sharer("10.0.0.3:1")];
    // 48 KiB each: blocks of 16 KiB, two of which fit, and a third
    for (const s of sharers)
      assert.deepEqual(
        s.ranges.map((r) => r.length),
        [16384, 16384, 16384],
      );
    let most = 0;
    for (let round = 0; round < 1000 && !h.swarm.complete; round++) {
      const s = sharers[round % 2]!;
      if (s.held.length > 0) s.serve(s.held[0]!);
      await settle();
      most = Math.max(most, heldBytes(sharers[0]!) + heldBytes(sharers[1]!));
    }
    assert.ok(h.swarm.complete, "every piece arrived");
    assert.deepEqual([...h.verified].sort(), [0, 1, 2], "each put together and checked once");
    assert.ok(most <= window, `${most} bytes requested at once, the window is ${window}`);
    for (const s of sharers) assert.ok(s.ranges.every((r) => r.length <= 16384));
  });

  it("asks nothing while its share of the limit is 0, and goes on when it opens", async () => {
    let rate = 0;
    const h = harness(2, { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId) }, [], () => rate);
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    assert.deepEqual(h.sharer("10.0.0.2:1").requests, []);
    rate = 2 ** 20 / WINDOW_SECONDS;
    h.swarm.fillAll();
    await settle();
    assert.ok(h.swarm.complete);
    // 1 MiB for one link: two whole pieces at once
    const whole = (r: { piece: number; offset: number; length: number }) =>
      r.offset === 0 && r.length === pieceLength(h.f.data.length, r.piece);
    assert.ok(h.sharer("10.0.0.2:1").ranges.every(whole));
  });

  it("bans a peer that answers a block with another length, and gets the piece elsewhere", async () => {
    const h = harness(
      1,
      { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }) },
      [],
      () => 20_000 / WINDOW_SECONDS, // a window of 20 kB: two blocks of 8 KiB
    );
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    // blocks of 8 KiB: the first answered with 4
    h.sharer("10.0.0.2:1").serve(0, 4096);
    await settle();
    assert.equal(h.swarm.peerCount, 0, "dropped");
    await h.clock.advance(60_000);
    h.swarm.connect(h.grant);
    await settle();
    assert.equal(h.sharer("10.0.0.2:1").dials, 1, "never dialled again");
    h.table.set("10.0.0.3:1", new MemorySharer(h.f.data, h.f.fileId));
    h.swarm.connect({
      ...h.grant,
      peers: [...h.grant.peers, { userId: "u3", addr: "10.0.0.3:1", key: "k3", complete: true }],
    });
    await settle();
    assert.deepEqual(h.verified, [0]);
  });
});

describe("swarm: a slow sharer", () => {
  it("keeps a link whose piece takes longer than the request timeout while its bytes keep coming", async () => {
    const h = harness(1, { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }) });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    const s = h.sharer("10.0.0.2:1");
    assert.deepEqual(s.requests, [0]);
    // a 512 KiB piece at about 26 kB/s: 20 s (REQUEST_TIMEOUT_MS) pass three times before it is all here
    for (let t = 0; t < 20; t++) {
      s.trickle(0, 26_000);
      await h.clock.advance(1_000);
    }
    assert.equal(h.swarm.peerCount, 1, "still linked after 20 s: its bytes kept coming");
    while (s.held.length > 0) {
      s.trickle(0, 26_000);
      await h.clock.advance(1_000);
    }
    await settle();
    assert.deepEqual(h.verified, [0]);
  });

  it("drops one that sends less than STALL_BYTES of what was asked in a period", async () => {
    const h = harness(1, { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }) });
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    const s = h.sharer("10.0.0.2:1");
    await h.clock.advance(10_000);
    s.trickle(0, STALL_BYTES * 2);
    await h.clock.advance(10_000);
    assert.equal(h.swarm.peerCount, 1, "progress in the first 20 s");
    await h.clock.advance(10_000);
    s.trickle(0, 100); // 100 bytes in the next 20 s: stalled
    await h.clock.advance(10_000);
    assert.equal(h.swarm.peerCount, 0);
  });
});

describe("swarm: links under our own low download limit", () => {
  it("are not dropped as stalled while our limit is what slows them: eight links at 1 kB/s", async () => {
    const f = memoryFile(4);
    const clock = new FakeClock();
    const down = new LimitTree(clock, 1000);
    const up = new LimitTree(clock);
    const table = new Map<string, MemorySharer>();
    for (let i = 2; i < 10; i++) table.set(`10.0.0.${i}:1`, new MemorySharer(f.data, f.fileId));
    const inner = memoryDialer(table);
    const dialer: Dialer = async (t, signal) =>
      new ThrottledStream(
        await inner(t, signal),
        { up: up.root.child(), down: down.root.child() },
        "download",
      );
    const swarm = new Swarm({ clock, dialer }, { ...fileOf(f), rate: () => 1000, owner: quietOwner(f) });
    open.push(swarm);
    swarm.connect({
      ticket: "t",
      peers: [...table.keys()].map((addr, i) => ({ userId: `u${i}`, addr, key: `k${i}`, complete: true })),
    });
    await settle();
    assert.equal(swarm.peerCount, 8);
    // every link's first 4 KiB block is read at once: 32 KiB of debt, 32 s in which none may read
    for (let s = 0; s < 120; s++) await clock.advance(1000);
    assert.equal(swarm.peerCount, 8, "no link dropped");
    assert.ok(
      swarm.links.every((l) => l.bytes >= 8192),
      `each link went on: ${swarm.links.map((l) => l.bytes).join(", ")}`,
    );
  });
});

describe("swarm: a link while our own limit is 0", () => {
  it("is not dropped as stalled once our limit goes to 0, and is checked again when it opens", async () => {
    let rate: number | undefined = 1e6;
    const h = harness(
      2,
      { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId, { holdPieces: true }) },
      [],
      () => rate,
    );
    open.push(h.swarm);
    h.swarm.connect(h.grant);
    await settle();
    rate = 0;
    h.swarm.fillAll();
    for (let s = 0; s < 60; s++) await h.clock.advance(1000);
    assert.equal(h.swarm.peerCount, 1, "kept while nothing may move");
    rate = undefined;
    h.swarm.fillAll();
    await h.clock.advance(20_000);
    assert.equal(h.swarm.peerCount, 0, "a peer that sends nothing once it may is dropped");
  });
});

describe("swarm: a sharer no path reaches", () => {
  it("is told once, with what each path met, however often it is redialled, while the others serve", async () => {
    const h = harness(4, { "10.0.0.2:1": (f) => new MemorySharer(f.data, f.fileId) }, ["10.0.0.8:1"]);
    open.push(h.swarm);
    for (let round = 0; round < 3; round++) {
      h.swarm.connect(h.grant);
      await settle();
      h.clock.advance(60_000); // past any backoff: dialled again
    }
    assert.ok(h.dialled.filter((a) => a === "10.0.0.8:1").length >= 2, h.dialled.join(" "));
    const told = h.refused.filter((r) => r.includes("unreachable"));
    assert.deepEqual(told, [
      "10.0.0.8:1 unreachable no path to u1: direct: timed out; relayed: BUSY the relay is full",
    ]);
  });
});
