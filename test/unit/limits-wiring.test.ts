import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GsError } from "../../src/shared/errors.js";
import { MAX_SETTINGS, SpeedLimits } from "../../src/client/limits/limits.js";
import { FREE_READ_START } from "../../src/client/limits/throttle.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";
import { duplexPair } from "../helpers/memoryPeers.js";

/** A throttled link over an in-memory pair: what arrives through it, and the far end to send from. */
function linkOf(limits: SpeedLimits, file?: { groupId: string; name: string }) {
  const [mine, far] = duplexPair();
  const link = limits.link(mine, file);
  const got: Buffer[] = [];
  link.on("data", (c: Buffer) => got.push(c));
  return { link, far, received: () => Buffer.concat(got).length };
}

const KB = Buffer.alloc(1000, 1);

describe("SpeedLimits: where each link hangs", () => {
  it("a download's link is charged to the client in both directions", async () => {
    const limits = new SpeedLimits(new FakeClock());
    const { link, far, received } = linkOf(limits, { groupId: "g", name: "a" });
    far.write(KB);
    link.write(Buffer.alloc(300));
    await settle();
    assert.equal(received(), 1000);
    assert.equal(limits.down.root.bytes, 1000);
    assert.equal(limits.up.root.bytes, 300);
  });

  it("a paused download's links move nothing until it is resumed; another download goes on", async () => {
    const limits = new SpeedLimits(new FakeClock());
    const a = linkOf(limits, { groupId: "g", name: "a" });
    const b = linkOf(limits, { groupId: "g", name: "b" });
    limits.setPaused({ groupId: "g", name: "a" }, true);
    a.far.write(KB);
    b.far.write(KB);
    await settle();
    assert.equal(a.received(), 0);
    assert.equal(b.received(), 1000);
    limits.setPaused({ groupId: "g", name: "a" }, false);
    await settle();
    assert.equal(a.received(), 1000);
  });

  it("a served link is unplaced until its group is known, then under the group's limit", async () => {
    const limits = new SpeedLimits(new FakeClock());
    limits.set("up", 0, "g");
    const served = linkOf(limits);
    let sent = 0;
    served.far.on("data", (c: Buffer) => {
      sent += c.length;
    });
    const tls = {}; // what the peer server is handed: the TLS over the link
    limits.bind(tls, served.link);
    served.link.write(KB);
    await settle();
    assert.equal(sent, 1000, "not yet in g: g's pause does not hold it");
    limits.placeServed(tls, "g");
    served.link.write(KB);
    served.link.write(KB);
    await settle();
    assert.equal(sent, 1000, "in g now: paused");
    limits.set("up", undefined, "g");
    await settle();
    assert.equal(sent, 3000);
  });

  it("holds back a served link's pieces, not the requests it reads, nor a download's requests", async () => {
    const limits = new SpeedLimits(new FakeClock(), { up: 0, down: 0 });
    const served = linkOf(limits);
    const fetching = linkOf(limits, { groupId: "g", name: "a" });
    let requested = 0;
    fetching.far.on("data", (c: Buffer) => {
      requested += c.length;
    });
    served.far.write(KB);
    fetching.link.write(KB);
    await settle();
    assert.equal(served.received(), 1000, "the peer's requests are read");
    assert.equal(requested, 1000, "the download's requests go out");
    assert.equal(limits.down.root.bytes, 1000, "and each is counted");
    assert.equal(limits.up.root.bytes, 1000);
  });

  it("an accepted link that a download was waiting for goes under that download", async () => {
    const limits = new SpeedLimits(new FakeClock());
    const file = { groupId: "g", name: "a" };
    limits.set("down", 0, "g", "a");
    const back = linkOf(limits);
    limits.bind(back.link, back.link);
    limits.placeDownload(back.link, file);
    back.far.write(KB);
    await settle();
    assert.equal(back.received(), 0);
    limits.forget(file);
    await settle();
    assert.equal(back.received(), 1000);
  });

  it("a client-wide limit changed at run time holds every link to it (fake clock)", async () => {
    const clock = new FakeClock();
    const limits = new SpeedLimits(clock, { down: 0 });
    const links = [linkOf(limits, { groupId: "g", name: "a" }), linkOf(limits, { groupId: "h", name: "b" })];
    for (const l of links) for (let i = 0; i < 50; i++) l.far.write(KB);
    await settle();
    assert.equal(limits.down.root.bytes, 0);
    limits.set("down", 10_000);
    // 10 kB/s for 5 s, its burst (a quarter of a second's worth) and one read past it
    for (let t = 0; t < 50; t++) {
      await clock.advance(100);
    }
    const moved = limits.down.root.bytes;
    assert.ok(moved >= 45_000 && moved <= 50_000 + 2_500 + 1_000, `${moved} bytes in 5 s at 10 kB/s`);
    assert.ok(
      links.every((l) => l.received() > 0),
      "both links had turns",
    );
  });

  it("nodes last as long as a link or a setting needs them", async () => {
    const limits = new SpeedLimits(new FakeClock());
    const a = linkOf(limits, { groupId: "g", name: "a" });
    const s = linkOf(limits);
    limits.placeServed(s.link, "h");
    assert.ok(limits.nodes > 0);
    limits.set("down", 1000, "g", "a");
    a.link.destroy();
    s.link.destroy();
    await settle();
    assert.ok(a.link.closed && s.link.closed);
    assert.equal(limits.nodes, 2, "download a's own limit keeps its node and g's, in the download tree");
    limits.set("down", undefined, "g", "a");
    assert.equal(limits.nodes, 0);
    assert.deepEqual(limits.settings(), { up: undefined, down: undefined, groups: [], downloads: [] });
  });

  it("refuses an upload limit on a download, and settings beyond MAX_SETTINGS", () => {
    const limits = new SpeedLimits(new FakeClock());
    assert.throws(
      () => limits.set("up", 1000, "g", "a"),
      (e: GsError) => e.code === "BAD_REQUEST",
    );
    for (let i = 0; i < MAX_SETTINGS; i++) limits.set("up", 1000, `g${i}`);
    assert.throws(
      () => limits.set("down", 1000, "one-more"),
      (e: GsError) => e.code === "BAD_REQUEST",
    );
    limits.set("up", 2000, "g0"); // changing one that is set is no new setting
    limits.set("up", undefined, "g1");
    limits.set("down", 1000, "one-more");
    assert.equal(limits.settings().groups.length, MAX_SETTINGS);
  });
});

