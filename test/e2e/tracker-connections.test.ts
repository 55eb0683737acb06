/**
 * Idle connections against a real tracker process: raw TCP sockets that never start
 * TLS, and TLS sockets that never send a request, from a few addresses of 127.0.0.0/8.
 * They are closed within the handshake timeout, those past the per-address cap at
 * once, and while they fill every slot a client from another address still signs up,
 * and a relay circuit and a signal poll opened before go on.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { RELAY_PATH, RELAY_PROTOCOL } from "../../src/shared/api.js";
import { DEFAULT_CONNECTION_LIMITS } from "../../src/tracker/connections.js";
import { Cluster, WAIT_MS } from "../helpers/procs.js";
import { TLS_VERSION } from "../../src/shared/tlsPolicy.js";
import { trackerAgent, trackerCall } from "../helpers/tls.js";
import { type Api, api } from "./tracker.helpers.js";

/**
 * Connections an attacker opens and never uses. `held` are those the tracker has not
 * closed; `untilClosed` waits (bounded) until so many of them are closed.
 */
class Flood {
  readonly sockets: Socket[] = [];
  closed = 0;
  readonly #waiters = new Set<() => void>();

  constructor(readonly port: number) {}

  get held(): number {
    return this.sockets.length - this.closed;
  }

