import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { MAX_BODY_BYTES, MAX_DEVICES_PER_USER } from "../../src/shared/constants.js";
import { ERRORS, type ErrorCode, isErrorCode } from "../../src/shared/errors.js";
import { type TrackerLimits, TrackerService } from "../../src/tracker/service.js";
import { ADDRESS_MAX_BLOCK_MS, USER_MAX_BLOCK_MS } from "../../src/tracker/throttle.js";
import { openStore, type Store } from "../../src/tracker/store/index.js";
import { ROOT } from "../helpers/procs.js";
import { serveTracker, TEST_PEER, trackerCall } from "../helpers/tls.js";

// The tracker's HTTP API in-process over a real SQLite file, with real HTTP on
// 127.0.0.1: bad input is a 4xx with a registry code, never a crash.

interface Answer {
  status: number;
  body: unknown;
}

/** A tracker on 127.0.0.1 port 0 over a fresh SQLite file; `now` is its clock. */
async function startTracker(now?: () => number, limits?: Partial<TrackerLimits>) {
  const dir = await mkdtemp(join(tmpdir(), "gs-api-"));
  const dbPath = join(dir, "tracker.db");
  const store: Store = await openStore(dbPath);
  const service = new TrackerService(store, now, limits);
  await service.init();
  const warnings: string[] = [];
  const { app, port } = await serveTracker(service, (_level, l) => warnings.push(l));

  /** Sends `body` as JSON, or as-is when it is a string (to send malformed JSON). */
  async function call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const r = await trackerCall(port, {
      method,
      path,
      ...(typeof body === "string" ? { rawBody: body } : { body }),
      headers,
      timeoutMs: 15_000,
    });
    return { status: r.status, body: r.text === "" ? undefined : JSON.parse(r.text) };
  }

  async function login(userId: string, password: string): Promise<string> {
    const r = await call("POST", "/v1/sessions", { userId, password, peerAddr: "127.0.0.1:6001" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body as { token: string }).token;
  }

  const close = async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { call, login, close, warnings, dbPath, port };
}