describe("SpeedLimits: a download's share of the limits above it", () => {
  const a = { groupId: "g", name: "a" };
  const b = { groupId: "g", name: "b" };
  const c = { groupId: "h", name: "c" };

  it("is its share of the tightest download limit above it, among the downloads with links", async () => {
    let told = 0;
    const limits = new SpeedLimits(new FakeClock(), {}, () => told++);
    assert.equal(limits.share(a), undefined, "no limit: no share");
    limits.set("down", 4e6);
    await settle();
    assert.equal(told, 1, "a change is told");
    assert.equal(limits.share(a), 4e6, "alone under the client's limit");
    const links = [linkOf(limits, a), linkOf(limits, a), linkOf(limits, b), linkOf(limits, c)];
    await settle();
    assert.equal(limits.share(a), 4e6 / 3, "three downloads share it, however many links each has");
    limits.set("down", 1e6, "g");
    assert.equal(limits.share(a), 1e6 / 2, "the group's limit is tighter, shared by a and b");
    assert.equal(limits.share(c), 4e6 / 3);
    limits.set("down", 1e5, "g", "a");
    assert.equal(limits.share(a), 1e5, "its own limit is tighter still");
    limits.setPaused(a, true);
    assert.equal(limits.share(a), 0, "paused: nothing");
    for (const l of links.slice(2)) l.link.destroy();
    await settle();
    assert.equal(limits.share(c), 4e6, "b and c left: a alone shares the client's limit");
    assert.ok(told >= 4, "each change was told");
  });
});

