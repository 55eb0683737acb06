/**
 * The tracker's parts for members behind routers: the signal hub that client long
 * polls wait in, where one member sends another to dial, the rate of those requests,
 * and the relay's circuits (who may join, what happens to a leg left alone, the caps).
 * Real SQLite stores and real loopback sockets.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { GsError } from "../../src/shared/errors.js";
import { openStore, type Store } from "../../src/tracker/store/index.js";
import { RELAY_PROTOCOL } from "../../src/shared/api.js";
import { reachAddress } from "../../src/tracker/addresses.js";
import { Buckets } from "../../src/tracker/buckets.js";
import { Punches } from "../../src/tracker/punches.js";
import { Bucket, Relay } from "../../src/tracker/relay.js";
import { SignalHub } from "../../src/tracker/signals.js";

describe("where a member is sent to reach another", () => {
  const trackers = [{ no: 1, host: "192.168.1.1", port: 6881 }];
  /** What a member at `from` gets for one seen at `seen` that claimed `claimed` (same port). */
  const reach = (seen: string, claimed: string, from: string) =>
    reachAddress({ peerAddr: `${seen}:6881`, claimedAddr: claimed }, from, trackers);

  it("a member at another IP is sent where the tracker sees the other, whatever it claimed", () => {
    for (const claimed of ["192.168.1.5:6881", "8.8.8.8:53", "0.0.0.0:6881"]) {
      assert.deepEqual(reach("198.51.100.7", claimed, "192.0.2.9"), {
        addr: "198.51.100.7:6881",
        ignored: undefined,
      });
    }
  });

  it("a member behind the same router is sent to a LAN address claimed, and only to one", () => {
    const from = "198.51.100.7";
    for (const lan of ["10.1.2.3", "172.31.0.9", "192.168.1.5", "198.19.4.2", "[fd12:3456::1]"]) {
      assert.deepEqual(reach(from, `${lan}:6881`, from), { addr: `${lan}:6881`, ignored: undefined });
    }
    // the Internet, a carrier's shared space, just outside 172.16/12, IPv6 global: not the claim, and why
    for (const other of ["8.8.8.8:53", "100.64.0.1:6881", "172.32.0.1:6881", "[2001:db8::1]:6881"]) {
      const r = reach(from, other, from);
      assert.equal(r.addr, "198.51.100.7:6881");
      assert.match(r.ignored ?? "", /not a LAN address/);
    }
    // a LAN address where a tracker listens is not handed out either
    const tracker = reach(from, "192.168.1.1:6881", from);
    assert.equal(tracker.addr, "198.51.100.7:6881");
    assert.match(tracker.ignored ?? "", /tracker/);
    // nothing claimed in particular, or the address it is seen at: nothing ignored
    for (const plain of ["0.0.0.0:6881", "[::]:6881", "198.51.100.7:6881"]) {
      assert.deepEqual(reach(from, plain, from), { addr: "198.51.100.7:6881", ignored: undefined });
    }
  });

  it("a member seen at a loopback address is reached only there", () => {
    for (const claimed of ["127.0.0.2:6881", "10.0.0.5:6881", "192.168.1.5:6881"]) {
      const r = reach("127.0.0.1", claimed, "127.0.0.1");
      assert.equal(r.addr, "127.0.0.1:6881");
      assert.match(r.ignored ?? "", /loopback/);
    }
    const v6 = reachAddress({ peerAddr: "[::1]:6881", claimedAddr: "[fd00::1]:6881" }, "::1", trackers);
    assert.equal(v6.addr, "[::1]:6881");
    assert.match(v6.ignored ?? "", /loopback/);
  });
});

describe("reach request rate", () => {
  it("one bucket per member: a burst, then one per interval; another member's is untouched", () => {
    const t0 = 1_000_000;
    const b = new Buckets({ burst: 3, everyMs: 500 }, t0, 10);
    for (let i = 0; i < 3; i++) {
      assert.equal(b.wait(t0, "eve"), 0);
      b.take(t0, "eve");
    }
    assert.equal(b.wait(t0, "eve"), 500);
    assert.equal(b.wait(t0, "ann"), 0);
    assert.equal(b.wait(t0 + 250, "eve"), 250);
    assert.equal(b.wait(t0 + 500, "eve"), 0);
    b.take(t0 + 500, "eve");
    assert.equal(b.wait(t0 + 500, "eve"), 500);
  });

  it("keeps at most maxKeys buckets, dropping full ones first; a new key waits while all are in use", () => {
    const t0 = 1_000_000;
    const b = new Buckets({ burst: 2, everyMs: 1_000 }, t0, 2);
    b.take(t0, "a");
    b.take(t0, "b");
    assert.equal(b.wait(t0, "c"), 1_000);
    // a's and b's refilled: dropped, and c is counted
    assert.equal(b.wait(t0 + 1_000, "c"), 0);
    b.take(t0 + 1_000, "c");
    assert.equal(b.wait(t0 + 1_000, "c"), 0); // one left of its burst
  });
});