/** An error answer: `{error:{code,message}}` and nothing else, a registry code, its status. */
function assertError(r: Answer, code: ErrorCode, status: number = ERRORS[code].status): void {
  const detail = JSON.stringify(r.body);
  assert.equal(r.status, status, detail);
  const body = r.body as { error?: { code?: unknown; message?: unknown } };
  assert.deepEqual(Object.keys(body), ["error"], detail);
  assert.deepEqual(Object.keys(body.error!).sort(), ["code", "message"], detail);
  assert.ok(isErrorCode(body.error!.code), `not a registry code: ${detail}`);
  assert.equal(body.error!.code, code, detail);
  assert.equal(typeof body.error!.message, "string");
  assert.ok((body.error!.message as string).length > 0);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("tracker API: malformed and hostile requests", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  let aliceToken: string;
  before(async () => {
    t = await startTracker();
    assert.equal((await t.call("POST", "/v1/users", { userId: "alice", password: "pw" })).status, 201);
    aliceToken = await t.login("alice", "pw");
  });
  after(() => t.close());

  it("answers malformed JSON with 400 BAD_REQUEST and logs a warning", async () => {
    const before = t.warnings.length;
    for (const raw of ['{"userId": "bob", ', "{userId: 'bob'}", "nul", '{"a":1}}']) {
      assertError(await t.call("POST", "/v1/users", raw), "BAD_REQUEST");
    }
    assertError(await t.call("POST", "/v1/groups", "{", bearer(aliceToken)), "BAD_REQUEST");
    assert.ok(t.warnings.length >= before + 5);
    assert.ok(
      t.warnings.slice(before).every((l) => /^warning: .*400 BAD_REQUEST/.test(l)),
      t.warnings.join("\n"),
    );
  });

  it("answers an empty body or a body that is not JSON with 400", async () => {
    assertError(await t.call("POST", "/v1/users", ""), "BAD_REQUEST");
    assertError(
      await t.call("POST", "/v1/users", "userId=bob&password=pw", {
        "content-type": "application/x-www-form-urlencoded",
      }),
      "BAD_REQUEST",
    );
    assertError(
      await t.call("POST", "/v1/users", '{"userId":"bob","password":"pw"}', { "content-type": "text/plain" }),
      "BAD_REQUEST",
    );
  });

  it("answers a body over MAX_BODY_BYTES with 413 BODY_TOO_LARGE", async () => {
    const big = JSON.stringify({ userId: "bob", password: "x".repeat(MAX_BODY_BYTES) });
    assert.ok(Buffer.byteLength(big) > MAX_BODY_BYTES);
    assertError(await t.call("POST", "/v1/users", big), "BODY_TOO_LARGE");
    // and the tracker serves the next request
    assert.equal((await t.call("GET", "/v1/health")).status, 200);
  });

  it("refuses wrong types, missing fields and unknown fields with 400", async () => {
    const bodies: unknown[] = [
      { userId: 5, password: "pw" },
      { userId: "bob", password: null },
      { userId: ["bob"], password: "pw" },
      { userId: "bob" },
      {},
      [],
      "just a string",
      { userId: "bob", password: "pw", admin: true },
      { userId: "bob", password: "" },
      { userId: "x".repeat(257), password: "pw" },
    ];
    for (const b of bodies) {
      assertError(await t.call("POST", "/v1/users", JSON.stringify(b)), "BAD_REQUEST");
    }
    // within the schema's bound, the id rule itself answers
    assertError(await t.call("POST", "/v1/users", { userId: "x".repeat(33), password: "pw" }), "INVALID_ID");
    assertError(
      await t.call("POST", "/v1/sessions", { userId: "alice", password: "pw", peerAddr: "nowhere" }),
      "BAD_REQUEST",
    );
    assertError(
      await t.call("POST", "/v1/groups", { groupId: "g", owner: "mallory" }, bearer(aliceToken)),
      "BAD_REQUEST",
    );
    assertError(await t.call("POST", "/v1/groups", { groupId: 7 }, bearer(aliceToken)), "BAD_REQUEST");
    assertError(
      await t.call("POST", "/v1/groups/g/requests", { extra: 1 }, bearer(aliceToken)),
      "BAD_REQUEST",
    );
    // nothing of the above was created
    assertError(
      await t.call("POST", "/v1/sessions", { userId: "bob", password: "pw", peerAddr: "127.0.0.1:1" }),
      "WRONG_PASSWORD",
    );
  });

  it("refuses ids outside the id rule with INVALID_ID", async () => {
    for (const userId of ["bad/id", "sp ace", "a*b", "ünï", "a\u0000b"]) {
      assertError(await t.call("POST", "/v1/users", { userId, password: "pw" }), "INVALID_ID");
    }
    assertError(await t.call("POST", "/v1/groups", { groupId: "a;b" }, bearer(aliceToken)), "INVALID_ID");
    assertError(
      await t.call("POST", `/v1/groups/${encodeURIComponent("a b")}/requests`, {}, bearer(aliceToken)),
      "INVALID_ID",
    );
  });

  it("answers a missing, forged or ended session with 401 UNAUTHORIZED", async () => {
    assertError(await t.call("GET", "/v1/groups"), "UNAUTHORIZED");
    assertError(await t.call("GET", "/v1/groups", undefined, bearer("forged-token")), "UNAUTHORIZED");
    assertError(
      await t.call("GET", "/v1/groups", undefined, { authorization: `Basic ${aliceToken}` }),
      "UNAUTHORIZED",
    );
    assertError(await t.call("GET", "/v1/groups", undefined, { authorization: aliceToken }), "UNAUTHORIZED");
    assertError(await t.call("POST", "/v1/groups", { groupId: "g" }), "UNAUTHORIZED");
    assertError(await t.call("POST", "/v1/heartbeat", {}), "UNAUTHORIZED");
    assertError(await t.call("POST", "/v1/heartbeat", {}, bearer("forged")), "UNAUTHORIZED");
    assertError(await t.call("DELETE", "/v1/sessions"), "UNAUTHORIZED");
    // a token works until logout, then it is refused
    const token = await t.login("alice", "pw");
    assert.equal((await t.call("GET", "/v1/groups", undefined, bearer(token))).status, 200);
    assertError(await t.call("GET", "/v1/groups", undefined, bearer(aliceToken)), "UNAUTHORIZED"); // moved
    assert.equal((await t.call("DELETE", "/v1/sessions", undefined, bearer(token))).status, 200);
    assertError(await t.call("GET", "/v1/groups", undefined, bearer(token)), "UNAUTHORIZED");
    aliceToken = await t.login("alice", "pw");
  });

  it("answers an unknown route with a registry error body", async () => {
    const r = await t.call("GET", "/v1/nothing-here");
    assert.equal(r.status, 404);
    const body = r.body as { error: { code: unknown; message: unknown } };
    assert.ok(isErrorCode(body.error.code));
    assert.equal(body.error.code, "NO_ROUTE");
    assert.equal(typeof body.error.message, "string");
  });
});