describe("SpeedLimits: a login's saved limits", () => {
  it("restores what settings() gave, a limit given at start winning; reset goes back to the start's", () => {
    const limits = new SpeedLimits(new FakeClock(), { up: 5e6 });
    const saved = {
      up: 1e6,
      down: 3e6,
      groups: [{ groupId: "g", up: 2e6 }],
      downloads: [{ groupId: "g", name: "a", down: 1e5 }],
    };
    limits.restore(saved);
    assert.deepEqual(limits.settings(), {
      up: 5e6,
      down: 3e6,
      groups: [{ groupId: "g", up: 2e6, down: undefined }],
      downloads: [{ groupId: "g", name: "a", down: 1e5 }],
    });
    limits.restore(JSON.parse(JSON.stringify(limits.toSave())));
    assert.deepEqual(
      limits.settings().groups,
      [{ groupId: "g", up: 2e6, down: undefined }],
      "through JSON too",
    );
    limits.reset();
    assert.deepEqual(limits.settings(), { up: 5e6, down: undefined, groups: [], downloads: [] });
  });

  it("saves a client-wide limit set since the start, never one only given at start", () => {
    const limits = new SpeedLimits(new FakeClock(), { up: 5e6 });
    assert.equal(limits.toSave().up, undefined, "--max-up is that run's");
    limits.set("down", 3e6);
    assert.equal(limits.toSave().down, 3e6);
    limits.set("up", 1e6);
    assert.equal(limits.toSave().up, 1e6, "set by the user: the login's");
    limits.reset();
    assert.deepEqual(limits.toSave(), { up: undefined, down: undefined, groups: [], downloads: [] });
    limits.restore({ up: 1e6, down: 3e6 });
    assert.deepEqual(
      [limits.toSave().up, limits.toSave().down],
      [undefined, 3e6],
      "the flag still wins for up",
    );
  });

  it("skips what is not a limit in a hand-edited file", () => {
    const limits = new SpeedLimits(new FakeClock());
    limits.restore({
      up: -1,
      down: "fast",
      groups: [
        { groupId: 7, up: 1 },
        null,
        { groupId: "g", down: Number.MAX_VALUE },
        { groupId: "h", down: 0 },
      ],
      downloads: [{ groupId: "g", down: 5 }],
    });
    assert.deepEqual(limits.settings(), {
      up: undefined,
      down: undefined,
      groups: [{ groupId: "h", up: undefined, down: 0 }],
      downloads: [],
    });
    limits.restore("not an object");
    assert.equal(limits.settings().groups.length, 0);
    // more than a client keeps: the first MAX_SETTINGS, and the login goes on
    const many = Array.from({ length: MAX_SETTINGS }, (_, i) => ({ groupId: `g${i}`, up: 1000, down: 1000 }));
    limits.restore({ groups: many });
    const kept = limits.settings().groups;
    assert.equal(
      kept.filter((g) => g.up !== undefined).length + kept.filter((g) => g.down !== undefined).length,
      MAX_SETTINGS,
    );
  });
});

describe("SpeedLimits: what a served link reads without waiting", () => {
  it("a peer flooding a served link is held once past its allowance: our downloads under the limit go on", async () => {
    const clock = new FakeClock();
    const limits = new SpeedLimits(clock, { down: 100_000 });
    // an accepted connection, not yet placed (served), its far end the attacker's
    const flood = linkOf(limits);
    const fetching = linkOf(limits, { groupId: "g", name: "a" });
    // 10 MB of keep-alives, as fast as the line takes them, 64 KiB a socket read
    for (let i = 0; i < 160; i++) flood.far.write(Buffer.alloc(65_536));
    await settle();
    assert.ok(
      flood.received() <= FREE_READ_START + 2 * 65_536,
      `${flood.received()} bytes read from the flood before it waited with everyone else`,
    );
    fetching.far.write(Buffer.alloc(16 * 1024));
    fetching.far.write(Buffer.alloc(16 * 1024));
    await clock.advance(10_000);
    assert.equal(fetching.received(), 32 * 1024, "the download got its two blocks within 10 s at 100 kB/s");
    flood.link.destroy();
    fetching.link.destroy();
  });

  it("a served peer's few bytes a second (HAVEs) are read under a download limit of 0, however little we serve it", async () => {
    const clock = new FakeClock();
    const limits = new SpeedLimits(clock, { down: 0 });
    const served = linkOf(limits);
    // a partial sharer's HAVE (9 bytes, 31 with TLS's) for each of 100 pieces a second, for a minute
    for (let s = 0; s < 60; s++) {
      served.far.write(Buffer.alloc(100 * 31));
      await clock.advance(1000);
    }
    await settle();
    assert.equal(served.received(), 60 * 100 * 31);
    // far more than that is past its allowance (64 KiB at most): held, and read as it comes back
    for (let i = 0; i < 3; i++) served.far.write(Buffer.alloc(64 * 1024));
    await settle();
    const base = 60 * 100 * 31;
    assert.ok(served.received() < base + 3 * 64 * 1024, `not all at once: ${served.received() - base}`);
    await clock.advance(60_000);
    assert.equal(served.received(), base + 3 * 64 * 1024, "all of it in time");
  });

  it("a downloader's requests are read at once however busy the download limit is", async () => {
    const clock = new FakeClock();
    const limits = new SpeedLimits(clock, { down: 10_000 });
    const served = linkOf(limits);
    const fetching = linkOf(limits, { groupId: "g", name: "a" });
    fetching.far.write(Buffer.alloc(64 * 1024)); // the download puts the limit in debt for seconds
    await settle();
    // forty requests of 40 bytes, while we serve what they ask for
    for (let i = 0; i < 40; i++) {
      served.link.write(Buffer.alloc(4096));
      served.far.write(Buffer.alloc(40));
    }
    await settle();
    assert.equal(served.received(), 1600);
  });
});
