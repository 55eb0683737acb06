import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster, freePort, Proc, ROOT } from "../helpers/procs.js";
import { fails, ok } from "../helpers/say.js";

// The tracker keeps nothing that matters in memory. Stopped with `quit` or
// killed with SIGKILL, and started again on the same tracker_info.txt (so the same
// SQLite file beside it), it has every user, group, membership, pending request and
// session: logged-in clients carry on without logging in again.

/** Everything the three users can see of the directory, for before/after comparisons. */
async function snapshot(ps: { alice: Proc; bob: Proc; carol: Proc }): Promise<string[]> {
  const out: string[] = [];
  for (const [name, p] of Object.entries(ps)) {
    for (const l of await ok(p, "list_groups", /^\S/)) out.push(`${name}: ${l}`);
  }
  for (const l of await ok(ps.alice, "list_requests g1", /^\S/)) out.push(`g1 requests: ${l}`);
  for (const l of await ok(ps.bob, "list_requests g3", /^\S/)) out.push(`g3 requests: ${l}`);
  return out;
}

describe("tracker restart: quit and SIGKILL lose nothing", () => {
  let c: Cluster;
  let tracker: Proc;
  let alice: Proc;
  let bob: Proc;
  let carol: Proc;
  let where: string;

  before(async () => {
    c = await Cluster.create(1);
    where = `127.0.0.1:${c.ports[0]}`;
    tracker = await c.tracker(1);
    [alice, bob, carol] = await Promise.all([c.client("alice"), c.client("bob"), c.client("carol")]);
    for (const [p, name] of [
      [alice, "alice"],
      [bob, "bob"],
      [carol, "carol"],
    ] as const) {
      await ok(p, `create_user ${name} pw-${name}`, /^user .* created/);
      await ok(p, `login ${name} pw-${name}`, /^logged in as /);
    }
    await ok(alice, "create_user dave pw-dave", /^user dave created/);
    await ok(alice, "create_group g1", /^group g1 created/);
    await ok(alice, "create_group g2", /^group g2 created/);
    await ok(bob, "create_group g3", /^group g3 created/);
    await ok(carol, "join_group g1", /^asked to join g1/);
    await ok(alice, "accept_request g1 carol", /^carol is now a member/);
    await ok(bob, "join_group g1", /^asked to join g1/); // pending
    await ok(alice, "join_group g3", /^asked to join g3/); // pending
    await ok(carol, "join_group g3", /^asked to join g3/);
    await ok(bob, "accept_request g3 carol", /^carol is now a member/);
  });
  after(() => c.close());

  it("comes back after quit (exit code 0) with every user, group, member, request and session", async () => {
    const before = await snapshot({ alice, bob, carol });
    assert.ok(
      before.some((l) => /^g1 requests: bob /.test(l)),
      before.join("\n"),
    );
    tracker.send("quit");
    await tracker.expect(/stopping/);
    assert.equal(await tracker.waitExit(), 0, tracker.dump());

    // while it is down: a clear error naming the tracker tried, and the client lives on
    const down = await fails(alice, "list_groups", /^error: no tracker answered/);
    assert.ok(down.includes(where), down);

    tracker = await c.tracker(1);
    assert.deepEqual(await snapshot({ alice, bob, carol }), before);
  });

  it("comes back after SIGKILL with what changed since, and logged-in clients carry on", async () => {
    // changes made on the restarted tracker, then a kill with no chance to flush anything
    await ok(alice, "accept_request g1 bob", /^bob is now a member/);
    await ok(carol, "join_group g2", /^asked to join g2/);
    await ok(carol, "leave_group g3", /^left group g3/);
    const before = await snapshot({ alice, bob, carol });
    await tracker.kill("SIGKILL");

    tracker = await c.tracker(1);
    assert.deepEqual(await snapshot({ alice, bob, carol }), before);
    const g = new Map((await ok(bob, "list_groups", /^\S/)).map((l) => [l.split(/\s+/)[0], l]));
    assert.match(g.get("g1")!, /owner=alice\s+members=3\s+you=member/);
    assert.match(g.get("g2")!, /owner=alice\s+members=1$/);
    assert.match(g.get("g3")!, /owner=bob\s+members=1\s+you=owner/);
    await ok(alice, "list_requests g2", /^carol /);
    await ok(bob, "list_requests g3", /^alice /);

    // the sessions and the owner rules survived too
    await fails(carol, "list_requests g1", /^error: only the owner/);
    await ok(alice, "leave_group g1", /^left group g1; carol owns it now/);
    await ok(carol, "list_requests g1", /^\(no pending requests/);
    // passwords survived: another client logs in as a user created before both restarts
    const d = await c.client("dave");
    await fails(d, "login dave wrong", /^error: .*wrong user id or password/);
    await ok(d, "login dave pw-dave", /^logged in as dave$/);
    await fails(d, "create_user alice again", /^error: .*'alice' already exists/);
    await fails(d, "create_group g1", /^error: group 'g1' already exists/);
  });

  it("refuses a second tracker on a port already in use, at start", async () => {
    const second = new Proc("tracker1-again", join(ROOT, "tracker"), [c.infoPath, "1"]);
    c.procs.push(second);
    assert.notEqual(await second.waitExit(), 0);
    assert.match(
      await second.expectErr(/^error: /),
      new RegExp(`${where.replace(/\./g, "\\.")}.*already in use`),
    );
    assert.ok(tracker.alive);
    await ok(alice, "list_groups g1", /^g1 /);
  });
});

describe("a tracker that does not answer", () => {
  let dir: string;
  let silent: Server;
  const held: Socket[] = [];
  const procs: Proc[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-down-"));
    // accepts connections and never answers a byte
    silent = createServer((s) => held.push(s));
    await new Promise<void>((res) => silent.listen(0, "127.0.0.1", res));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    for (const s of held) s.destroy();
    await new Promise((res) => silent.close(res));
    await rm(dir, { recursive: true, force: true });
  });

  async function clientFor(label: string, trackerPort: number): Promise<Proc> {
    const info = join(dir, `${label}.txt`);
    await writeFile(info, `# only one tracker\n127.0.0.1 ${trackerPort}\n`);
    const p = new Proc(
      label,
      join(ROOT, "client"),
      [`127.0.0.1:${await freePort()}`, info, "--state-dir", join(dir, `state-${label}`)],
      { mergeStderr: true },
    );
    procs.push(p);
    return p;
  }

  it("is an error naming the tracker tried when nothing listens there", async () => {
    const port = await freePort();
    const p = await clientFor("refused", port);
    const line = await fails(p, "create_user alice pw", /^error: no tracker answered/);
    assert.ok(line.includes(`127.0.0.1:${port}`), line);
    await fails(p, "login alice pw", /^error: no tracker answered.*tracker/);
  });

  it("is an error naming the tracker tried when it accepts and stays silent", async () => {
    const a = silent.address();
    const port = typeof a === "object" && a ? a.port : 0;
    const p = await clientFor("silent", port);
    const line = await fails(p, "create_user alice pw", /^error: no tracker answered/);
    assert.ok(line.includes(`127.0.0.1:${port}`), line);
  });
});