describe("hole punches", () => {
  it("one downloader holds at most 4 of a sharer's rendezvous, the others theirs; an answer frees its place", async () => {
    const punches = new Punches();
    const open = (downloader: string) => punches.open(downloader, "bob", `198.18.0.9:4000`, 60_000);
    const eve = Array.from({ length: 4 }, () => open("eve"));
    assert.throws(
      () => open("eve"),
      (e: GsError) => e.code === "RATE_LIMITED",
    );
    const ann = open("ann");
    for (const r of [...eve, ann]) {
      assert.equal(punches.answer(r.id, "bob", "198.18.0.7:5000"), "198.18.0.9:4000");
      assert.equal(await r.met, "198.18.0.7:5000");
    }
    const again = open("eve");
    punches.answer(again.id, "bob", "198.18.0.7:5000");
    await again.met;
  });
});

describe("signal hub", () => {
  let dir: string;
  let store: Store;
  let other: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-hub-"));
    store = await openStore(join(dir, "s.db"));
    other = await openStore(join(dir, "s.db"));
    for (const u of ["ann", "bob", "cat"])
      await store.createUser({ userId: u, passwordHash: "h" }, Date.now());
  });
  after(async () => {
    await store.close();
    await other.close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (s: Store, user: string, payload: string) =>
    s.postSignal(user, payload, Date.now(), Date.now() + 10_000);

  it("a signal posted on this tracker answers the waiting poll at once", async () => {
    const hub = new SignalHub(store, Date.now);
    const began = Date.now();
    const waiting = hub.wait("ann", 0, 20_000, new AbortController().signal);
    await post(store, "ann", "hello");
    hub.posted("ann");
    const got = await waiting;
    assert.deepEqual(
      got.map((s) => s.payload),
      ["hello"],
    );
    assert.ok(Date.now() - began < 5_000);
    hub.close();
  });

  it("a signal another tracker posted reaches the poll through the store", async () => {
    const hub = new SignalHub(store, Date.now);
    const waiting = hub.wait("bob", 0, 20_000, new AbortController().signal);
    await post(other, "bob", "from afar"); // another tracker: no posted() here
    assert.deepEqual(
      (await waiting).map((s) => s.payload),
      ["from afar"],
    );
    hub.close();
  });

  it("a newer poll of the same user ends the older; closing answers every poll, and later ones at once", async () => {
    const hub = new SignalHub(store, Date.now);
    const first = hub.wait("cat", 0, 20_000, new AbortController().signal);
    const second = hub.wait("cat", 0, 20_000, new AbortController().signal);
    assert.deepEqual(await first, []);
    hub.close();
    assert.deepEqual(await second, []);
    assert.deepEqual(await hub.wait("cat", 0, 20_000, new AbortController().signal), []);
  });

  it("an aborted poll (the client went away) stops waiting", async () => {
    const hub = new SignalHub(store, Date.now);
    const gone = new AbortController();
    const waiting = hub.wait("ann", 10_000, 20_000, gone.signal);
    gone.abort();
    assert.deepEqual(await waiting, []);
    hub.close();
  });
});

