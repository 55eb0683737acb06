/**
 * Members who use the paths around routers against others, on a real tracker with a
 * real sharing client and raw HTTP members: pointing a sharer's dial back at a host
 * of their choosing, asking for reversals and punches without end, and taking a
 * sharer's whole share of relay circuits, alone or together.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REACH_REQUESTS } from "../../src/tracker/service.js";
import { Cluster, WAIT_MS } from "../helpers/procs.js";
import { type Client, ok } from "./sharing.helpers.js";
import { type Api, api } from "./tracker.helpers.js";

/** A TCP listener the test owns on `host`: it counts who connects, and says when the first one does. */
async function listener(host: string) {
  let connections = 0;
  let first: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    first = resolve;
  });
  const server: Server = createServer((s) => {
    connections++;
    first();
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    connected,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function within<T>(what: string, p: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("tracker: reversals, punches and relays turned against other members", () => {
  let c: Cluster;
  let t: Api;
  let sharer: Client;
  const base = "/v1/groups/g/files/f.bin";

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    t = api(c.ports[0]!);
    sharer = await c.client("sharer");
    await ok(sharer, "create_user sharer pw", /^user .* created/);
    await ok(sharer, "login sharer pw", /^logged in as /);
    await ok(sharer, "create_group g", /^group g created/);
    await writeFile(join(c.dir, "f.bin"), "a file worth reaching");
    await ok(sharer, `upload_file ${join(c.dir, "f.bin")} g`, /^uploaded f\.bin to g/);
  });
  after(() => c.close());

  /** A raw member of g, logged in from 127.0.0.1 (the sharer's IP) announcing `peerAddr`. */
  async function member(userId: string, peerAddr: string): Promise<string> {
    await t.register(userId);
    const token = await t.login(userId, peerAddr);
    await t.ok(token, "POST", "/v1/groups/g/requests", {}, 201);
    await ok(sharer, `accept_request g ${userId}`, /is now a member/);
    return token;
  }

  it("a member at the sharer's IP cannot make it dial another host: refused, and nothing dials it", async () => {
    const target = await listener("127.0.0.2");
    const control = await listener("127.0.0.1");
    try {
      // mallory is seen at 127.0.0.1, where the sharer is, and claims to be at 127.0.0.2
      const mallory = await member("mallory", `127.0.0.2:${target.port}`);
      const r = await t.call("POST", `${base}/reversals`, { userId: "sharer" }, mallory);
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.error.code, "PEER_ADDRESS_REFUSED");
      // a member at the address it is seen at is dialled back there
      const victor = await member("victor", `127.0.0.1:${control.port}`);
      await t.ok(victor, "POST", `${base}/reversals`, { userId: "sharer" });
      await within("the sharer dials victor back", control.connected);
      // the sharer answers its signals in the order they came: a dial of mallory's would
      // be in the kernel's queue already; two turns of our loop accept it
      for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(target.connections(), 0, "the sharer dialled the address mallory claimed");
    } finally {
      await target.close();
      await control.close();
    }
  });

  it("reversals and hole punches are rate-limited per member, not for everyone", async () => {
    const spammer = await member("spammer", "127.0.0.1:6901");
    const bystander = await member("bystander", "127.0.0.1:6902");
    // asked of a user who shares nothing: each is counted, and none makes anyone dial
    const began = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 2 * REACH_REQUESTS.burst }, (_, i) =>
        t.call("POST", `${base}/${i % 2 ? "punches" : "reversals"}`, { userId: "nobody" }, spammer),
      ),
    );
    const elapsed = performance.now() - began;
    const limited = answers.filter((a) => a.body?.error?.code === "RATE_LIMITED").length;
    const passed = answers.filter((a) => a.body?.error?.code === "NOT_SHARING").length;
    assert.equal(limited + passed, answers.length, JSON.stringify(answers.map((a) => a.body)));
    // the burst, and what refilled while they came
    assert.ok(
      passed <= REACH_REQUESTS.burst + Math.ceil(elapsed / REACH_REQUESTS.everyMs),
      `${passed} passed`,
    );
    assert.ok(limited > 0);
    const mine = await t.call("POST", `${base}/reversals`, { userId: "nobody" }, bystander);
    assert.equal(mine.body?.error?.code, "NOT_SHARING");
  });

  it("a member asking for relay circuits without end leaves the sharer's other downloaders theirs", async () => {
    const hog = await member("hog", "127.0.0.1:6903");
    const other = await member("other", "127.0.0.1:6904");
    // the hog never joins its legs: each circuit waits for it until the pairing time is up
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => t.call("POST", `${base}/relays`, { userId: "sharer" }, hog)),
    );
    const opened = answers.filter((a) => a.status === 200).length;
    assert.ok(
      answers.every((a) => a.status === 200 || a.body?.error?.code === "RATE_LIMITED"),
      JSON.stringify(answers.map((a) => a.body)),
    );
    assert.ok(opened > 0 && opened < answers.length, `${opened} circuits opened`);
    const mine = await t.call("POST", `${base}/relays`, { userId: "sharer" }, other);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
  });

  it("members who together fill a sharer's relay circuits give one up to a member who has none", async () => {
    const colluders = [];
    for (const [i, name] of ["col1", "col2", "col3", "col4"].entries())
      colluders.push(await member(name, `127.0.0.1:${6910 + i}`));
    // each takes what it can of the sharer's circuits (its pair's share), none joining its legs
    for (const token of colluders) {
      for (let i = 0; i < 4; i++) await t.call("POST", `${base}/relays`, { userId: "sharer" }, token);
    }
    const full = await t.call("POST", `${base}/relays`, { userId: "sharer" }, colluders[0]!);
    assert.notEqual(full.status, 200, "the sharer's circuits are all taken");
    const late = await member("late", "127.0.0.1:6920");
    const mine = await t.call("POST", `${base}/relays`, { userId: "sharer" }, late);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
  });
});