describe("tracker API: the rules of accounts and groups", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  const token: Record<string, string> = {};
  const as = (u: string) => bearer(token[u]!);
  before(async () => {
    t = await startTracker();
    for (const u of ["alice", "bob", "carol"]) {
      assert.equal((await t.call("POST", "/v1/users", { userId: u, password: `pw-${u}` })).status, 201);
      token[u] = await t.login(u, `pw-${u}`);
    }
  });
  after(() => t.close());

  it("keeps user and group ids unique and checks passwords", async () => {
    assertError(await t.call("POST", "/v1/users", { userId: "alice", password: "x" }), "USER_EXISTS");
    assertError(
      await t.call("POST", "/v1/sessions", { userId: "alice", password: "nope", peerAddr: "127.0.0.1:6001" }),
      "WRONG_PASSWORD",
    );
    // an unknown user gets the same answer as a wrong password
    assertError(
      await t.call("POST", "/v1/sessions", { userId: "zed", password: "nope", peerAddr: "127.0.0.1:6001" }),
      "WRONG_PASSWORD",
    );
    token.alice = await t.login("alice", "pw-alice"); // a success clears the failures
    assert.equal((await t.call("POST", "/v1/groups", { groupId: "g" }, as("alice"))).status, 201);
    assertError(await t.call("POST", "/v1/groups", { groupId: "g" }, as("bob")), "GROUP_EXISTS");
  });

  it("lets only the owner list and accept; refuses joining twice and accepting twice", async () => {
    assertError(await t.call("POST", "/v1/groups/nosuch/requests", {}, as("bob")), "GROUP_NOT_FOUND");
    assertError(await t.call("POST", "/v1/groups/g/requests", {}, as("alice")), "ALREADY_MEMBER");
    assert.equal((await t.call("POST", "/v1/groups/g/requests", {}, as("bob"))).status, 201);
    assertError(await t.call("POST", "/v1/groups/g/requests", {}, as("bob")), "REQUEST_EXISTS");
    assert.equal((await t.call("POST", "/v1/groups/g/requests", {}, as("carol"))).status, 201);
    assertError(await t.call("GET", "/v1/groups/g/requests", undefined, as("bob")), "NOT_OWNER");
    assertError(await t.call("POST", "/v1/groups/g/requests/carol/accept", {}, as("bob")), "NOT_OWNER");
    const r = await t.call("GET", "/v1/groups/g/requests", undefined, as("alice"));
    assert.deepEqual(
      (r.body as { requests: { userId: string }[] }).requests.map((q) => q.userId),
      ["bob", "carol"],
    );
    // carol is accepted first: she joined earliest
    assert.equal((await t.call("POST", "/v1/groups/g/requests/carol/accept", {}, as("alice"))).status, 200);
    assertError(
      await t.call("POST", "/v1/groups/g/requests/carol/accept", {}, as("alice")),
      "ALREADY_MEMBER",
    );
    assertError(
      await t.call("POST", "/v1/groups/g/requests/zed/accept", {}, as("alice")),
      "REQUEST_NOT_FOUND",
    );
    assert.equal((await t.call("POST", "/v1/groups/g/requests/bob/accept", {}, as("alice"))).status, 200);
    assertError(await t.call("POST", "/v1/groups/g/requests", {}, as("bob")), "ALREADY_MEMBER");
  });

  it("hands the group to the earliest-joined member and deletes it with its last member", async () => {
    const leave = async (u: string) => {
      const r = await t.call("POST", "/v1/groups/g/leave", {}, as(u));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as { newOwner?: string; deleted: boolean };
    };
    assert.deepEqual(await leave("alice"), { newOwner: "carol", deleted: false });
    assertError(await t.call("POST", "/v1/groups/g/leave", {}, as("alice")), "NOT_MEMBER");
    assert.deepEqual(await leave("carol"), { newOwner: "bob", deleted: false });
    assert.deepEqual(await leave("bob"), { deleted: true });
    const groups = await t.call("GET", "/v1/groups", undefined, as("bob"));
    assert.deepEqual((groups.body as { groups: unknown[] }).groups, []);
    assertError(await t.call("GET", "/v1/groups/g/requests", undefined, as("bob")), "GROUP_NOT_FOUND");
  });
});