/** The length of the relay's 101 answer, which each leg hears before the other's bytes. */
const ANSWER = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_PROTOCOL}\r\n\r\n`
  .length;

/** A connected pair of loopback sockets: [the relay's end, the member's end]. */
async function pair(server: Server): Promise<[Socket, Socket]> {
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const port = (server.address() as { port: number }).port;
  const member = connect({ host: "127.0.0.1", port });
  return [await accepted, member];
}

/** Everything `s` receives until `n` bytes or its end. */
function readSome(s: Socket, n: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const done = () => resolve(got);
    s.on("data", (c: Buffer) => {
      got += c.toString("latin1");
      if (got.length >= n) {
        s.off("end", done);
        done();
      }
    });
    s.once("end", done);
  });
}

describe("relay", () => {
  let server: Server;
  before(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  after(() => server.close());

  it("joins the two users' legs after a 101 and carries bytes both ways; a third user is refused", async () => {
    const relay = new Relay();
    const id = relay.open("ann", "bob");
    const [annRelay, ann] = await pair(server);
    const [bobRelay, bob] = await pair(server);
    const [eveRelay, eve] = await pair(server);
    relay.join(id, "eve", eveRelay, Buffer.alloc(0));
    assert.match(await readSome(eve, 12), /^HTTP\/1\.1 404 /);
    relay.join(id, "ann", annRelay, Buffer.from("early "));
    relay.join(id, "bob", bobRelay, Buffer.alloc(0));
    const bobHears = readSome(bob, ANSWER + "early bytes".length);
    const annHears = readSome(ann, ANSWER + "reply".length);
    ann.write("bytes");
    bob.write("reply");
    const heard = await bobHears;
    assert.match(heard, /^HTTP\/1\.1 101 /);
    assert.ok(heard.endsWith("\r\n\r\nearly bytes"), JSON.stringify(heard));
    assert.ok((await annHears).endsWith("reply"));
    assert.equal(relay.stats.circuits, 1);
    ann.destroy();
    bob.destroy();
    relay.close();
  });

  it("a leg whose other member never comes is answered 504 when the pairing time is up", async () => {
    const relay = new Relay({ pairMs: 50 });
    const id = relay.open("ann", "bob");
    const [annRelay, ann] = await pair(server);
    relay.join(id, "ann", annRelay, Buffer.alloc(0));
    assert.match(await readSome(ann, 12), /^HTTP\/1\.1 504 /);
    // and the circuit is gone
    const [late, lateMember] = await pair(server);
    relay.join(id, "bob", late, Buffer.alloc(0));
    assert.match(await readSome(lateMember, 12), /^HTTP\/1\.1 404 /);
    relay.close();
  });

  it("bounds circuits per downloader, per pair, per sharer and in all: one downloader cannot take a sharer's", () => {
    const relay = new Relay({ circuits: { perRequester: 3, perSharer: 4, perPair: 2, total: 7 } });
    const refused = (downloader: string, sharer: string, code: string) =>
      assert.throws(
        () => relay.open(downloader, sharer),
        (e: GsError) => e.code === code,
      );
    // eve asks bob for circuits without end: two, then she is refused, and others get the rest of bob's
    relay.open("eve", "bob");
    relay.open("eve", "bob");
    refused("eve", "bob", "RATE_LIMITED");
    relay.open("ann", "bob");
    relay.open("cat", "bob");
    // bob is full, and eve holds more than her share (4 over 4 downloaders): dan gets one of hers
    relay.open("dan", "bob");
    refused("fox", "bob", "BUSY"); // everyone at their share now: not fox's doing
    relay.open("eve", "fay");
    relay.open("eve", "gus");
    refused("eve", "hal", "RATE_LIMITED"); // eve's own cap, whoever the sharer
    relay.open("hal", "ian");
    refused("jay", "kim", "BUSY"); // the relay is full
    relay.close();
    relay.open("eve", "bob"); // closing freed them
    relay.open("eve", "bob");
    relay.close();
  });

  it("closes a circuit held beyond its fair share for a downloader with fewer: one still waiting for a leg first", async () => {
    const relay = new Relay({ circuits: { perRequester: 8, perSharer: 4, perPair: 4, total: 256 } });
    // four colluding circuits fill bob's; the first two are in use, the last two wait
    const ids = [
      relay.open("eve", "bob"),
      relay.open("eve", "bob"),
      relay.open("eve", "bob"),
      relay.open("eve", "bob"),
    ];
    const legs = [];
    for (const id of ids.slice(0, 2)) {
      const [eveRelay, eve] = await pair(server);
      const [bobRelay, bob] = await pair(server);
      relay.join(id, "eve", eveRelay, Buffer.alloc(0));
      relay.join(id, "bob", bobRelay, Buffer.alloc(0));
      legs.push(eve, bob);
    }
    relay.open("ann", "bob"); // fair: 4 over 2 downloaders; eve had 4
    const [late, member] = await pair(server);
    relay.join(ids[2]!, "eve", late, Buffer.alloc(0));
    assert.match(await readSome(member, 12), /^HTTP\/1\.1 404 /, "eve's first circuit still waiting went");
    relay.open("ann", "bob");
    assert.throws(
      () => relay.open("ann", "bob"),
      (e: GsError) => e.code === "BUSY",
      "ann at her share, eve at hers: nothing more to take",
    );
    for (const l of legs) l.destroy();
    relay.close();
  });

  it("never cuts a transfer under way for it: only a circuit idle for 5 s may go", async () => {
    let now = 1_000_000;
    const relay = new Relay(
      { circuits: { perRequester: 8, perSharer: 2, perPair: 2, total: 256 } },
      () => now,
    );
    const relaySide = [];
    const members = [];
    for (let i = 0; i < 2; i++) {
      const id = relay.open("eve", "bob");
      const [eveRelay, eve] = await pair(server);
      const [bobRelay, bob] = await pair(server);
      relay.join(id, "eve", eveRelay, Buffer.alloc(0));
      relay.join(id, "bob", bobRelay, Buffer.alloc(0));
      relaySide.push(eveRelay, bobRelay);
      members.push(eve, bob);
    }
    assert.throws(
      () => relay.open("ann", "bob"),
      (e: GsError) => e.code === "BUSY",
      "eve's two have just carried: ann waits",
    );
    assert.equal(relaySide.filter((s) => s.destroyed).length, 0);
    now += 5_000;
    relay.open("ann", "bob"); // idle for 5 s now: one of eve's goes
    assert.equal(relaySide.filter((s) => s.destroyed).length, 2, "one circuit's two legs closed");
    for (const m of members) m.destroy();
    relay.close();
  });

  it("a bucket lets a quarter second's burst through, then asks for the debt's time at its rate", () => {
    let now = 1_000;
    const b = new Bucket(1_000_000, now);
    assert.equal(b.take(250_000, now), 0);
    assert.equal(b.take(100_000, now), 100); // 100 kB in debt at 1 MB/s
    now += 100;
    assert.equal(b.take(0, now), 0); // paid off
    now += 10_000;
    assert.equal(b.take(300_000, now), 50); // refilled to the burst only
  });

  it("slows a circuit to its users' rate, each byte counting for sender and receiver", async () => {
    // 1 MB/s a user (and 250 kB of burst): 1.5 MB from ann to bob take at least 1.2 s,
    // less the last batch charged (ann's bucket and bob's each take every byte)
    const relay = new Relay({ userRate: 1_000_000 });
    const id = relay.open("ann", "bob");
    const [annRelay, ann] = await pair(server);
    const [bobRelay, bob] = await pair(server);
    relay.join(id, "ann", annRelay, Buffer.alloc(0));
    relay.join(id, "bob", bobRelay, Buffer.alloc(0));
    const total = 1_500_000;
    const bobHears = readSome(bob, ANSWER + total);
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += 50_000) {
      ann.write(Buffer.alloc(50_000, 1));
      await new Promise((r) => setTimeout(r, 5));
    }
    const heard = await bobHears;
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(heard.length, ANSWER + total);
    assert.ok(seconds >= 0.8, `${seconds} s`);
    assert.ok(seconds < 10, `${seconds} s`);
    ann.destroy();
    bob.destroy();
    relay.close();
  });

  it("pauses the sender while its receiver does not read, holding little, and delivers all later", async () => {
    const relay = new Relay({ userRate: 1e12, totalRate: 1e12 }); // only the receiver holds it back
    const id = relay.open("ann", "bob");
    const [annRelay, ann] = await pair(server);
    const [bobRelay, bob] = await pair(server);
    relay.join(id, "ann", annRelay, Buffer.alloc(0));
    relay.join(id, "bob", bobRelay, Buffer.alloc(0));
    bob.pause();
    const total = 32 * 2 ** 20; // more than the kernel buffers on both sides hold
    ann.write(Buffer.alloc(total, 2));
    // wait until the relay stops reading ann
    for (let i = 0; i < 200 && !annRelay.isPaused(); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(annRelay.isPaused());
    // paused for the full queue (not a bucket), which holds about one batch past its bound
    assert.ok(bobRelay.writableLength > 0);
    assert.ok(bobRelay.writableLength <= 2 * 64 * 1024, `${bobRelay.writableLength} queued`);
    let heard = 0;
    const bobHeard = new Promise<void>((resolve) =>
      bob.on("data", (c: Buffer) => {
        heard += c.length;
        if (heard >= ANSWER + total) resolve();
      }),
    );
    bob.resume();
    await bobHeard;
    assert.equal(heard, ANSWER + total);
    ann.destroy();
    bob.destroy();
    relay.close();
  });

  it("closes a circuit that carries nothing for the idle time, not one that carries", async () => {
    const relay = new Relay({ idleMs: 150 });
    const open = async () => {
      const id = relay.open("ann", "bob");
      const [annRelay, ann] = await pair(server);
      const [bobRelay, bob] = await pair(server);
      relay.join(id, "ann", annRelay, Buffer.alloc(0));
      relay.join(id, "bob", bobRelay, Buffer.alloc(0));
      const closed = new Promise<number>((resolve) => bob.once("close", () => resolve(performance.now())));
      bob.resume();
      return { ann, bob, closed };
    };
    const busy = await open();
    const quiet = await open();
    const t0 = performance.now();
    // the busy circuit carries a byte every 50 ms for 450 ms
    for (let i = 0; i < 9; i++) {
      busy.ann.write("x");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!busy.bob.destroyed && busy.bob.readyState === "open");
    const quietAt = (await quiet.closed) - t0;
    assert.ok(quietAt >= 100 && quietAt < 400, `${quietAt} ms`);
    const busyAt = (await busy.closed) - t0;
    assert.ok(busyAt >= 450, `${busyAt} ms`);
    busy.ann.destroy();
    quiet.ann.destroy();
    relay.close();
  });
});
