/**
 * Hostile file names: a name with '/', '..', NUL or control characters is
 * refused at upload (INVALID_FILE_NAME), and can never make a download write outside
 * its destination, even when a lying tracker hands it out.
 */
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { eventLine } from "../../src/client/cli/lines.js";
import { GroupshareClient } from "../../src/client/client.js";
import { MAX_FILE_NAME_LENGTH } from "../../src/shared/constants.js";
import { GsError } from "../../src/shared/errors.js";
import { fileIdOf } from "../../src/shared/fileId.js";
import { checkFileName } from "../../src/shared/ids.js";
import { buildTrackerServer } from "../../src/tracker/server.js";
import { TrackerService } from "../../src/tracker/service.js";
import { openStore, type Store } from "../../src/tracker/store/index.js";
import { TEST_PEER, tlsIdentity } from "../helpers/tls.js";

const HOSTILE = [
  "",
  ".",
  "..",
  "../escape.bin",
  "../../etc/passwd",
  "a/b",
  "/abs",
  "dir/",
  "a\\b",
  "..\\..\\win.bin",
  "nul\u0000byte",
  "new\nline",
  "carriage\rreturn",
  "tab\there",
  "esc\u001b[31mred",
  "del\u007f",
  "x".repeat(MAX_FILE_NAME_LENGTH + 1),
];

const FINE = [
  "a.bin",
  "my file.bin",
  "..hidden",
  "dots...",
  "ünïcødé ✓.txt",
  "x".repeat(MAX_FILE_NAME_LENGTH),
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof GsError ? err.code : "not a GsError";
  }
}

describe("checkFileName", () => {
  it("refuses every name that is not one harmless path component", () => {
    for (const name of HOSTILE)
      assert.equal(
        codeOf(() => checkFileName(name)),
        "INVALID_FILE_NAME",
        JSON.stringify(name),
      );
  });

  it("accepts ordinary names, spaces and non-ASCII included", () => {
    for (const name of FINE) assert.equal(checkFileName(name), name);
  });

  it("shows a refused name escaped and cut short in its message", () => {
    try {
      checkFileName(`evil\u0000\u001b${"y".repeat(300)}`);
      assert.fail("accepted");
    } catch (err) {
      const message = (err as Error).message;
      assert.ok(!/[\u0000-\u001f]/.test(message), message);
      assert.ok(message.length < 300, message);
    }
  });
});

