/**
 * Speed limits on real clients: a download under --max-down (from a sharer under
 * --max-up) arrives intact, set_limit's changes are what show_limits and the JSON
 * API report, and a limit of 0 holds back one direction only. Behaviour only: how close the rate comes to the limit is the bench's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster } from "../helpers/procs.js";
import { type WebAnswer, webCall, webClient } from "../helpers/web.js";
import { assertSameFile, type Client, download, fails, ok, randomFile, seen } from "./sharing.helpers.js";

describe("speed limits", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Awaited<ReturnType<typeof webClient>>;
  const api = (method: string, body?: unknown): Promise<WebAnswer> =>
    webCall(bob.port, {
      method,
      path: "/api/v1/limits",
      token: bob.token,
      ...(body !== undefined && { body }),
    });

  before(async () => {
    c = await Cluster.create();
    await c.tracker();
    alice = await c.client("alice", { args: ["--max-up", "40Mbit/s"] });
    bob = await webClient(c, "bob", ["--max-down", "4MB/s"]);
    for (const [p, name] of [
      [alice, "alice"],
      [bob.proc, "bob"],
    ] as const) {
      await ok(p, `create_user ${name} pw-${name}`, /^user .* created/);
      await ok(p, `login ${name} pw-${name}`, /^logged in as /);
    }
    await ok(alice, "create_group movies", /^group movies created/);
    await ok(bob.proc, "join_group movies", /^asked to join /);
    await ok(alice, "accept_request movies bob", /^bob is now a member/);
  });
  after(() => c.close());

  it("a download under --max-down, from a sharer under --max-up, completes intact", async () => {
    await ok(alice, "show_limits", /^upload limit: 5\.00 MB\/s$/);
    await ok(bob.proc, "show_limits", /^upload limit: unlimited$/);
    await bob.proc.expect(/^download limit: 4\.00 MB\/s$/);
    // several pieces and a short last one: every link's TLS runs over the throttled socket
    const f = await randomFile(join(c.dir, "clip.bin"), 3 * 512 * 1024 + 1234);
    await ok(alice, `upload_file ${f.path} movies`, /^uploaded clip\.bin to movies: /);
    const target = await download(bob.proc, "movies", "clip.bin", join(c.dir, "bob-got"));
    await assertSameFile(target, f);
  });

  it("set_limit's changes are what show_limits and the API report", async () => {
    const p = bob.proc;
    await ok(p, "set_limit up 1MB/s movies", /^upload limit \(group movies\): 1\.00 MB\/s$/);
    await ok(p, "set_limit down 500kB/s movies", /^download limit \(group movies\): 500\.0 kB\/s$/);
    await ok(p, "set_limit up 0", /^upload limit \(client-wide\): paused$/);
    await ok(p, "show_limits", /^upload limit: paused$/);
    await p.expect(/^download limit: 4\.00 MB\/s$/);
    await p.expect(/^ {2}group movies: upload 1\.00 MB\/s, download 500\.0 kB\/s$/);

    const shown = await api("GET");
    assert.equal(shown.status, 200, shown.text);
    assert.deepEqual(shown.body, {
      up: 0,
      down: 4_000_000,
      groups: [{ groupId: "movies", up: 1_000_000, down: 500_000 }],
      downloads: [],
    });

    // the API's changes are the shell's
    const set = await api("PUT", { direction: "up", rate: "unlimited" });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.body, { direction: "up", rate: null, groupId: null, name: null });
    assert.equal((await api("PUT", { direction: "down", rate: "unlimited", groupId: "movies" })).status, 200);
    await ok(p, "show_limits", /^upload limit: unlimited$/);
    await p.expect(/^ {2}group movies: upload 1\.00 MB\/s, download unlimited$/);
    assert.deepEqual((await api("GET")).body.groups, [{ groupId: "movies", up: 1_000_000, down: null }]);
    await ok(p, "set_limit up unlimited movies", /^upload limit \(group movies\): unlimited$/);
    assert.deepEqual((await api("GET")).body.groups, []);
  });

  it("refuses what is not a limit, in the shell and the API, and changes nothing", async () => {
    const p = bob.proc;
    const before = (await api("GET")).body;
    await fails(p, "set_limit sideways 5MB/s", /^upload limit/);
    await fails(p, "set_limit down 5", /^download limit/);
    await fails(p, "set_limit down 5Mb/s", /^download limit/);
    await fails(p, "set_limit up 1MB/s movies clip.bin", /^upload limit/);
    await fails(p, "set_limit down 1MB/s movies nothing.bin", /^download limit/);
    // complete: a limit on it would be kept for nothing
    await fails(p, "set_limit down 1MB/s movies clip.bin", /^download limit/);
    for (const body of [
      { direction: "down", rate: "fast" },
      { direction: "left", rate: "5MB/s" },
      { direction: "down", rate: "5MB/s", name: "clip.bin" },
      { direction: "down" },
      { direction: "down", rate: 5_000_000 },
      { direction: "down", rate: "5MB/s", group: "movies" },
    ]) {
      const a = await api("PUT", body);
      assert.equal(a.status, 400, `${JSON.stringify(body)}: ${a.text}`);
      assert.equal(a.code, "BAD_REQUEST");
    }
    assert.deepEqual((await api("GET")).body, before);
  });

  it("a download paused by a 0 limit goes on when the limit is lifted, and arrives intact", async () => {
    const p = bob.proc;
    await ok(p, "set_limit down 0", /^download limit \(client-wide\): paused$/);
    const f = await randomFile(join(c.dir, "paused.bin"), 2 * 512 * 1024 + 77);
    await ok(alice, `upload_file ${f.path} movies`, /^uploaded paused\.bin to movies: /);
    const started = await ok(
      p,
      `download_file movies paused.bin "${join(c.dir, "bob-paused")}"`,
      /^downloading \[movies\] /,
    );
    const target = /^downloading \[movies\] paused\.bin to (.+) in the background/.exec(started)![1]!;
    // its own limit, under the paused client's: listed while the download is known
    await ok(
      p,
      "set_limit down 8MB/s movies paused.bin",
      /^download limit \(\[movies\] paused\.bin\): 8\.00 MB\/s$/,
    );
    assert.deepEqual((await api("GET")).body.downloads, [
      { groupId: "movies", name: "paused.bin", down: 8_000_000 },
    ]);
    assert.ok(!p.lines.some((l) => l.startsWith("download complete: [movies] paused.bin")), p.dump());
    assert.equal((await api("PUT", { direction: "down", rate: "unlimited" })).status, 200);
    const done = await seen(p, /^download (?:complete|failed): \[movies\] paused\.bin/, 60_000);
    assert.match(done, /^download complete: /);
    await assertSameFile(target, f);
    // a complete download's own limit is forgotten
    assert.deepEqual((await api("GET")).body.downloads, []);
  });

  it("a limit of 0 holds back one way only: bob downloads with his uploads paused, from alice with her downloads paused", async () => {
    await ok(bob.proc, "set_limit up 0", /^upload limit \(client-wide\): paused$/);
    await ok(alice, "set_limit down 0", /^download limit \(client-wide\): paused$/);
    const f = await randomFile(join(c.dir, "oneway.bin"), 2 * 512 * 1024 + 5);
    await ok(alice, `upload_file ${f.path} movies`, /^uploaded oneway\.bin to movies: /);
    // bob's requests (and his side of each handshake) are uploads, alice's reading them downloads
    const target = await download(bob.proc, "movies", "oneway.bin", join(c.dir, "bob-oneway"));
    await assertSameFile(target, f);
    await ok(bob.proc, "set_limit up unlimited", /^upload limit \(client-wide\): unlimited$/);
    await ok(alice, "set_limit down unlimited", /^download limit \(client-wide\): unlimited$/);
  });

  it("keeps the limits with the login's state: in force at the next login, a limit given at start winning", async () => {
    const args = ["--max-up", "40Mbit/s"];
    await ok(alice, "set_limit down 3MB/s", /^download limit \(client-wide\): 3\.00 MB\/s$/);
    await ok(alice, "set_limit up 2MB/s movies", /^upload limit \(group movies\): 2\.00 MB\/s$/);
    await ok(alice, "set_limit up 1MB/s", /^upload limit \(client-wide\): 1\.00 MB\/s$/);
    alice.send("quit");
    assert.equal(await alice.waitExit(), 0);
    alice = await c.client("alice", { port: alice.port, args });
    // before login: only what was given at start
    await ok(alice, "show_limits", /^upload limit: 5\.00 MB\/s$/);
    await alice.expect(/^download limit: unlimited$/);
    await ok(alice, "login alice pw-alice", /^logged in as alice/);
    const shown = async (lines: RegExp[]) => {
      await ok(alice, "show_limits", lines[0]!);
      for (const l of lines.slice(1)) await alice.expect(l);
    };
    await shown([
      /^upload limit: 5\.00 MB\/s$/, // --max-up at start wins over the 1MB/s saved
      /^download limit: 3\.00 MB\/s$/,
      /^ {2}group movies: upload 2\.00 MB\/s, download unlimited$/,
    ]);
    await ok(alice, "logout", /^logged out/);
    const from = alice.lines.length;
    await shown([/^upload limit: 5\.00 MB\/s$/, /^download limit: unlimited$/]);
    // the answer to a later command comes after all of show_limits' lines
    await ok(alice, "set_limit up 5MB/s", /^upload limit \(client-wide\): 5\.00 MB\/s$/);
    assert.ok(
      !alice.lines.slice(from).some((l) => l.includes("group movies")),
      "a logout forgets the login's limits",
    );
    await ok(alice, "login alice pw-alice", /^logged in as alice/);
    await shown([/^upload limit: 5\.00 MB\/s$/, /^download limit: 3\.00 MB\/s$/, /^ {2}group movies: /]);
    await ok(alice, "set_limit down unlimited", /^download limit \(client-wide\): unlimited$/);
    await ok(alice, "set_limit up unlimited movies", /^upload limit \(group movies\): unlimited$/);
  });
});