describe("tracker API: login throttle", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  let clock = Date.UTC(2030, 0, 1);
  before(async () => {
    t = await startTracker(() => clock); // the clock stands still unless the test moves it
    assert.equal((await t.call("POST", "/v1/users", { userId: "alice", password: "right" })).status, 201);
  });
  after(() => t.close());

  const attempt = (password: string) =>
    t.call("POST", "/v1/sessions", { userId: "alice", password, peerAddr: "127.0.0.1:6001" });

  it("refuses the 6th attempt after 5 wrong passwords with 429, even with the right password", async () => {
    for (let i = 0; i < 5; i++) assertError(await attempt(`wrong-${i}`), "WRONG_PASSWORD");
    assertError(await attempt("right"), "TOO_MANY_ATTEMPTS");
    assertError(await attempt("right"), "TOO_MANY_ATTEMPTS");
    // once the wait is over, the right password works again
    clock += 60_000;
    assert.equal((await attempt("right")).status, 200);
  });
});

describe("tracker API: login throttle limits", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  let clock = Date.UTC(2030, 0, 1);
  before(async () => {
    t = await startTracker(() => clock);
    assert.equal((await t.call("POST", "/v1/users", { userId: "vic", password: "right" })).status, 201);
  });
  after(() => t.close());

  it("caps a user's block at a minute, however many failures", async () => {
    for (let i = 0; i < 30; i++) {
      assertError(
        await t.call("POST", "/v1/sessions", { userId: "vic", password: `no-${i}`, peerAddr: "127.0.0.1:1" }),
        "WRONG_PASSWORD",
      );
      clock += 15 * 60_000; // past every block, the address's too
    }
    clock -= 15 * 60_000;
    const db = new Database(t.dbPath, { readonly: true });
    const row = (key: string) =>
      db.prepare("SELECT failures, blocked_until FROM login_attempts WHERE throttle_key = ?").get(key) as {
        failures: number;
        blocked_until: number;
      };
    try {
      assert.equal(row("u:vic").failures, 30);
      assert.equal(row("u:vic").blocked_until - clock, USER_MAX_BLOCK_MS);
      // the address guessed 30 times: its own, longer cap
      assert.equal(row("a:127.0.0.1").blocked_until - clock, ADDRESS_MAX_BLOCK_MS);
    } finally {
      db.close();
    }
    clock += ADDRESS_MAX_BLOCK_MS;
    assert.equal(
      (await t.call("POST", "/v1/sessions", { userId: "vic", password: "right", peerAddr: "127.0.0.1:1" }))
        .status,
      200,
    );
  });
});

