/**
 * How the downloads' dialer picks a path to a sharer (reach/reachingDialer): the
 * order, the head starts, what ends a dial, and what a failure says. The TLS dial and
 * the tracker's help are stand-ins that record what was asked of them; time is a fake
 * clock, so the head starts are the real ones and no test waits them out. And how a
 * sharer shares its answers to signals among the downloaders asking.
 */
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import type { TLSSocket } from "node:tls";
import { describe, it } from "node:test";
import type { DialTarget } from "../../src/client/peers/dialer.js";
import { IMPOSTOR } from "../../src/client/peers/dialPeer.js";
import { newPeerIdentity, type PeerIdentity } from "../../src/client/peerIdentity.js";
import { PATH_TIMING, type PathHelp, reachingDialer } from "../../src/client/reach/reachingDialer.js";
import { Reversals } from "../../src/client/peers/reversals.js";
import {
  type SignalDeps,
  SignalListener,
  type SignalWarning,
} from "../../src/client/reach/signalListener.js";
import type { PeerServer } from "../../src/client/serving/peerServer.js";
import type { ShareRegistry } from "../../src/client/serving/shares.js";
import type { Signal } from "../../src/shared/api.js";
import { TEST_PEER } from "../helpers/tls.js";
import { RELAYED_FRAGMENT } from "../../src/shared/tlsPolicy.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";

const TIMING = PATH_TIMING;

const target: DialTarget = {
  addr: "198.18.0.9:6881",
  host: "198.18.0.9",
  port: 6881,
  userId: "bob",
  key: "bobkey",
  file: { groupId: "g", name: "f.bin" },
};

type Outcome = "hang" | "refused" | "impostor" | "ok";

