/**
 * The engine as a web UI or an API drives it: typed results and typed events, from a
 * real tracker (SQLite, HTTPS) and two real clients in this process, with no shell.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { eventLine } from "../../src/client/cli/lines.js";
import { GroupshareClient } from "../../src/client/client.js";
import { EngineEmitter } from "../../src/client/engine/emitter.js";
import type { EngineEvent, EventOf } from "../../src/client/engine/types.js";
import { errorValue } from "../../src/client/engine/views.js";
import { findRoute, ROUTES, type RouteName, routePath } from "../../src/shared/api.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { ERRORS, GsError } from "../../src/shared/errors.js";
import { TrackerService } from "../../src/tracker/service.js";
import { openStore } from "../../src/tracker/store/index.js";
import { writeRandomFile } from "../helpers/files.js";
import { freePort } from "../helpers/procs.js";
import { serveTracker } from "../helpers/tls.js";

/** The first event of `type` from now on, or a failure after `ms`. */
function next<T extends EngineEvent["type"]>(c: GroupshareClient, type: T, ms = 20_000): Promise<EventOf<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${type} event within ${ms} ms`));
    }, ms);
    const stop = c.events.on(type, (e) => {
      clearTimeout(timer);
      stop();
      resolve(e);
    });
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GsError, String(err));
    return err.code;
  }
  return "no error";
}

describe("the engine: typed results and events", () => {
  let dir: string;
  let closeTracker: () => Promise<void>;
  let trackerPort: number;
  const clients: GroupshareClient[] = [];

  async function client(name: string): Promise<GroupshareClient> {
    const c = new GroupshareClient({
      trackers: [{ no: 1, host: "127.0.0.1", port: trackerPort }],
      host: "127.0.0.1",
      port: await freePort(),
      stateDir: join(dir, name),
    });
    await c.start();
    clients.push(c);
    return c;
  }

  /** Counts the tracker calls a client makes, by route name. */
  function spy(c: GroupshareClient): string[] {
    const calls: string[] = [];
    const real = c.tracker.call.bind(c.tracker);
    c.tracker.call = ((name: RouteName, ...args: never[]) => {
      calls.push(name);
      return (real as (n: RouteName, ...a: never[]) => Promise<unknown>)(name, ...args);
    }) as typeof c.tracker.call;
    return calls;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-engine-api-"));
    const store = await openStore(join(dir, "t.db"));
    const service = new TrackerService(store);
    await service.init();
    const { app, port } = await serveTracker(service);
    trackerPort = port;
    closeTracker = async () => {
      await app.close();
      await store.close();
    };
  });

  after(async () => {
    for (const c of clients) await c.close();
    await closeTracker?.();
    await rm(dir, { recursive: true, force: true });
  });

  it("checks the login and the arguments before anything reaches the tracker", async () => {
    const c = await client("checker");
    const calls = spy(c);
    assert.equal(await codeOf(c.engine.call("listFiles", ["g"])), "UNAUTHORIZED");
    assert.equal(await codeOf(c.engine.call("showShares", [])), "UNAUTHORIZED");
    assert.equal(await codeOf(c.engine.call("createUser", ["a/b", "pw"])), "INVALID_ID");
    assert.deepEqual(calls, [], "nothing was asked of the tracker");
    assert.deepEqual(await c.engine.call("createUser", ["checker", "pw"]), { userId: "checker" });
    await c.engine.call("login", ["checker", "pw"]);
    const before = calls.length;
    assert.equal(await codeOf(c.engine.call("downloadFile", ["g", "../evil", dir])), "INVALID_FILE_NAME");
    assert.equal(await codeOf(c.engine.call("acceptRequest", ["g", "bad user"])), "INVALID_ID");
    assert.equal(await codeOf(c.engine.call("listGroups", ["no/prefix"])), "INVALID_ID");
    assert.equal(await codeOf(c.engine.call("listFiles", [] as unknown as [string])), "BAD_REQUEST");
    assert.equal(calls.length, before, calls.slice(before).join(","));
    assert.deepEqual(await c.engine.call("showDownloads", []), { loggedIn: true, downloads: [] });
  });

  it("answers groups, requests, members, files, shares and downloads as values, and tells a download's progress and end as events", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await alice.engine.call("createUser", ["alice", "pw"]);
    await bob.engine.call("createUser", ["bob", "pw"]);
    assert.deepEqual(await alice.engine.call("login", ["alice", "pw"]), {
      userId: "alice",
      reshared: 0,
      resumed: [],
    });
    await bob.engine.call("login", ["bob", "pw"]);
    assert.deepEqual(await alice.engine.call("createGroup", ["g"]), { groupId: "g", owner: "alice" });
    const mine = await alice.engine.call("listGroups", []);
    assert.equal(mine.total, 1);
    assert.deepEqual(
      mine.groups.map((g) => [g.groupId, g.owner, g.role]),
      [["g", "alice", "owner"]],
    );

    assert.deepEqual(await bob.engine.call("joinGroup", ["g"]), { groupId: "g" });
    const { requests } = await alice.engine.call("listRequests", ["g"]);
    assert.deepEqual(
      requests.map((r) => [r.groupId, r.userId, typeof r.requestedAt]),
      [["g", "bob", "number"]],
    );
    assert.deepEqual(await alice.engine.call("acceptRequest", ["g", "bob"]), { groupId: "g", userId: "bob" });

    const size = 2 * PIECE_SIZE + 1234;
    const path = join(dir, "f.bin");
    await writeRandomFile(path, size);
    const hashing: EventOf<"hashing">[] = [];
    const stopHashing = alice.events.on("hashing", (e) => hashing.push(e));
    const up = await alice.engine.call("uploadFile", [path, "g"]);
    stopHashing();
    assert.deepEqual([up.groupId, up.name, up.size, up.pieceCount], ["g", "f.bin", size, 3]);
    assert.ok(hashing.length > 0 && hashing.at(-1)!.done === hashing.at(-1)!.total, JSON.stringify(hashing));

    const files = await bob.engine.call("listFiles", ["g"]);
    assert.deepEqual(
      files.files.map((f) => [f.groupId, f.name, f.size, f.sha1, f.sharersOnline, f.seedersOnline]),
      [["g", "f.bin", size, up.sha1, 1, 1]],
    );

    const seen: EngineEvent[] = [];
    const stop = bob.events.subscribe((e) => seen.push(e));
    const completed = next(bob, "download-complete");
    const started = await bob.engine.call("downloadFile", ["g", "f.bin", `${join(dir, "bob-out")}/`]);
    assert.deepEqual(started, { groupId: "g", name: "f.bin", target: join(dir, "bob-out", "f.bin") });
    const done = (await completed).download;
    stop();
    assert.ok((await readFile(done.target)).equals(await readFile(path)));
    assert.equal(done.state, "complete");
    assert.deepEqual([done.size, done.bytesDone, done.piecesDone, done.pieceCount], [size, size, 3, 3]);
    assert.equal(done.percent, 100);
    assert.equal(done.receivedByPath.direct, size, "every byte came on a direct link");
    const progress = seen.filter((e) => e.type === "download-progress");
    assert.ok(progress.length >= 2, `progress events: ${progress.length}`);
    // told at each change of phase, in order, ending complete
    const phases = progress.map((e) => e.download.state).filter((p, i, all) => p !== all[i - 1]);
    assert.equal(phases.at(-1), "complete", phases.join(","));
    assert.ok(phases.includes("downloading") && phases.includes("verifying"), phases.join(","));
    assert.match(
      eventLine({ type: "download-complete", download: done })!.line,
      /^download complete: \[g\] f\.bin -> /,
    );

    const listed = await bob.engine.call("showDownloads", []);
    assert.ok(listed.loggedIn);
    assert.deepEqual(
      listed.downloads.map((d) => [d.name, d.state]),
      [["f.bin", "complete"]],
    );
    const [share] = await alice.engine.call("showShares", []);
    assert.deepEqual(
      [share!.groupId, share!.name, share!.piecesHave, share!.pieceCount, share!.servedBytes],
      ["g", "f.bin", 3, 3, size],
    );
    assert.deepEqual(await bob.engine.call("stopShare", ["g", "f.bin"]), { groupId: "g", name: "f.bin" });
    assert.deepEqual(await bob.engine.call("showShares", []), []);
  });

  it("tells a join request to an owner who watches, and the acceptance to the one who asked", async () => {
    const olga = await client("olga");
    const pat = await client("pat");
    await olga.engine.call("createUser", ["olga", "pw"]);
    await pat.engine.call("createUser", ["pat", "pw"]);
    await olga.engine.call("login", ["olga", "pw"]);
    await pat.engine.call("login", ["pat", "pw"]);
    await olga.engine.call("createGroup", ["club"]);
    // the first poll learns what is there; only what comes after it is news
    await olga.engine.pollMembership();
    await pat.engine.call("joinGroup", ["club"]);
    await pat.engine.pollMembership();
    const asked = next(olga, "join-request", 5_000);
    await olga.engine.pollMembership();
    const { request } = await asked;
    assert.deepEqual([request.groupId, request.userId], ["club", "pat"]);
    const accepted = next(pat, "request-accepted", 5_000);
    await olga.engine.call("acceptRequest", ["club", "pat"]);
    await pat.engine.pollMembership();
    assert.equal((await accepted).groupId, "club");
    assert.equal(pat.events.size, 0, "every subscription was ended");
  });

  it("polls at the heartbeat only while a front end watches", async () => {
    const c = await client("hearer");
    await c.engine.call("createUser", ["hearer", "pw"]);
    await c.engine.call("login", ["hearer", "pw"]);
    const calls = spy(c);
    const beat = async () => {
      const n = calls.length;
      await c.session.heartbeat();
      return calls.slice(n);
    };
    assert.deepEqual(await beat(), ["heartbeat"]);
    const stop = c.engine.watchMembership();
    assert.deepEqual(await beat(), ["heartbeat", "listGroups"]);
    stop();
    stop(); // twice is once
    assert.deepEqual(await beat(), ["heartbeat"]);
  });
});

describe("EngineEmitter", () => {
  it("delivers by type and to every subscriber, survives a throwing listener, and forgets whoever unsubscribes", () => {
    const errors: unknown[] = [];
    const em = new EngineEmitter((err) => errors.push(err));
    const all: string[] = [];
    const byType: string[] = [];
    const stopAll = em.subscribe((e) => all.push(e.type));
    const stopThrow = em.on("logged-in", () => {
      throw new Error("a front end's bug");
    });
    const stopType = em.on("logged-in", (e) => byType.push(e.userId));
    em.emit({ type: "logged-in", userId: "u" });
    em.emit({ type: "request-accepted", groupId: "g" });
    assert.deepEqual(all, ["logged-in", "request-accepted"]);
    assert.deepEqual(byType, ["u"]);
    assert.equal(errors.length, 1);
    for (const stop of [stopAll, stopThrow, stopType]) stop();
    assert.equal(em.size, 0);
    em.emit({ type: "logged-in", userId: "v" });
    assert.deepEqual(byType, ["u"]);
  });
});

describe("errors as values", () => {
  it("keeps a GsError's code and hint, and calls anything else INTERNAL", () => {
    assert.deepEqual(errorValue(new GsError("NOT_MEMBER", "not a member of g")), {
      code: "NOT_MEMBER",
      message: "not a member of g",
      hint: ERRORS.NOT_MEMBER.hint,
    });
    assert.equal(errorValue(new TypeError("x is undefined")).code, "INTERNAL");
  });
});

describe("the typed call layer", () => {
  it("builds each route's path from its parameters, encoded, and finds the same route again", () => {
    assert.equal(routePath("listFiles", { groupId: "a b/c" }), "/v1/groups/a%20b%2Fc/files");
    assert.equal(
      routePath("announce", { groupId: "g", name: "my file?.bin" }),
      "/v1/groups/g/files/my%20file%3F.bin/shares",
    );
    assert.equal(routePath("listGroups", { prefix: "" }), "/v1/groups");
    assert.equal(routePath("listGroups", { prefix: "mo" }), "/v1/groups?prefix=mo");
    assert.equal(routePath("signals", { after: "0" }), "/v1/signals?after=0");
    assert.equal(routePath("health", undefined), "/v1/health");
    for (const name of Object.keys(ROUTES) as RouteName[]) {
      const params = Object.fromEntries(
        ROUTES[name].path
          .split("/")
          .filter((s) => s.startsWith(":"))
          .map((s) => [s.slice(1), "x y"]),
      );
      const path = routePath(name, params as never);
      assert.equal(findRoute(ROUTES[name].method, path)?.name, name, path);
    }
  });
});