describe("tracker API: remembered devices", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  let clock = Date.UTC(2030, 0, 1);
  before(async () => {
    t = await startTracker(() => clock);
    for (const u of ["alice", "bob", "carol", "dave", "erin"]) {
      assert.equal((await t.call("POST", "/v1/users", { userId: u, password: `pw-${u}` })).status, 201);
    }
  });
  after(() => t.close());

  interface Device {
    deviceId: string;
    secret: string;
  }

  /** A password login that asks to remember the device: its token and credential. */
  async function remember(userId: string, name = "nas"): Promise<{ token: string; device: Device }> {
    const r = await t.call("POST", "/v1/sessions", {
      userId,
      password: `pw-${userId}`,
      peerAddr: "127.0.0.1:6001",
      remember: { name },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { token: string; device: Device };
  }

  const deviceLogin = (userId: string, d: Device, from = "127.0.0.1:6002") =>
    t.call("POST", "/v1/sessions/device", {
      userId,
      deviceId: d.deviceId,
      secret: d.secret,
      peerAddr: from,
      peerKey: TEST_PEER.publicKey,
    });

  /** The same refusal whatever was wrong: nothing tells a guesser which part was. */
  function assertRefused(r: Answer): void {
    assertError(r, "DEVICE_REFUSED");
    assert.equal(
      (r.body as { error: { message: string } }).error.message,
      "this remembered login was revoked, or is not one of this user's",
    );
  }

  it("answers a login that asks to be remembered with a credential that logs in again without the password", async () => {
    const { token, device } = await remember("alice", "living-room NAS");
    assert.match(device.deviceId, /^[0-9a-f]{32}$/);
    assert.match(device.secret, /^[A-Za-z0-9_-]{43}$/);
    const created = clock;
    clock += 60_000;
    const r = await deviceLogin("alice", device, "127.0.0.1:7007");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const again = r.body as { token: string; userId: string };
    assert.equal(again.userId, "alice");
    // a session like a password login's: it replaced the earlier one
    assert.equal((await t.call("GET", "/v1/groups", undefined, bearer(again.token))).status, 200);
    assertError(await t.call("GET", "/v1/groups", undefined, bearer(token)), "UNAUTHORIZED");
    const listed = await t.call("GET", "/v1/devices", undefined, bearer(again.token));
    assert.deepEqual(listed.body, {
      devices: [{ deviceId: device.deviceId, name: "living-room NAS", createdAt: created, lastUsed: clock }],
    });
    // a plain login remembers nothing
    const plain = await t.call("POST", "/v1/sessions", {
      userId: "alice",
      password: "pw-alice",
      peerAddr: "127.0.0.1:6001",
    });
    assert.equal((plain.body as { device?: unknown }).device, undefined);
    const after = await t.call(
      "GET",
      "/v1/devices",
      undefined,
      bearer((plain.body as { token: string }).token),
    );
    assert.equal((after.body as { devices: unknown[] }).devices.length, 1);
  });

  it("refuses a wrong secret, an unknown device and another user's credential with one answer", async () => {
    const { device } = await remember("bob");
    const { device: carols } = await remember("carol");
    const wrong = {
      ...device,
      secret: `${device.secret.slice(0, -1)}${device.secret.endsWith("A") ? "B" : "A"}`,
    };
    assertRefused(await deviceLogin("bob", wrong));
    assertRefused(await deviceLogin("bob", { ...device, deviceId: "0".repeat(32) }));
    // bob's credential names bob: it logs in as nobody else
    assertRefused(await deviceLogin("carol", device));
    assertRefused(await deviceLogin("carol", { ...carols, secret: device.secret }));
    assertRefused(await deviceLogin("nobody", device));
    assert.equal((await deviceLogin("bob", device)).status, 200);
    assert.equal((await deviceLogin("carol", carols)).status, 200);
  });

  it("refuses a revoked device: revoked by its id, or by a logout that forgets it", async () => {
    const first = await remember("dave", "old laptop");
    const second = await remember("dave", "new laptop");
    const token = second.token;
    // another user cannot revoke dave's device, nor learn it exists
    const eve = await remember("erin");
    assertError(
      await t.call("DELETE", `/v1/devices/${first.device.deviceId}`, undefined, bearer(eve.token)),
      "DEVICE_NOT_FOUND",
    );
    assert.equal(
      (await t.call("DELETE", `/v1/devices/${first.device.deviceId}`, undefined, bearer(token))).status,
      200,
    );
    assertError(
      await t.call("DELETE", `/v1/devices/${first.device.deviceId}`, undefined, bearer(token)),
      "DEVICE_NOT_FOUND",
    );
    assertRefused(await deviceLogin("dave", first.device));
    // the logout that forgets this device: the session ends and the credential is refused
    const d = await deviceLogin("dave", second.device);
    const devToken = (d.body as { token: string }).token;
    assert.equal(
      (await t.call("DELETE", `/v1/sessions?device=${second.device.deviceId}`, undefined, bearer(devToken)))
        .status,
      200,
    );
    assertError(await t.call("GET", "/v1/groups", undefined, bearer(devToken)), "UNAUTHORIZED");
    assertRefused(await deviceLogin("dave", second.device));
    // a logout that names another user's device revokes nothing of theirs
    const daveAgain = await remember("dave");
    assert.equal(
      (
        await t.call(
          "DELETE",
          `/v1/sessions?device=${eve.device.deviceId}`,
          undefined,
          bearer(daveAgain.token),
        )
      ).status,
      200,
    );
    assert.equal((await deviceLogin("erin", eve.device)).status, 200);
    // and a plain logout keeps the device: quitting a headless client is not forgetting it
    const e = await deviceLogin("erin", eve.device);
    assert.equal(
      (await t.call("DELETE", "/v1/sessions", undefined, bearer((e.body as { token: string }).token))).status,
      200,
    );
    assert.equal((await deviceLogin("erin", eve.device)).status, 200);
  });

  it("makes no device from a device's session: a stolen credential cannot outlive its revocation", async () => {
    const { device } = await remember("alice");
    const r = await deviceLogin("alice", device);
    const token = (r.body as { token: string }).token;
    assertError(await t.call("POST", "/v1/devices", { name: "spare" }, bearer(token)), "NO_ROUTE");
    // nor does the device login take a `remember`
    assertError(
      await t.call("POST", "/v1/sessions/device", {
        userId: "alice",
        ...device,
        peerAddr: "127.0.0.1:1",
        peerKey: TEST_PEER.publicKey,
        remember: { name: "spare" },
      }),
      "BAD_REQUEST",
    );
  });

  it("throttles device logins as it does password logins", async () => {
    const { device } = await remember("carol");
    // from an address carol never logged in from: the throttle's rules for strangers
    const stranger = (path: string, body: object) =>
      trackerCall(t.port, { method: "POST", path, body, localAddress: "127.0.9.9", timeoutMs: 15_000 });
    const guess = (d: Device) =>
      stranger("/v1/sessions/device", {
        userId: "carol",
        ...d,
        peerAddr: "127.0.9.9:1",
        peerKey: TEST_PEER.publicKey,
      });
    for (let i = 0; i < 5; i++) {
      const r = await guess({ ...device, deviceId: i.toString(16).repeat(32) });
      assert.equal(r.code, "DEVICE_REFUSED", r.text);
    }
    const blocked = await guess(device);
    assert.equal(blocked.code, "TOO_MANY_ATTEMPTS", blocked.text);
    // the guesses count against carol's password logins from strangers too
    const pw = await stranger("/v1/sessions", {
      userId: "carol",
      password: "pw-carol",
      peerAddr: "127.0.9.9:1",
    });
    assert.equal(pw.code, "TOO_MANY_ATTEMPTS", pw.text);
    clock += 60_000;
    const later = await guess(device);
    assert.equal(later.status, 200, later.text);
  });

  it(`keeps at most ${MAX_DEVICES_PER_USER} devices a user; a refused one leaves the session alone`, async () => {
    const u = "bob";
    const listed = async (token: string) =>
      ((await t.call("GET", "/v1/devices", undefined, bearer(token))).body as { devices: unknown[] }).devices;
    let { token } = await remember(u);
    for (let n = (await listed(token)).length; n < MAX_DEVICES_PER_USER; n++)
      token = (await remember(u)).token;
    const over = await t.call("POST", "/v1/sessions", {
      userId: u,
      password: `pw-${u}`,
      peerAddr: "127.0.0.1:6001",
      remember: { name: "one too many" },
    });
    assertError(over, "QUOTA_EXCEEDED");
    assert.equal((await t.call("GET", "/v1/groups", undefined, bearer(token))).status, 200);
    assert.equal((await listed(token)).length, MAX_DEVICES_PER_USER);
  });

  it("refuses malformed device requests with 400", async () => {
    const { token, device } = await remember("erin");
    const body = { userId: "erin", ...device, peerAddr: "127.0.0.1:1", peerKey: TEST_PEER.publicKey };
    for (const bad of [
      { ...body, deviceId: "NOT-HEX".padEnd(32, "x") },
      { ...body, secret: "short" },
      { ...body, secret: undefined },
      { ...body, password: "pw-erin" },
    ]) {
      assertError(await t.call("POST", "/v1/sessions/device", bad), "BAD_REQUEST");
    }
    for (const name of ["", "x".repeat(65), "evil\u001b[2Jname", "rtl\u202eman"]) {
      assertError(
        await t.call("POST", "/v1/sessions", {
          userId: "erin",
          password: "pw-erin",
          peerAddr: "127.0.0.1:1",
          remember: { name },
        }),
        "BAD_REQUEST",
      );
    }
    assertError(await t.call("DELETE", "/v1/devices/nothex", undefined, bearer(token)), "BAD_REQUEST");
    assertError(
      await t.call("DELETE", "/v1/sessions?device=nothex", undefined, bearer(token)),
      "BAD_REQUEST",
    );
  });
});

describe("tracker API: per-user quotas", () => {
  let t: Awaited<ReturnType<typeof startTracker>>;
  let token: string;
  const file = (name: string, seed: number) => ({
    name,
    size: 1,
    sha1: seed.toString(16).padStart(40, "0"),
    pieces: Buffer.alloc(20, seed).toString("base64"),
  });
  before(async () => {
    t = await startTracker(undefined, { quotas: { groups: 2, files: 3, pieceBytes: 1_000 } });
    assert.equal((await t.call("POST", "/v1/users", { userId: "q", password: "pw" })).status, 201);
    token = await t.login("q", "pw");
  });
  after(() => t.close());

  it("refuses a group or a file past the quota with QUOTA_EXCEEDED, even when sent in parallel", async () => {
    const groups = await Promise.all(
      ["a", "b", "c", "d", "e"].map((g) => t.call("POST", "/v1/groups", { groupId: g }, bearer(token))),
    );
    assert.equal(groups.filter((r) => r.status === 201).length, 2);
    for (const r of groups.filter((r) => r.status !== 201)) assertError(r, "QUOTA_EXCEEDED");
    const owned = groups.findIndex((r) => r.status === 201);
    const g = ["a", "b", "c", "d", "e"][owned]!;
    const files = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => t.call("POST", `/v1/groups/${g}/files`, file(`f${i}`, i), bearer(token))),
    );
    assert.equal(files.filter((r) => r.status === 201).length, 3);
    for (const r of files.filter((r) => r.status !== 201)) assertError(r, "QUOTA_EXCEEDED");
  });
});