describe("tracker and client command lines", () => {
  let dir: string;
  const procs: Proc[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-info-"));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await rm(dir, { recursive: true, force: true });
  });

  async function start(cmd: "tracker" | "client", text: string, args: (info: string) => string[]) {
    const info = join(dir, `info-${procs.length}.txt`);
    await writeFile(info, text);
    const p = new Proc(`${cmd}-${procs.length}`, join(ROOT, cmd), args(info));
    procs.push(p);
    const code = await p.waitExit();
    return { code, err: p.errLines.join("\n") };
  }
  const tracker = (text: string, no: string) =>
    start("tracker", text, (info) => [info, no, "--db", join(dir, "t.db")]);

  it("refuses a malformed tracker_info.txt, naming the line", async () => {
    const port = await freePort();
    const r = await tracker(`# trackers\n127.0.0.1 ${port}\n\nnot-an-address\n`, "1");
    assert.notEqual(r.code, 0);
    assert.match(r.err, /^error: .*line 4/m);
    const bad = await tracker(`127.0.0.1:${port}\n127.0.0.1 99999\n`, "1");
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /^error: .*line 2.*99999/m);
  });

  it("refuses a tracker number the file does not list", async () => {
    const port = await freePort();
    const r = await tracker(`127.0.0.1 ${port}\n`, "2");
    assert.notEqual(r.code, 0);
    assert.match(r.err, /^error: .*tracker 2/m);
    for (const no of ["0", "one"]) {
      const z = await tracker(`127.0.0.1 ${port}\n`, no);
      assert.notEqual(z.code, 0);
      assert.match(z.err, /^error: .*tracker number/m);
    }
  });

  it("refuses a client with a malformed tracker_info.txt or address, naming what is wrong", async () => {
    const [port, own] = [await freePort(), await freePort()];
    const stateDir = join(dir, "state");
    const r = await start("client", `127.0.0.1 ${port}\n127.0.0.1 port\n`, (info) => [
      `127.0.0.1:${own}`,
      info,
      "--state-dir",
      stateDir,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /^error: .*line 2.*'port'/m);
    const a = await start("client", `127.0.0.1 ${port}\n`, (info) => [
      "nowhere",
      info,
      "--state-dir",
      stateDir,
    ]);
    assert.notEqual(a.code, 0);
    assert.match(a.err, /^error: 'nowhere'.*<IP>:<PORT>/m);
  });
});