/** A dialer whose direct dial does `direct`, and whose help does what `help` says; `log` records each step. */
function harness(direct: Outcome, help: { reverse?: Outcome; punch?: Outcome; relay?: Outcome } = {}) {
  const log: string[] = [];
  const clock = new FakeClock();
  const reversals = new Reversals(clock);
  // what a relayed link sets on its TLS socket is recorded
  const stream = () =>
    Object.assign(new PassThrough(), {
      setMaxSendFragment: (n: number) => log.push(`fragment ${n}`) > 0,
    }) as unknown as TLSSocket;
  const outcome = (o: Outcome | undefined, what: string, signal: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (o === "ok") return resolve();
      if (o === "refused" || o === undefined)
        return reject(Object.assign(new Error(`${what} refused`), { code: "ECONNREFUSED" }));
      if (o === "impostor") return reject(Object.assign(new Error("impostor"), { code: IMPOSTOR }));
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  const pathHelp: PathHelp = {
    reverse: async () => {
      log.push("reverse asked");
      if (help.reverse === "ok") {
        // the sharer dials back: our peer server hands its connection to the waiting dial
        setImmediate(() => reversals.take(target.key)?.(stream()));
      } else if (help.reverse !== "hang") throw new Error("NOT_SHARING");
    },
    punch: async () => {
      log.push("punch asked");
      throw new Error("punch refused");
    },
    relay: async () => {
      log.push("relay asked");
      if (help.relay !== "ok") throw new Error("BUSY the relay is full");
      return { relay: "198.18.0.1:7000", circuit: "c".repeat(32) };
    },
    openRelay: async () => {
      log.push("relay leg");
      return new PassThrough();
    },
  };
  const dialer = reachingDialer({
    identity: async () => ({}) as PeerIdentity,
    reversals,
    help: pathHelp,
    timing: TIMING,
    clock,
    dial: async (_t, _id, signal, opts = {}) => {
      const kind = opts.transport ? "tls over a leg" : "direct dial";
      log.push(kind);
      await outcome(opts.transport ? "ok" : direct, kind, signal);
      return stream();
    },
  });
  return { dialer, log, clock };
}

/** `p` settled or not, without waiting for it (after the fake clock's advance has let it run). */
function state<T>(p: Promise<T>): { settled: boolean } {
  const seen = { settled: false };
  p.then(
    () => (seen.settled = true),
    () => (seen.settled = true),
  );
  return seen;
}

describe("reaching a sharer", () => {
  it("a sharer that answers directly is dialled, and the tracker is asked for nothing", async () => {
    const { dialer, log } = harness("ok");
    const s = await dialer(target, new AbortController().signal);
    assert.equal(s.path, "direct");
    assert.deepEqual(log, ["direct dial"]);
  });

  it("a direct dial that hangs: the sharer is asked to dial back after its head start, and that wins", async () => {
    const { dialer, log, clock } = harness("hang", { reverse: "ok" });
    const dialing = dialer(target, new AbortController().signal);
    await clock.advance(TIMING.reverseAfterMs - 1);
    assert.deepEqual(log, ["direct dial"], "asked before the head start");
    await clock.advance(1);
    const s = await dialing;
    assert.equal(s.path, "reversed");
    assert.deepEqual(log, ["direct dial", "reverse asked"]);
    assert.equal(clock.pending, 0, "the other paths' timers and the direct timeout are cancelled");
  });

  it("each path waits for its head start while the ones before hang: punch, then relay", async () => {
    const { dialer, log, clock } = harness("hang", { reverse: "hang", relay: "ok" });
    const dialing = state(dialer(target, new AbortController().signal));
    await clock.advance(TIMING.reverseAfterMs);
    assert.deepEqual(log, ["direct dial", "reverse asked"]);
    await clock.advance(TIMING.punchAfterMs - TIMING.reverseAfterMs);
    assert.deepEqual(log, ["direct dial", "reverse asked", "punch asked"]);
    // the punch failed at once, but the reversal still hangs: the relay keeps its head start
    await clock.advance(TIMING.relayAfterMs - TIMING.punchAfterMs - 1);
    assert.equal(log.includes("relay asked"), false, "relay asked before its head start");
    assert.equal(dialing.settled, false);
    await clock.advance(1);
    assert.equal(log[3], "relay asked");
    assert.equal(dialing.settled, true);
  });

  it("a refused direct dial does not wait for the head start: each path starts when the last has failed", async () => {
    const { dialer, log, clock } = harness("refused", { relay: "ok" });
    const s = await dialer(target, new AbortController().signal);
    assert.equal(s.path, "relayed");
    assert.deepEqual(log, [
      "direct dial",
      "reverse asked",
      "punch asked",
      "relay asked",
      "relay leg",
      "tls over a leg",
      `fragment ${RELAYED_FRAGMENT}`,
    ]);
    assert.equal(clock.pending, 0, "no head start left waiting");
  });

  it("a sharer the tracker marks as behind a router gets each path a head start sooner", async () => {
    const { dialer, log, clock } = harness("hang", { reverse: "hang", relay: "ok" });
    const dialing = state(dialer({ ...target, nat: true }, new AbortController().signal));
    await settle();
    assert.deepEqual(log, ["direct dial", "reverse asked"], "the reversal is asked at once");
    await clock.advance(TIMING.punchAfterMs - TIMING.natHeadStartMs - 1);
    assert.equal(log.length, 2);
    await clock.advance(1);
    assert.equal(log[2], "punch asked");
    await clock.advance(TIMING.relayAfterMs - TIMING.punchAfterMs);
    assert.equal(log[3], "relay asked");
    assert.equal(dialing.settled, true);
  });

  it("a direct dial that never answers has failed after directTimeoutMs", async () => {
    const { dialer, clock } = harness("hang", { reverse: "hang" });
    const dialing = dialer({ ...target, file: undefined }, new AbortController().signal);
    const seen = state(dialing);
    await clock.advance(TIMING.directTimeoutMs - 1);
    assert.equal(seen.settled, false, "gave up before the timeout");
    await clock.advance(1);
    await assert.rejects(dialing, /timed out/);
  });

  it("an impostor at the address ends the dial: nothing is asked of the tracker", async () => {
    const { dialer, log } = harness("impostor");
    await assert.rejects(dialer(target, new AbortController().signal), { code: IMPOSTOR });
    assert.deepEqual(log, ["direct dial"]);
  });

  it("when no path works, the error says what each one met", async () => {
    const { dialer } = harness("refused");
    await assert.rejects(dialer(target, new AbortController().signal), (err: Error) => {
      assert.match(
        err.message,
        /^no path to bob: direct: ECONNREFUSED; reversed: NOT_SHARING; punched: punch refused; relayed: BUSY/,
      );
      return true;
    });
  });

  it("what worked last time starts at once on the next dial", async () => {
    const { dialer, log } = harness("refused", { relay: "ok" });
    assert.equal((await dialer(target, new AbortController().signal)).path, "relayed");
    log.length = 0;
    assert.equal((await dialer(target, new AbortController().signal)).path, "relayed");
    assert.equal(log[0], "direct dial");
    assert.equal(log[1], "relay asked");
  });

  it("an aborted dial stops every path", async () => {
    const { dialer, clock } = harness("hang", { reverse: "hang" });
    const stop = new AbortController();
    const dialing = dialer(target, stop.signal);
    await clock.advance(TIMING.reverseAfterMs);
    stop.abort(new Error("link closed"));
    await assert.rejects(dialing, /link closed/);
    await settle();
    assert.equal(clock.pending, 0, "a timer outlived the dial");
  });
});

describe("reversals", () => {
  it("hands a dialled-back connection to the dial waiting for that key, and refuses other keys", async () => {
    const r = new Reversals(new FakeClock());
    const waiting = r.expect("k1", 5_000, new AbortController().signal);
    assert.equal(r.take("k2"), undefined);
    const socket = new PassThrough() as unknown as TLSSocket;
    r.take("k1")!(socket);
    assert.equal(await waiting, socket);
    assert.equal(r.take("k1"), undefined, "taken once");
  });

  it("a reversal not dialled back in time fails, and is no longer waited for", async () => {
    const clock = new FakeClock();
    const r = new Reversals(clock);
    const waiting = r.expect("k1", TIMING.reverseWaitMs, new AbortController().signal);
    const seen = state(waiting);
    await clock.advance(TIMING.reverseWaitMs - 1);
    assert.equal(seen.settled, false, "gave up before its time");
    assert.ok(r.take("k1"), "still waited for");
    await clock.advance(1);
    await assert.rejects(waiting, /not dialled back within 5 s/);
    assert.equal(r.take("k1"), undefined);
  });
});

/** A loopback TCP listener that accepts and never answers (a TLS dial to it hangs); counts connections. */
async function silentListener() {
  const sockets: Socket[] = [];
  let onConnection = () => {};
  const server = createServer((s) => {
    sockets.push(s);
    onConnection();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    addr: `127.0.0.1:${(server.address() as { port: number }).port}`,
    count: () => sockets.length,
    first: new Promise<void>((resolve) => {
      onConnection = resolve;
    }),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("answering signals", () => {
  it("one downloader's reversals take at most 4 of the sharer's slots: another's is still dialled", async () => {
    const hog = await silentListener();
    const other = await silentListener();
    const reverse = (seq: number, key: string, addr: string): Signal => ({
      seq,
      kind: "reverse",
      groupId: "g",
      fileId: "f".repeat(40),
      key,
      addr,
    });
    const hogKey = newPeerIdentity().publicKey;
    const signals = [
      ...Array.from({ length: 8 }, (_, i) => reverse(i + 1, hogKey, hog.addr)),
      reverse(9, TEST_PEER.publicKey, other.addr),
    ];
    let polls = 0;
    // each dial answered ends, after the dial-back timeout, with a line of its own
    const ended: SignalWarning[] = [];
    let allEnded = () => {};
    const fiveEnded = new Promise<void>((resolve) => {
      allEnded = resolve;
    });
    const deps: SignalDeps = {
      tracker: {
        // the signals once, then a poll that waits until the listener stops
        call: (async (_route: string, _query: unknown, opts?: { signal?: AbortSignal }) => {
          if (polls++ === 0) return { signals };
          return new Promise((_, reject) =>
            opts?.signal?.addEventListener("abort", () => reject(opts.signal?.reason), { once: true }),
          );
        }) as SignalDeps["tracker"]["call"],
        openRelay: () => Promise.reject(new Error("no relay here")),
        callFresh: () => Promise.reject(new Error("no punch here")),
        localAddress: undefined,
      },
      shares: { get: () => ({}) } as unknown as ShareRegistry,
      peerServer: {} as PeerServer,
      identity: async () => TEST_PEER,
      warn: (line) => {
        if (ended.push(line) === 5) allEnded();
      },
    };
    const listener = new SignalListener(deps);
    try {
      await other.first;
      // the five answered (four of the hog's, the other's) have timed out: any further dial
      // would have been made with them, at once
      await fiveEnded;
      assert.equal(hog.count(), 4, JSON.stringify(ended));
      assert.equal(other.count(), 1);
    } finally {
      listener.stop();
      await hog.close();
      await other.close();
    }
  });
});