describe("tracker API: what the store keeps", () => {
  it("stores passwords as salted scrypt hashes and session tokens only as hashes", async () => {
    const t = await startTracker();
    try {
      const same = "correct horse battery staple";
      for (const u of ["alice", "bob"]) {
        assert.equal((await t.call("POST", "/v1/users", { userId: u, password: same })).status, 201);
      }
      const token = await t.login("alice", same);
      const db = new Database(t.dbPath, { readonly: true });
      try {
        const users = db.prepare("SELECT user_id, password_hash FROM users ORDER BY user_id").all() as {
          user_id: string;
          password_hash: string;
        }[];
        assert.deepEqual(
          users.map((u) => u.user_id),
          ["alice", "bob"],
        );
        for (const u of users) {
          assert.match(u.password_hash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
          assert.ok(!u.password_hash.includes(same));
        }
        assert.notEqual(users[0]!.password_hash, users[1]!.password_hash, "a salt per user");
        const dump = JSON.stringify(db.prepare("SELECT * FROM sessions").all());
        assert.ok(!dump.includes(token), "the token is not stored as is");
        for (const file of [t.dbPath, `${t.dbPath}-wal`].filter((f) => existsSync(f))) {
          assert.ok(!readFileSync(file).includes(Buffer.from(same)), `no plaintext password in ${file}`);
        }
      } finally {
        db.close();
      }
    } finally {
      await t.close();
    }
  });
});

describe("tracker API: what the store keeps of a remembered device", () => {
  it("keeps only a hash of the device's secret: neither the database nor its journal holds it", async () => {
    const t = await startTracker();
    try {
      assert.equal((await t.call("POST", "/v1/users", { userId: "alice", password: "pw" })).status, 201);
      const r = await t.call("POST", "/v1/sessions", {
        userId: "alice",
        password: "pw",
        peerAddr: "127.0.0.1:6001",
        remember: { name: "nas" },
      });
      const { secret, deviceId } = (r.body as { device: { secret: string; deviceId: string } }).device;
      const db = new Database(t.dbPath, { readonly: true });
      try {
        const rows = db.prepare("SELECT * FROM devices").all() as Record<string, unknown>[];
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.device_id, deviceId);
        assert.ok(!JSON.stringify(rows).includes(secret), "the secret is not stored as is");
      } finally {
        db.close();
      }
      const forms = [
        secret,
        Buffer.from(secret, "base64url").toString("hex"),
        Buffer.from(secret, "base64url").toString("base64"),
      ];
      const files = [t.dbPath, `${t.dbPath}-wal`].filter((f) => existsSync(f));
      // the device's row is in these bytes (in the journal until a checkpoint): the right place is searched
      assert.ok(files.some((f) => readFileSync(f).includes(Buffer.from(deviceId))));
      for (const file of files) {
        const bytes = readFileSync(file);
        for (const form of forms) assert.ok(!bytes.includes(Buffer.from(form)), `no secret in ${file}`);
        assert.ok(!bytes.includes(Buffer.from(secret, "base64url")), `no raw secret in ${file}`);
      }
    } finally {
      await t.close();
    }
  });
});

describe("error registry", () => {
  it("gives every code an HTTP error status and a hint that says what to do", () => {
    for (const [code, e] of Object.entries(ERRORS)) {
      assert.match(code, /^[A-Z][A-Z_]+$/);
      assert.ok(e.status >= 400 && e.status <= 599, `${code}: status ${e.status}`);
      assert.equal(typeof e.hint, "string", code);
      assert.ok(e.hint.trim().length >= 10, `${code}: hint '${e.hint}'`);
    }
  });

  it("is documented: the README mentions every code", (t) => {
    const readme = join(ROOT, "README.md");
    if (!existsSync(readme)) {
      t.skip("no README.md yet");
      return;
    }
    const text = readFileSync(readme, "utf8");
    const missing = Object.keys(ERRORS).filter((code) => !text.includes(`\`${code}\``));
    assert.deepEqual(missing, [], "codes missing from README.md");
  });
});