describe("tracker API: hostile file names are refused with INVALID_FILE_NAME", () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let token = "";

  async function call(method: "GET" | "POST" | "DELETE", url: string, payload?: unknown) {
    const res = await app.inject({
      method,
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return { status: res.statusCode, body: res.json() as { error?: { code: string } } };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-names-"));
    store = await openStore(join(dir, "t.db"));
    const service = new TrackerService(store);
    await service.init();
    const { certificate, privateKey } = service.tlsIdentity;
    app = buildTrackerServer({ service, tls: { cert: certificate, key: privateKey } });
    await app.ready();
    assert.equal((await call("POST", "/v1/users", { userId: "u", password: "pw" })).status, 201);
    const login = await app.inject({
      method: "POST",
      url: "/v1/sessions",
      payload: { userId: "u", password: "pw", peerAddr: "127.0.0.1:9", peerKey: TEST_PEER.publicKey },
    });
    token = login.json().token;
    assert.equal((await call("POST", "/v1/groups", { groupId: "g" })).status, 201);
  });

  after(async () => {
    await app?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("at upload", async () => {
    const empty = { size: 0, sha1: createHash("sha1").digest("hex"), pieces: "" };
    for (const name of HOSTILE) {
      const r = await call("POST", "/v1/groups/g/files", { name, ...empty });
      assert.equal(r.status, 400, JSON.stringify(name));
      // the schema's length bounds answer first for "" and over-long names
      const expected =
        name.length === 0 || name.length > MAX_FILE_NAME_LENGTH ? "BAD_REQUEST" : "INVALID_FILE_NAME";
      assert.equal(r.body.error?.code, expected, JSON.stringify(name));
    }
    const listed = await call("GET", "/v1/groups/g/files");
    assert.deepEqual(listed.body, { files: [] });
  });

  it("in a file route's path (download, peers, shares)", async () => {
    for (const name of HOSTILE.filter((n) => n.length > 0 && n.length <= MAX_FILE_NAME_LENGTH)) {
      // dots encoded too, or "." and ".." would be taken as path steps before routing
      const at = `/v1/groups/g/files/${encodeURIComponent(name).replaceAll(".", "%2E")}`;
      for (const [method, url, body] of [
        ["POST", `${at}/download`, {}],
        ["POST", `${at}/peers`, {}],
        ["POST", `${at}/shares`, { complete: true }],
        ["DELETE", `${at}/shares`, undefined],
      ] as const) {
        const r = await call(method, url, body);
        if (name === "." || name === "..") {
          // the router takes a lone dot segment as a path step: no route, and no handler sees it
          assert.equal(r.status, 404, `${method} ${url}`);
          assert.equal(r.body.error?.code, "NO_ROUTE", `${method} ${url}`);
          continue;
        }
        assert.equal(r.status, 400, `${method} ${url}`);
        assert.equal(r.body.error?.code, "INVALID_FILE_NAME", `${method} ${url}`);
      }
    }
  });
});

describe("a lying tracker cannot make a download write outside its destination", () => {
  let dir: string;
  let tracker: Server;
  let client: GroupshareClient;
  const requests: string[] = [];
  const events: string[] = [];
  const emptySha1 = createHash("sha1").digest("hex");
  const emptyId = fileIdOf(0, Buffer.alloc(0));
  const publicKey = generateKeyPairSync("ed25519", {
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  }).publicKey;

  /** Answers like a tracker, except that it lists "../../evil.bin" and grants any download as that. */
  function lie(req: IncomingMessage, res: ServerResponse): void {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    const url = req.url ?? "";
    const file = { name: "../../evil.bin", size: 0, sha1: emptySha1, fileId: emptyId, pieces: "" };
    let body: unknown = { ok: true };
    if (url === "/v1/sessions") body = { token: "t", userId: "u" };
    else if (url === "/v1/keys") body = { publicKey };
    else if (url.endsWith("/files"))
      body = {
        files: [{ ...file, name: "ok.bin" }, file].map((f) => ({ ...f, sharersOnline: 1, seedersOnline: 1 })),
      };
    else if (url.endsWith("/download"))
      body = { file, ticket: "x", ticketExpires: Date.now() + 60_000, peers: [] };
    else if (url.endsWith("/peers")) body = { ticket: "x", ticketExpires: Date.now() + 60_000, peers: [] };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-liar-"));
    tracker = createServer(tlsIdentity().server, lie);
    await new Promise<void>((r) => tracker.listen(0, "127.0.0.1", () => r()));
    client = new GroupshareClient({
      trackers: [{ no: 1, host: "127.0.0.1", port: (tracker.address() as AddressInfo).port }],
      host: "127.0.0.1",
      port: 9,
      stateDir: join(dir, "state"),
    });
    client.events.subscribe((e) => {
      const said = eventLine(e);
      if (said) events.push(said.line);
    });
    await client.engine.call("login", ["u", "pw"]);
  });

  after(async () => {
    await client?.close();
    await new Promise<void>((r) => (tracker ? tracker.close(() => r()) : r()));
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a hostile name typed or pasted from list_files, before asking the tracker", async () => {
    const out = join(dir, "a", "b", "out");
    await mkdir(out, { recursive: true });
    const before = requests.length;
    for (const name of HOSTILE) {
      await assert.rejects(
        () => client.engine.call("downloadFile", ["g", name, out]),
        (err) => err instanceof GsError && err.code === "INVALID_FILE_NAME",
        JSON.stringify(name),
      );
    }
    assert.equal(requests.length, before, "no request reached the tracker");
  });

  it("writes <destination>/<the name asked for>, whatever name the tracker answers with", async () => {
    const out = join(dir, "a", "b", "out2");
    await mkdir(out, { recursive: true });
    await client.engine.call("downloadFile", ["g", "ok.bin", out]);
    await client.engine.whenDownloadsDone();
    assert.ok(
      events.some((l) => l.startsWith("download complete: [g] ok.bin -> ")),
      events.join("\n"),
    );
    assert.deepEqual(await readdir(out), ["ok.bin"]);
    assert.deepEqual((await readdir(join(dir, "a"))).sort(), ["b"]);
    assert.deepEqual((await readdir(join(dir, "a", "b"))).sort(), ["out", "out2"]);
    assert.ok(!(await readdir(dir)).includes("evil.bin"));
  });
});
