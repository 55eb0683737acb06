/**
 * Both ends of the route contract (shared/api.ts): the tracker authenticates every
 * route not declared public, and the client turns a malformed or hostile answer
 * into a clear error that names the tracker, with the tracker's words escaped.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GroupshareClient } from "../../src/client/client.js";
import { TrackerClient } from "../../src/client/tracker/trackerClient.js";
import Database from "better-sqlite3";
import { ROUTES } from "../../src/shared/api.js";
import { validate } from "../../src/shared/schema.js";
import { GsError } from "../../src/shared/errors.js";
import { TrackerService } from "../../src/tracker/service.js";
import { openStore } from "../../src/tracker/store/index.js";
import { serveTracker, TEST_PEER, tlsIdentity, trackerCall } from "../helpers/tls.js";

describe("the tracker authenticates every route the contract does not declare public", () => {
  let dir: string;
  let port: number;
  let close: () => Promise<void>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-contract-"));
    const store = await openStore(join(dir, "t.db"));
    const service = new TrackerService(store);
    await service.init();
    const served = await serveTracker(service);
    const app = served.app;
    port = served.port;
    close = async () => {
      await app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    };
  });
  after(() => close());

  const send = async (method: string, path: string, token?: string) => {
    const res = await trackerCall(port, {
      method,
      path: path.replaceAll(/:[A-Za-z]+/g, "x"),
      token,
      ...(method === "POST" && { body: {} }),
      timeoutMs: 10_000,
    });
    return { status: res.status, body: res.body as { error?: { code: string } } };
  };

  it("answers 401 UNAUTHORIZED on every non-public route without a token, or with a forged one", async () => {
    const guarded = Object.values(ROUTES).filter((r) => !("public" in r));
    assert.ok(guarded.length >= 15);
    for (const r of guarded) {
      for (const token of [undefined, "forged"]) {
        const a = await send(r.method, r.path, token);
        assert.equal(
          a.status,
          401,
          `${r.method} ${r.path} (${token ?? "no token"}): ${JSON.stringify(a.body)}`,
        );
        assert.equal(a.body.error?.code, "UNAUTHORIZED");
      }
    }
  });

  it("lists no file whose name today's rule refuses (registered by an older tracker)", async () => {
    const j = async (method: string, path: string, body?: unknown, token?: string) => {
      const res = await trackerCall(port, { method, path, body, token, timeoutMs: 10_000 });
      return res.body as Record<string, unknown>;
    };
    await j("POST", "/v1/users", { userId: "old", password: "pw" });
    const { token } = (await j("POST", "/v1/sessions", {
      userId: "old",
      password: "pw",
      peerAddr: "127.0.0.1:1",
    })) as {
      token: string;
    };
    await j("POST", "/v1/groups", { groupId: "legacy" }, token);
    const sha1 = "a".repeat(40);
    await j(
      "POST",
      "/v1/groups/legacy/files",
      { name: "fine.txt", size: 1, sha1, pieces: Buffer.alloc(20).toString("base64") },
      token,
    );
    const db = new Database(join(dir, "t.db"));
    try {
      for (const name of ["invoice\u202etxt.exe", "line\u2028break", "cafe\u0301.txt"]) {
        db.prepare(
          "INSERT INTO files (group_id, name, size, sha1, file_id, pieces, added_by, added_at) VALUES ('legacy', ?, 1, ?, ?, ?, 'old', 0)",
        ).run(name, sha1, "b".repeat(40), Buffer.alloc(20));
      }
    } finally {
      db.close();
    }
    const answer = await j("GET", "/v1/groups/legacy/files", undefined, token);
    assert.deepEqual(
      (answer.files as { name: string }[]).map((f) => f.name),
      ["fine.txt"],
    );
    assert.equal(validate(ROUTES.listFiles.response, answer), undefined);
  });

  it("serves the public routes without a token", async () => {
    for (const r of Object.values(ROUTES).filter((r) => "public" in r)) {
      const a = await send(r.method, r.path);
      assert.notEqual(a.status, 401, `${r.method} ${r.path}`);
    }
  });
});

describe("the client checks every tracker answer against the contract", () => {
  /** The fake tracker's TLS identity, pinned by the clients below. */
  const fake = tlsIdentity();
  let server: Server;
  let port: number;
  /** What the fake tracker answers next: status and raw body. */
  let next: { status: number; body: string | Buffer } = { status: 200, body: "{}" };
  const sources: string[] = [];
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-hostile-"));
    server = createHttpsServer(fake.server, (req: IncomingMessage, res: ServerResponse) => {
      sources.push(req.socket.remoteAddress ?? "");
      req.resume();
      res.writeHead(next.status, { "content-type": "application/json" }).end(next.body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const client = (localAddress?: string) =>
    new TrackerClient({
      trackers: [{ no: 1, host: "127.0.0.1", port, fingerprint: fake.fingerprint }],
      localAddress,
    });

  async function refused(path: string, body: string | Buffer, status = 200): Promise<GsError> {
    next = { status, body };
    const t = client();
    try {
      await t.callPath("GET", path);
    } catch (err) {
      assert.ok(err instanceof GsError, String(err));
      return err;
    } finally {
      t.close();
    }
    assert.fail(`accepted ${String(body).slice(0, 80)}`);
  }

  it("turns {} and wrong types into BAD_TRACKER_ANSWER naming the tracker", async () => {
    for (const [body, what] of [
      ["{}", /'groups' is missing/],
      ['{"total": 1, "groups": "all of them"}', /answer\.groups: expected a list/],
      [
        '{"total": 1, "groups": [{"groupId": "g", "owner": "o", "members": "many", "role": "owner"}]}',
        /members/,
      ],
      ['{"total": 1, "groups": [{"groupId": "g", "owner": "o", "members": 1, "role": "admin"}]}', /role/],
      ['{"groups": []}', /'total' is missing/],
      ["[]", /expected an object/],
      ["null", /expected an object/],
      ["not json at all", /not JSON/],
    ] as const) {
      const e = await refused("/v1/groups", body);
      assert.equal(e.code, "BAD_TRACKER_ANSWER", body);
      assert.match(e.message, new RegExp(`^tracker 1 at 127\\.0\\.0\\.1:${port} sent a malformed answer`));
      assert.match(e.message, what);
    }
  });

  it("refuses ids, names and addresses that break their rules (what would reach a terminal)", async () => {
    const f = { size: 1, sha1: "a".repeat(40), fileId: "b".repeat(40), sharersOnline: 0, seedersOnline: 0 };
    for (const [path, body] of [
      [
        "/v1/groups",
        { total: 1, groups: [{ groupId: "\u001b[31mred", owner: "o", members: 1, role: "owner" }] },
      ],
      ["/v1/groups", { total: 1, groups: [{ groupId: "g", owner: "a b", members: 1, role: "owner" }] }],
      ["/v1/groups/g/files", { files: [{ ...f, name: "invoice\u202etxt.exe" }] }],
      ["/v1/groups/g/files", { files: [{ ...f, name: "c1\u009bcontrol" }] }],
      ["/v1/groups/g/files", { files: [{ ...f, name: "zero\u200bwidth" }] }],
    ] as const) {
      const e = await refused(path, JSON.stringify(body));
      assert.equal(e.code, "BAD_TRACKER_ANSWER", JSON.stringify(body));
    }
    next = {
      status: 200,
      body: JSON.stringify({
        ticket: "t",
        ticketExpires: 1,
        peers: [{ userId: "u", addr: "127.0.0.1:1\r\nX", key: TEST_PEER.publicKey, complete: true }],
      }),
    };
    const t = client();
    await assert.rejects(t.call("peers", { groupId: "g", name: "f" }, {}), /addr/);
    t.close();
  });

  it("refuses a list longer than the contract's bound, and an answer over the byte bound", async () => {
    const many = JSON.stringify({ peers: [], ticket: "t", ticketExpires: 1 }).replace(
      '"peers":[]',
      `"peers":[${Array(10_001).fill(`{"userId":"u","addr":"127.0.0.1:1","key":"${TEST_PEER.publicKey}","complete":true}`).join(",")}]`,
    );
    next = { status: 200, body: many };
    const t = client();
    await assert.rejects(t.call("peers", { groupId: "g", name: "f" }, {}), (err: unknown) => {
      assert.ok(err instanceof GsError);
      assert.equal(err.code, "BAD_TRACKER_ANSWER");
      assert.match(err.message, /more than 10000 items/);
      return true;
    });
    const huge = Buffer.alloc(17 * 1024 * 1024, 0x20);
    const big = await refused("/v1/groups", huge);
    assert.equal(big.code, "BAD_TRACKER_ANSWER");
    assert.match(big.message, /over the \d+-byte bound/);
    t.close();
  });

  it("prints a tracker's error message escaped, and keeps only registry codes", async () => {
    const hostile = JSON.stringify({
      error: { code: "NOT_MEMBER", message: "\u001b[2J\u001b]0;owned\u0007\u202eevil" },
    });
    const e = await refused("/v1/groups", hostile, 403);
    assert.equal(e.code, "NOT_MEMBER");
    assert.ok(!/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/.test(e.message), JSON.stringify(e.message));
    assert.match(e.message, /\\x1b\[2J/);
    const unknown = await refused(
      "/v1/groups",
      JSON.stringify({ error: { code: "PWNED", message: "x" } }),
      400,
    );
    assert.equal(unknown.code, "INTERNAL");
  });

  it("a whole client: login against a tracker that answers {} is a clear error", async () => {
    next = { status: 200, body: "{}" };
    const c = new GroupshareClient({
      trackers: [{ no: 1, host: "127.0.0.1", port }],
      host: "127.0.0.1",
      port: 9,
      stateDir: join(dir, "state"),
    });
    await assert.rejects(c.engine.call("login", ["u", "pw"]), (err: unknown) => {
      assert.ok(err instanceof GsError);
      assert.equal(err.code, "BAD_TRACKER_ANSWER");
      assert.match(err.message, /tracker 1 at 127\.0\.0\.1:\d+ .*'token' is missing/);
      return true;
    });
    await c.close();
  });

  it("asks again on a new connection when a kept-alive one is reset before the answer", async () => {
    const perSocket = new WeakMap<object, number>();
    let seen = 0;
    const flaky = createHttpsServer(fake.server, (req, res) => {
      seen++;
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      req.resume();
      // a tracker that closed an idle kept-alive connection just as the next request came
      if (n > 1) req.socket.destroy();
      else res.writeHead(200, { "content-type": "application/json" }).end('{"ok": true}');
    });
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", () => r()));
    const t = new TrackerClient({
      trackers: [
        {
          no: 1,
          host: "127.0.0.1",
          port: (flaky.address() as AddressInfo).port,
          fingerprint: fake.fingerprint,
        },
      ],
    });
    try {
      await t.call("health");
      await t.call("health");
      assert.equal(seen, 3, "the second call was sent again, once");
    } finally {
      t.close();
      await new Promise<void>((r) => flaky.close(() => r()));
    }
  });

  it("connects from the peer server's address when it is a specific one", async () => {
    next = { status: 200, body: '{"ok": true}' };
    sources.length = 0;
    for (const local of ["127.0.0.2", undefined]) {
      const t = client(local);
      await t.call("health");
      t.close();
    }
    assert.deepEqual(sources, ["127.0.0.2", "127.0.0.1"]);
  });
});