  /** `n` raw TCP connections from `from`; resolves when each is connected or already closed. */
  open(from: string, n: number, tls = false): Promise<Socket[]> {
    return Promise.all(
      Array.from({ length: n }, () => {
        const tcp = connect({ host: "127.0.0.1", port: this.port, localAddress: from });
        const s = tls ? tlsConnect({ socket: tcp, rejectUnauthorized: false, ...TLS_VERSION }) : tcp;
        this.sockets.push(s);
        s.on("error", () => {});
        s.once("close", () => {
          this.closed++;
          for (const w of [...this.#waiters]) w();
        });
        return new Promise<Socket>((resolve) => {
          s.once(tls ? "secureConnect" : "connect", () => resolve(s));
          s.once("close", () => resolve(s));
        });
      }),
    );
  }

  untilClosed(count: number, timeoutMs = WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.closed < count) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(`${this.closed} of ${this.sockets.length} closed, not ${count}, within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }
}

describe("the tracker closes connections that never send a request", () => {
  const PER_ADDRESS = 100;
  let c: Cluster;
  const floods: Flood[] = [];
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1, ["--max-connections-per-address", String(PER_ADDRESS)]);
  });
  after(async () => {
    for (const f of floods) f.destroy();
    await c.close();
  });

  it("closes 800 sockets that never start TLS within the handshake timeout, and refuses those past the per-address cap at once", async () => {
    const port = c.ports[0]!;
    const capped = new Flood(port);
    const excess = new Flood(port);
    floods.push(capped, excess);
    const addrs = Array.from({ length: 8 }, (_, i) => `127.0.9.${i + 1}`);
    const t0 = performance.now();
    for (const a of addrs) await capped.open(a, PER_ADDRESS);
    // every address is at its cap: 25 more from each are closed at once, the first ones kept
    for (const a of addrs) await excess.open(a, 25);
    await excess.untilClosed(excess.sockets.length);
    assert.equal(capped.closed, 0, "the sockets under the cap are kept until their handshake time is up");
    // node's own bound was 120 s: the wait fails on a tracker that does not bound the handshake
    await capped.untilClosed(capped.sockets.length, 3 * DEFAULT_CONNECTION_LIMITS.handshakeMs);
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(
      seconds >= DEFAULT_CONNECTION_LIMITS.handshakeMs / 1000,
      `closed after ${seconds.toFixed(1)} s: before their handshake time was up`,
    );
  });

  it("closes TLS connections that send no request within the same time", async () => {
    const idle = new Flood(c.ports[0]!);
    floods.push(idle);
    const up = await idle.open("127.0.9.20", 20, true);
    assert.equal(idle.closed, 0, "the handshakes completed");
    assert.equal(up.length, 20);
    await idle.untilClosed(20, 3 * DEFAULT_CONNECTION_LIMITS.handshakeMs);
    // the address's connections are gone with them: it is served again
    const r = await trackerCall(c.ports[0]!, {
      method: "GET",
      path: "/v1/health",
      localAddress: "127.0.9.20",
    });
    assert.equal(r.status, 200, r.text);
  });
});

/** One leg of relay circuit `circuit` as `token`'s user, from `from`; resolves once the circuit is paired. */
function relayLeg(port: number, circuit: string, token: string, from: string): Promise<Duplex> {
  const agent = trackerAgent(port, { localAddress: from, maxSockets: 1 });
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path: `${RELAY_PATH}/${circuit}`,
      agent,
      headers: { connection: "Upgrade", upgrade: RELAY_PROTOCOL, authorization: `Bearer ${token}` },
    });
    req.setTimeout(WAIT_MS, () => req.destroy(new Error("relay leg: no answer")));
    req.on("upgrade", (_res, socket, head) => {
      req.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on("response", (res) => reject(new Error(`relay leg refused: ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
}

/** The next chunk `socket` reads. */
function nextData(socket: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("nothing came through the relay")), WAIT_MS);
    socket.once("data", (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
  });
}

describe("a flood that fills every connection slot (--max-connections 200)", () => {
  const TOTAL = 200;
  const PER_ADDRESS = 40;
  let c: Cluster;
  let t: Api;
  const flood = { destroy: () => {} };
  before(async () => {
    c = await Cluster.create(1);
    // a long handshake time, so the flood holds for the whole test however slow the box
    await c.tracker(1, [
      "--max-connections",
      String(TOTAL),
      "--max-connections-per-address",
      String(PER_ADDRESS),
      "--handshake-timeout",
      "120",
    ]);
    t = api(c.ports[0]!);
  });
  after(async () => {
    flood.destroy();
    await c.close();
  });

  it("leaves room for a newcomer from another address, and keeps a relay circuit and a signal poll", async () => {
    const port = c.ports[0]!;
    for (const u of ["owner", "member"]) await t.register(u);
    const own = await t.login("owner", "127.0.0.1:6601", "127.0.0.3");
    const mem = await t.login("member", "127.0.0.1:6602", "127.0.0.4");
    await t.ok(own, "POST", "/v1/groups", { groupId: "g" }, 201);
    await t.join(mem, own, "g");
    const sha1 = createHash("sha1").update("a").digest();
    const file = { name: "f.bin", size: 1, sha1: sha1.toString("hex"), pieces: sha1.toString("base64") };
    await t.ok(own, "POST", "/v1/groups/g/files", file, 201);
    const base = "/v1/groups/g/files/f.bin";
    const { circuit } = await t.ok(mem, "POST", `${base}/relays`, { userId: "owner" });
    const { signals } = await t.ok(own, "GET", "/v1/signals?after=0");
    assert.equal(signals.at(-1)?.circuit, circuit);
    const [down, up] = await Promise.all([
      relayLeg(port, circuit, mem, "127.0.0.4"),
      relayLeg(port, circuit, own, "127.0.0.3"),
    ]);
    // the owner's poll waits for its next signal through the flood
    const poll = trackerCall(port, {
      method: "GET",
      path: `/v1/signals?after=${signals.at(-1).seq}`,
      token: own,
      localAddress: "127.0.0.3",
      timeoutMs: 60_000,
    });

    const attack = new Flood(port);
    flood.destroy = () => attack.destroy();
    const addrs = Array.from({ length: 8 }, (_, i) => `127.0.9.${i + 1}`);
    await Promise.all(addrs.map((a) => attack.open(a, PER_ADDRESS + 10)));
    // the legs and the poll hold 3 of the TOTAL slots, and are never closed for a newcomer
    await attack.untilClosed(attack.sockets.length - (TOTAL - 3));
    const held = attack.held;
    assert.ok(held <= TOTAL - 3 && held > TOTAL / 2, `the flood holds ${held} connections`);

    // a newcomer from another address: each of its connections takes the place of an idle one
    const from = "127.0.0.2";
    const signup = await trackerCall(port, {
      method: "POST",
      path: "/v1/users",
      body: { userId: "newcomer", password: "pw-newcomer" },
      localAddress: from,
    });
    assert.equal(signup.status, 201, signup.text);
    await t.login("newcomer", "127.0.0.1:6603", from);
    assert.ok(attack.held < held, `no idle connection made room: ${attack.held} of the flood held`);

    // the circuit carries bytes both ways, and the poll gets the reversal the member asks for
    const there = nextData(up);
    down.write("ping");
    assert.equal(await there, "ping");
    const back = nextData(down);
    up.write("pong");
    assert.equal(await back, "pong");
    await t.ok(mem, "POST", `${base}/reversals`, { userId: "owner" });
    const answer = await poll;
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      answer.body.signals.map((s: { kind: string }) => s.kind),
      ["reverse"],
    );
    assert.ok(attack.held > 0, "the flood still held its connections");
    down.destroy();
    up.destroy();
  });
});
