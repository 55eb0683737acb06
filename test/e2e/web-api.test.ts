/**
 * The JSON API of a real client (`./client … --web PORT`): every route, against a real
 * tracker and a second client, with the token the client printed; without it, nothing.
 */
import assert from "node:assert/strict";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster } from "../helpers/procs.js";
import { openEvents, type WebAnswer, webCall, webClient } from "../helpers/web.js";
import { assertSameFile, randomFile, until } from "./sharing.helpers.js";

/** Calls the API and fails the test on an error answer (with what it said). */
async function ok(
  port: number,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<WebAnswer> {
  const a = await webCall(port, {
    method,
    path: `/api/v1${path}`,
    token,
    ...(body !== undefined && { body }),
  });
  assert.ok(a.status >= 200 && a.status < 300, `${method} ${path}: ${a.status} ${a.text}`);
  return a;
}

describe("the client's JSON API", () => {
  let c: Cluster;
  let alice: Awaited<ReturnType<typeof webClient>>;
  let bob: Awaited<ReturnType<typeof webClient>>;

  before(async () => {
    c = await Cluster.create();
    await c.tracker();
    alice = await webClient(c, "alice");
    bob = await webClient(c, "bob");
  });
  after(() => c.close());

  it("answers nothing without the token, or with another", async () => {
    for (const token of [undefined, `${alice.token.slice(1)}x`]) {
      const a = await webCall(alice.port, { path: "/api/v1/session", ...(token && { token }) });
      assert.equal(a.status, 401, a.text);
      assert.equal(a.code, "UNAUTHORIZED");
    }
    // bob's token is not alice's
    assert.equal((await webCall(alice.port, { path: "/api/v1/session", token: bob.token })).status, 401);
  });

  it("runs every operation: accounts, groups, requests, members, files, shares, downloads", async () => {
    const A = (m: string, p: string, b?: unknown) => ok(alice.port, alice.token, m, p, b);
    const B = (m: string, p: string, b?: unknown) => ok(bob.port, bob.token, m, p, b);
    assert.deepEqual((await A("GET", "/session")).body.loggedIn, false);
    // before login, operations that need one say so with the registry's code
    const early = await webCall(alice.port, { path: "/api/v1/groups", token: alice.token });
    assert.equal(early.code, "UNAUTHORIZED");

    await A("POST", "/users", { userId: "alice", password: "pw-a" });
    await B("POST", "/users", { userId: "bob", password: "pw-b" });
    const wrong = await webCall(alice.port, {
      method: "POST",
      path: "/api/v1/session",
      token: alice.token,
      body: { userId: "alice", password: "nope" },
    });
    assert.equal(wrong.code, "WRONG_PASSWORD", wrong.text);
    const login = (await A("POST", "/session", { userId: "alice", password: "pw-a" })).body;
    assert.equal(login.loggedIn, true);
    assert.equal(login.userId, "alice");
    // a login through the API is the shell's login too
    alice.proc.send("list_groups");
    await alice.proc.expect(/^\(no groups yet/);
    await B("POST", "/session", { userId: "bob", password: "pw-b" });

    // ids are checked as the shell checks them
    const bad = await webCall(alice.port, {
      method: "POST",
      path: "/api/v1/groups",
      token: alice.token,
      body: { groupId: "no spaces" },
    });
    assert.equal(bad.code, "INVALID_ID", bad.text);
    await A("POST", "/groups", { groupId: "films" });
    const events = await openEvents(alice.port, alice.token);
    try {
      await B("POST", "/groups/films/join", {});
      const listed = (await B("GET", "/groups?prefix=fil")).body;
      assert.deepEqual(
        listed.groups.map((g: { groupId: string; role: string }) => [g.groupId, g.role]),
        [["films", "pending"]],
      );
      assert.deepEqual(
        (await A("GET", "/groups/films/requests")).body.requests.map((r: { userId: string }) => r.userId),
        ["bob"],
      );
      // the owner's page hears of the request without asking
      await until(
        "a join-request event",
        async () => events.frames.some((f) => f.event === "join-request"),
        30_000,
      );
      await A("POST", "/groups/films/requests/bob/accept", {});
    } finally {
      events.close();
    }
    const members = (await B("GET", "/groups/films/members")).body.members;
    assert.deepEqual(
      members.map((m: { userId: string; role: string }) => [m.userId, m.role]),
      [
        ["alice", "owner"],
        ["bob", "member"],
      ],
    );

    const file = await randomFile(join(c.dir, "clip one.bin"), 3 * 1024 * 1024 + 17);
    const up = (await A("POST", "/shares", { path: file.path, groupId: "films" })).body;
    assert.equal(up.name, "clip one.bin");
    assert.equal(up.size, file.size);
    const shares = (await A("GET", "/shares")).body.shares;
    assert.deepEqual(
      shares.map((s: { name: string; piecesHave: number; pieceCount: number }) => [
        s.name,
        s.piecesHave === s.pieceCount,
      ]),
      [["clip one.bin", true]],
    );
    const files = (await B("GET", "/groups/films/files")).body.files;
    assert.equal(files[0].name, "clip one.bin");
    assert.equal(files[0].sharersOnline, 1);

    const dest = join(c.dir, "bob-dl");
    await mkdir(dest);
    const bobEvents = await openEvents(bob.port, bob.token);
    try {
      await B("POST", "/downloads", { groupId: "films", name: "clip one.bin", destination: dest });
      await until(
        "a download-complete event",
        async () => bobEvents.frames.some((f) => f.event === "download-complete"),
        30_000,
      );
    } finally {
      bobEvents.close();
    }
    await assertSameFile(join(dest, "clip one.bin"), file);
    const downloads = (await B("GET", "/downloads")).body.downloads;
    assert.equal(downloads[0].state, "complete");
    assert.equal(downloads[0].bytesDone, file.size);
    assert.equal(downloads[0].target, join(dest, "clip one.bin"));

    // a download that cannot start (no such file) is the tracker's error, as JSON
    const missing = await webCall(bob.port, {
      method: "POST",
      path: "/api/v1/downloads",
      token: bob.token,
      body: { groupId: "films", name: "nope.bin", destination: dest },
    });
    assert.equal(missing.code, "FILE_NOT_FOUND", missing.text);

    await A("DELETE", `/shares/films/${encodeURIComponent("clip one.bin")}`);
    assert.deepEqual((await A("GET", "/shares")).body.shares, []);

    // pause, resume and the queue, on a download that waits (nobody shares the file now)
    await B("DELETE", `/shares/films/${encodeURIComponent("clip one.bin")}`);
    const again = join(c.dir, "second-try");
    await mkdir(again);
    await B("POST", "/downloads", { groupId: "films", name: "clip one.bin", destination: again });
    const clip = `/downloads/films/${encodeURIComponent("clip one.bin")}`;
    const paused = (await B("POST", `${clip}/pause`, {})).body;
    assert.equal(paused.state, "paused");
    assert.equal(paused.target, join(again, "clip one.bin"));
    assert.equal(paused.downloadedBytes, 0);
    assert.equal(paused.ratio, null);
    assert.deepEqual(
      (await B("POST", "/downloads/resume-all", {})).body.downloads
        .map((d: { state: string }) => d.state)
        .includes("paused"),
      false,
    );
    assert.equal((await B("POST", "/downloads/pause-all", {})).body.downloads[0].state, "paused");
    assert.equal((await B("POST", `${clip}/move`, { position: 1 })).body.name, "clip one.bin");
    const queue = (await B("PUT", "/queue", { maxActive: 2 })).body;
    assert.equal(queue.maxActive, 2);
    for (const [path, body] of [
      ["/queue", { maxActive: 0 }],
      ["/queue", { maxActive: "2" }],
    ] as const) {
      const bad = await webCall(bob.port, { method: "PUT", path: `/api/v1${path}`, token: bob.token, body });
      assert.equal(bad.code, "BAD_REQUEST", bad.text);
    }
    const far = await webCall(bob.port, {
      method: "POST",
      path: `/api/v1${clip}/move`,
      token: bob.token,
      body: { position: 5 },
    });
    assert.equal(far.code, "BAD_REQUEST", far.text);
    assert.notEqual((await B("POST", `${clip}/resume`, {})).body.state, "paused");
    await B("DELETE", clip);
    await A("DELETE", "/groups/films/members/bob");
    const gone = await webCall(bob.port, { path: "/api/v1/groups/films/files", token: bob.token });
    assert.equal(gone.code, "NOT_MEMBER", gone.text);
    const left = (await A("POST", "/groups/films/leave", {})).body;
    assert.equal(left.deleted, true);
    await A("DELETE", "/session");
    assert.equal((await A("GET", "/session")).body.loggedIn, false);
  });

  it("completes local paths for the page, only when logged in", async () => {
    const a = await webCall(bob.port, {
      path: `/api/v1/paths?prefix=${encodeURIComponent(`${c.dir}/bob-`)}`,
      token: bob.token,
    });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.body.entries, [{ path: `${c.dir}/bob-dl/`, dir: true }]);
    assert.ok((await stat(join(c.dir, "bob-dl"))).isDirectory());
    const out = await webCall(alice.port, { path: "/api/v1/paths?prefix=/", token: alice.token });
    assert.equal(out.code, "UNAUTHORIZED");
  });
});
