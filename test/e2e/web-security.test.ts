import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EngineEmitter } from "../../src/client/engine/emitter.js";
import type { RouteTable } from "../../src/client/web/routes.js";
import { WebServer, type WebServerOptions } from "../../src/client/web/server.js";
import { startWeb } from "../../src/client/web/start.js";
import { UI_DIR } from "../../src/client/web/staticFiles.js";
import { loadWebTls, newWebToken } from "../../src/client/web/token.js";
import { GsError } from "../../src/shared/errors.js";
import { openEvents, WebLogLines, webCall } from "../helpers/web.js";

// Attacks on the local web UI's server, each over a real socket: another site's page
// in the user's browser (cross-site requests, form posts, framing, DNS rebinding), and
// a local program guessing the token. The route table is a dummy that counts its runs,
// so each refusal also shows that no route ran.

const FAIL_BASE_MS = 200;

/** A route table that records what ran. */
function dummyRoutes() {
  const ran: string[] = [];
  const routes: RouteTable = [
    {
      method: "GET",
      path: "/api/v1/things",
      handler: async ({ query }) => {
        ran.push("list");
        return { things: ["a", "b"], prefix: query.prefix ?? null };
      },
    },
    {
      method: "POST",
      path: "/api/v1/things",
      status: 201,
      handler: async ({ body }) => {
        ran.push("create");
        return { created: body };
      },
    },
    {
      method: "GET",
      path: "/api/v1/things/:name",
      handler: async ({ params }) => {
        ran.push(`get ${params.name}`);
        if (params.name === "missing") throw new GsError("GROUP_NOT_FOUND", "no group missing");
        if (params.name === "bug") throw new Error("a bug");
        return { name: params.name };
      },
    },
    {
      method: "DELETE",
      path: "/api/v1/things/:name",
      handler: async () => {
        ran.push("delete");
        return undefined;
      },
    },
    {
      method: "GET",
      path: "/api/v1/slow",
      handler: ({ signal }) =>
        new Promise((_, reject) => {
          ran.push("slow");
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
    },
  ];
  return { ran, routes };
}

async function start(extra: Partial<WebServerOptions> = {}) {
  const { ran, routes } = dummyRoutes();
  const logs = new WebLogLines();
  const token = newWebToken();
  const events = new EngineEmitter();
  const web = await WebServer.start({
    host: "127.0.0.1",
    port: 0,
    token,
    routes,
    events: (l) => events.subscribe(l),
    log: logs.log,
    slowDown: { baseMs: FAIL_BASE_MS, maxMs: 2_000, maxHeld: 2, maxAddresses: 64, forgetMs: 60_000 },
    limits: { handlerTimeoutMs: 1_000 },
    ...extra,
  });
  return { web, token, ran, logs, events, port: web.port };
}

describe("web UI server: security", { timeout: 60_000 }, () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start();
  });
  after(() => s.web.close());

  describe("the page", () => {
    it("loads without the token, with a strict CSP and no framing", async () => {
      const r = await webCall(s.port, { path: "/" });
      assert.equal(r.status, 200);
      assert.match(r.headers["content-type"]!, /^text\/html; charset=utf-8$/);
      assert.match(r.text, /<script type="module" src="app.js"><\/script>/);
      const csp = String(r.headers["content-security-policy"] ?? "");
      assert.ok(csp, "no Content-Security-Policy");
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
      assert.match(csp, /(^|; )default-src 'none'/);
      assert.match(csp, /(^|; )script-src 'self'(;|$)/);
      assert.match(csp, /(^|; )frame-ancestors 'none'(;|$)/);
      assert.equal(r.headers["x-frame-options"], "DENY");
      assert.equal(r.headers["x-content-type-options"], "nosniff");
      assert.equal(r.headers["referrer-policy"], "no-referrer");
    });

    it("runs no inline script or style, so the CSP holds (every script has a src)", () => {
      const html = readFileSync(join(UI_DIR, "index.html"), "utf8");
      for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
        assert.match(m[1]!, /\bsrc="[^"]+"/, `inline script: ${m[0]}`);
        assert.equal(m[2]!.trim(), "");
      }
      assert.doesNotMatch(html, /<style\b|\son[a-z]+=|style="/i);
    });

    it("serves its script and style with their types, and nothing outside its folder", async () => {
      const js = await webCall(s.port, { path: "/app.js" });
      assert.equal(js.status, 200);
      assert.equal(js.headers["content-type"], "text/javascript; charset=utf-8");
      const css = await webCall(s.port, { path: "/app.css" });
      assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
      for (const path of [
        "/../package.json",
        "/%2e%2e/package.json",
        "/..%2fpackage.json",
        "/.hidden",
        "/index.ts",
      ]) {
        const r = await webCall(s.port, { path });
        assert.equal(r.status, 404, path);
      }
    });

    it("answers only GET and HEAD", async () => {
      const head = await webCall(s.port, { method: "HEAD", path: "/" });
      assert.equal(head.status, 200);
      assert.equal(head.text, "");
      const post = await webCall(s.port, { method: "POST", path: "/", raw: "x=1" });
      assert.equal(post.code, "METHOD_NOT_ALLOWED");
    });
  });

  describe("the token", () => {
    it("is needed on every API path: none -> 401, and no route runs", async () => {
      const before = s.ran.length;
      for (const path of [
        "/api/v1/things",
        "/api/v1/things/x",
        "/api/v1/events",
        "/api/v1/auth",
        "/api/nothing",
      ]) {
        const r = await webCall(s.port, { path });
        assert.equal(r.status, 401, path);
        assert.equal(r.code, "UNAUTHORIZED", path);
        assert.equal(r.headers["cache-control"], "no-store");
      }
      assert.equal(s.ran.length, before);
    });

    it("right token -> 200 with the route's answer (Authorization: Bearer, as a script sends it)", async () => {
      const r = await webCall(s.port, { path: "/api/v1/things?prefix=a", token: s.token });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { things: ["a", "b"], prefix: "a" });
      assert.equal(r.headers["cache-control"], "no-store");
      assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
      const auth = await webCall(s.port, { path: "/api/v1/auth", token: s.token });
      assert.deepEqual(auth.body, { ok: true });
    });

    it("wrong tokens -> 401, each held back twice as long as the last, and no route runs", async () => {
      const t = await start();
      try {
        const wrong = newWebToken();
        for (const [i, least] of [FAIL_BASE_MS, 2 * FAIL_BASE_MS, 4 * FAIL_BASE_MS].entries()) {
          const t0 = performance.now();
          const r = await webCall(t.port, {
            path: "/api/v1/things",
            token: i === 1 ? t.token.slice(1) : wrong,
          });
          const took = performance.now() - t0;
          assert.equal(r.code, "UNAUTHORIZED");
          assert.ok(
            took >= least - 5,
            `failure ${i + 1} answered after ${took.toFixed(0)} ms, held back less than ${least} ms`,
          );
        }
        assert.deepEqual(t.ran, []);
        // the right token still works from the same address
        const ok = await webCall(t.port, { path: "/api/v1/things", token: t.token });
        assert.equal(ok.status, 200);
      } finally {
        await t.web.close();
      }
    });

    it("parallel guesses beyond the held-back bound are refused at once (429)", async () => {
      const t = await start();
      try {
        const wrong = newWebToken();
        const answers = await Promise.all(
          Array.from({ length: 6 }, () => webCall(t.port, { path: "/api/v1/things", token: wrong })),
        );
        const codes = answers.map((a) => a.code).sort();
        assert.deepEqual(codes, [
          "TOO_MANY_ATTEMPTS",
          "TOO_MANY_ATTEMPTS",
          "TOO_MANY_ATTEMPTS",
          "TOO_MANY_ATTEMPTS",
          "UNAUTHORIZED",
          "UNAUTHORIZED",
        ]);
        assert.deepEqual(t.ran, []);
      } finally {
        await t.web.close();
      }
    });

    it("is not accepted in the query string or a cookie", async () => {
      for (const headers of [{ cookie: `token=${s.token}` }, {}] as Record<string, string>[]) {
        const r = await webCall(s.port, { path: `/api/v1/things?token=${s.token}`, headers });
        assert.equal(r.code, "UNAUTHORIZED");
      }
    });
  });

  describe("DNS rebinding: the Host header", () => {
    it("a foreign name is refused, even with the right token, and no route runs", async () => {
      const before = s.ran.length;
      for (const host of [
        `evil.example:${s.port}`,
        "evil.example",
        `localhost.evil.example:${s.port}`,
        `127.0.0.1.nip.io:${s.port}`,
        "localhost.",
        "localhost:x",
      ]) {
        for (const path of ["/api/v1/things", "/"]) {
          const r = await webCall(s.port, { path, token: s.token, headers: { host } });
          assert.equal(r.status, 403, `${host} ${path}`);
          assert.equal(r.code, "HOST_NOT_ALLOWED", `${host} ${path}`);
        }
      }
      assert.equal(s.ran.length, before);
    });

    it("a request with no Host at all (HTTP/1.0) is refused", async () => {
      const sock = connect({ host: "127.0.0.1", port: s.port });
      sock.end(`GET /api/v1/things HTTP/1.0\r\nAuthorization: Bearer ${s.token}\r\n\r\n`);
      const chunks: Buffer[] = [];
      for await (const c of sock) chunks.push(c as Buffer);
      const answer = Buffer.concat(chunks).toString("utf8");
      assert.match(answer, /^HTTP\/1\.1 403 /);
      assert.match(answer, /"code":"HOST_NOT_ALLOWED"/);
    });

    it("the bound address and localhost are accepted, on any port (an ssh tunnel's)", async () => {
      for (const host of [
        `localhost:${s.port}`,
        `LOCALHOST:${s.port}`,
        "localhost:9999",
        `127.0.0.1:${s.port}`,
        "127.0.0.1",
      ]) {
        const r = await webCall(s.port, { path: "/api/v1/things", token: s.token, headers: { host } });
        assert.equal(r.status, 200, host);
      }
    });

    it("a name the user allowed is accepted; another address is not", async () => {
      const t = await start({ allowHosts: ["groupshare.lan"] });
      try {
        const ok = await webCall(t.port, {
          path: "/api/v1/things",
          token: t.token,
          headers: { host: `groupshare.lan:${t.port}` },
        });
        assert.equal(ok.status, 200);
        const other = await webCall(t.port, {
          path: "/api/v1/things",
          token: t.token,
          headers: { host: `127.0.0.2:${t.port}` },
        });
        assert.equal(other.code, "HOST_NOT_ALLOWED");
      } finally {
        await t.web.close();
      }
    });
  });

  describe("cross-site requests", () => {
    it("Origin of another site is refused on GET and POST, even with the right token", async () => {
      const before = s.ran.length;
      for (const origin of [
        "http://evil.example",
        "null",
        `http://localhost:${s.port + 1}`,
        `https://127.0.0.1:${s.port}`,
      ]) {
        const get = await webCall(s.port, { path: "/api/v1/things", token: s.token, headers: { origin } });
        assert.equal(get.code, "CROSS_SITE", `GET from ${origin}`);
        const post = await webCall(s.port, {
          method: "POST",
          path: "/api/v1/things",
          token: s.token,
          body: { a: 1 },
          headers: { origin },
        });
        assert.equal(post.code, "CROSS_SITE", `POST from ${origin}`);
        assert.equal(post.status, 403);
      }
      assert.equal(s.ran.length, before);
    });

    it("the page's own origin is accepted", async () => {
      const r = await webCall(s.port, {
        method: "POST",
        path: "/api/v1/things",
        token: s.token,
        body: { a: 1 },
        headers: { origin: `http://127.0.0.1:${s.port}`, "sec-fetch-site": "same-origin" },
      });
      assert.equal(r.status, 201);
      assert.deepEqual(r.body, { created: { a: 1 } });
    });

    it("Sec-Fetch-Site cross-site or same-site is refused, on the API and the page", async () => {
      for (const site of ["cross-site", "same-site"]) {
        for (const path of ["/api/v1/things", "/"]) {
          const r = await webCall(s.port, { path, token: s.token, headers: { "sec-fetch-site": site } });
          assert.equal(r.code, "CROSS_SITE", `${site} ${path}`);
        }
      }
      const typed = await webCall(s.port, { path: "/", headers: { "sec-fetch-site": "none" } });
      assert.equal(typed.status, 200);
    });

    it("a form posted from another site never runs a route, with or without Origin", async () => {
      const before = s.ran.length;
      for (const type of [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
      ]) {
        const raw = type === "text/plain" ? '{"a":1}' : "a=1";
        // a browser that sends Origin
        const withOrigin = await webCall(s.port, {
          method: "POST",
          path: "/api/v1/things",
          raw,
          headers: { "content-type": type, origin: "http://evil.example", "sec-fetch-site": "cross-site" },
        });
        assert.equal(withOrigin.code, "CROSS_SITE", type);
        // one that sends neither: the missing token refuses it
        const bare = await webCall(s.port, {
          method: "POST",
          path: "/api/v1/things",
          raw,
          headers: { "content-type": type },
        });
        assert.equal(bare.code, "UNAUTHORIZED", type);
        // and with the token, still no body but JSON is taken
        const typed = await webCall(s.port, {
          method: "POST",
          path: "/api/v1/things",
          raw,
          token: s.token,
          headers: { "content-type": type },
        });
        assert.equal(typed.code, "NOT_JSON", type);
        assert.equal(typed.status, 415);
      }
      assert.equal(s.ran.length, before);
    });

    it("never answers with CORS headers, preflight included", async () => {
      // every answer in these tests is checked by webCall; these are the preflights
      for (const origin of ["http://evil.example", `http://127.0.0.1:${s.port}`]) {
        const r = await webCall(s.port, {
          method: "OPTIONS",
          path: "/api/v1/things",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
          },
        });
        assert.ok(r.status === 403 || r.status === 405, `preflight answered ${r.status}`);
      }
    });
  });

  describe("requests", () => {
    it("a body over the bound -> 413, by Content-Length or as it streams, and no route runs", async () => {
      const before = s.ran.length;
      const big = JSON.stringify({ x: "a".repeat(65 * 1024) });
      const r = await webCall(s.port, { method: "POST", path: "/api/v1/things", token: s.token, raw: big });
      assert.equal(r.status, 413);
      assert.equal(r.code, "BODY_TOO_LARGE");
      const chunked = await webCall(s.port, {
        method: "POST",
        path: "/api/v1/things",
        token: s.token,
        raw: big,
        chunked: true,
      });
      assert.equal(chunked.code, "BODY_TOO_LARGE");
      assert.equal(s.ran.length, before);
    });

    it("bad JSON -> 400; a GsError -> its code and status; a bug -> 500 INTERNAL, logged", async () => {
      const bad = await webCall(s.port, { method: "POST", path: "/api/v1/things", token: s.token, raw: "{" });
      assert.equal(bad.code, "BAD_REQUEST");
      const missing = await webCall(s.port, { path: "/api/v1/things/missing", token: s.token });
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.body, { error: { code: "GROUP_NOT_FOUND", message: "no group missing" } });
      const from = s.logs.lines.length;
      const bug = await webCall(s.port, { path: "/api/v1/things/bug", token: s.token });
      assert.deepEqual(bug.body, { error: { code: "INTERNAL", message: "internal error" } });
      await s.logs.waitFor(/^error: GET \/api\/v1\/things\/bug: Error: a bug/, from);
    });

    it("params are decoded; a repeated query name, an unknown path or method is refused", async () => {
      const p = await webCall(s.port, { path: "/api/v1/things/a%20b%2Fc", token: s.token });
      assert.deepEqual(p.body, { name: "a b/c" });
      const twice = await webCall(s.port, { path: "/api/v1/things?prefix=a&prefix=b", token: s.token });
      assert.equal(twice.code, "BAD_REQUEST");
      const none = await webCall(s.port, { path: "/api/v1/nothing", token: s.token });
      assert.equal(none.code, "NO_ROUTE");
      const put = await webCall(s.port, { method: "PUT", path: "/api/v1/things", token: s.token, body: {} });
      assert.equal(put.code, "METHOD_NOT_ALLOWED");
      assert.equal(put.headers.allow, "GET, POST");
      const del = await webCall(s.port, { method: "DELETE", path: "/api/v1/things/x", token: s.token });
      assert.equal(del.status, 204);
    });

    it("a handler with no answer in time -> 503 BUSY, and its signal is aborted", async () => {
      const r = await webCall(s.port, { path: "/api/v1/slow", token: s.token });
      assert.equal(r.status, 503);
      assert.equal(r.code, "BUSY");
    });
  });

  describe("binding", () => {
    it("refuses a non-loopback address without HTTPS", async () => {
      for (const host of ["0.0.0.0", "::", "198.18.0.1"]) {
        await assert.rejects(
          WebServer.start({ host, port: 0, token: newWebToken(), routes: [] }),
          (e: GsError) => e.code === "BAD_REQUEST" && /HTTPS/.test(e.message),
          host,
        );
      }
      await assert.rejects(
        WebServer.start({ host: "example.com", port: 0, token: newWebToken(), routes: [] }),
      );
    });

    it("prints one line with the login link on loopback", () => {
      assert.deepEqual(s.web.startLines(), [`web UI: http://127.0.0.1:${s.port}/#token=${s.token}`]);
    });

    it("as the client starts it: the state folder's token, the same after a restart", async () => {
      const dir = await mkdtemp(join(tmpdir(), "gs-web-"));
      try {
        const o = { stateDir: dir, host: "127.0.0.1", port: 0, allowHosts: [], routes: [] };
        const first = await startWeb(o);
        const link = first.startLines();
        await first.close();
        const again = await startWeb(o);
        try {
          const token = /#token=([\w-]+)$/.exec(link[0]!)![1]!;
          assert.equal(again.url.split("#")[1], `token=${token}`);
          const r = await webCall(again.port, { path: "/api/v1/auth", token });
          assert.deepEqual(r.body, { ok: true });
        } finally {
          await again.close();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("serves HTTPS with a certificate, and says so with a warning off loopback", async () => {
      const dir = await mkdtemp(join(tmpdir(), "gs-web-"));
      const t = await start({ host: "0.0.0.0", tls: await loadWebTls(dir, "0.0.0.0") });
      try {
        const lines = t.web.startLines();
        assert.equal(lines.length, 2);
        assert.match(lines[0]!, /^warning: the web UI listens on 0\.0\.0\.0 .*HTTPS.*sha256:/);
        assert.equal(lines[1], `web UI: https://127.0.0.1:${t.port}/#token=${t.token}`);
        const r = await webCall(t.port, { https: true, path: "/api/v1/things", token: t.token });
        assert.equal(r.status, 200);
        // on every interface, an IP literal cannot be rebound; a name still must be allowed
        const named = await webCall(t.port, { https: true, path: "/", headers: { host: "evil.example" } });
        assert.equal(named.code, "HOST_NOT_ALLOWED");
        await assert.rejects(webCall(t.port, { path: "/" }), "plain HTTP answered on the HTTPS port");
      } finally {
        await t.web.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe("the event stream", () => {
    it("delivers the engine's events in order, and ends cleanly when the server closes", async () => {
      const t = await start();
      const stream = await openEvents(t.port, t.token);
      await stream.frame(1);
      const hello = stream.frames[0]!;
      assert.equal(hello.event, "hello");
      assert.deepEqual(hello.data, { run: (hello.data as { run: string }).run, last: 0, resumed: false });
      assert.equal(stream.res.headers["content-type"], "text/event-stream; charset=utf-8");
      assert.equal(stream.res.headers["cache-control"], "no-store");
      t.events.emit({ type: "logged-in", userId: "ann" });
      t.events.emit({ type: "request-accepted", groupId: "g1" });
      await stream.frame(3);
      assert.deepEqual(
        stream.frames.slice(1).map((f) => [f.id, f.event, f.data]),
        [
          ["1", "logged-in", { type: "logged-in", userId: "ann" }],
          ["2", "request-accepted", { type: "request-accepted", groupId: "g1" }],
        ],
      );
      assert.equal(t.web.streams, 1);
      await t.web.close();
      await stream.ended;
      assert.equal(t.web.streams, 0);
      assert.equal(t.events.size, 0, "the server still listens to the engine after close");
    });

    it("a page that lost its stream resumes after its last event, or is told to fetch afresh", async () => {
      const t = await start();
      try {
        const first = await openEvents(t.port, t.token);
        await first.frame(1);
        const run = (first.frames[0]!.data as { run: string }).run;
        t.events.emit({ type: "hashing", name: "f", done: 1, total: 3 });
        await first.frame(2);
        first.close();
        t.events.emit({ type: "hashing", name: "f", done: 2, total: 3 });
        t.events.emit({ type: "hashing", name: "f", done: 3, total: 3 });
        const again = await openEvents(t.port, t.token, `/api/v1/events?run=${run}&after=1`);
        await again.frame(3);
        assert.deepEqual(again.frames[0]!.data, { run, last: 3, resumed: true });
        assert.deepEqual(
          again.frames.slice(1).map((f) => (f.data as { done: number }).done),
          [2, 3],
        );
        again.close();
        const stale = await openEvents(t.port, t.token, "/api/v1/events?run=another&after=1");
        await stale.frame(1);
        assert.deepEqual(stale.frames[0]!.data, { run, last: 3, resumed: false });
        stale.close();
      } finally {
        await t.web.close();
      }
    });

    it("drops a reader that falls behind its queue bound, and caps the streams open", async () => {
      const QUEUE = 64 * 1024;
      const t = await start({ eventOptions: { maxQueueBytes: QUEUE, maxStreams: 2 } });
      try {
        const slow = await openEvents(t.port, t.token);
        await slow.frame(1);
        const other = await openEvents(t.port, t.token);
        const third = await openEvents(t.port, t.token).then(
          () => "opened",
          (e: Error) => e.message,
        );
        assert.equal(third, "event stream: status 503");
        // the slow page stops reading; the engine keeps talking
        slow.res.pause();
        const from = t.logs.lines.length;
        const dropped = t.logs.waitFor(/^warning: event stream dropped/, from);
        const chunk = "x".repeat(16 * 1024);
        let sent = 0;
        // one event at a time, once the page that reads has it: loopback socket buffers
        // hold a few MiB for the slow one before the server's queue grows at all
        for (let i = 0; i < 2000 && !t.logs.lines.slice(from).some((l) => /dropped/.test(l)); i++) {
          t.events.emit({ type: "hashing", name: chunk, done: i, total: 2000 });
          sent++;
          await other.frame(1 + sent);
        }
        const line = await dropped;
        const behind = Number(/ is (\d+) bytes behind/.exec(line)![1]);
        assert.ok(behind <= QUEUE, `the queue held ${behind} bytes, over its bound ${QUEUE}`);
        assert.ok(sent < 2000, "never dropped");
        // what the kernel held still comes, then the stream breaks off (no clean end)
        slow.res.resume();
        await assert.rejects(slow.ended);
        // the other reader kept up and is still there
        assert.equal(t.web.streams, 1);
        await other.frame(1 + sent);
        other.close();
      } finally {
        await t.web.close();
      }
    });

    it("drops an event it cannot send whole (a name with a line break, not JSON, too big), and logs it", async () => {
      const t = await start({ eventOptions: { maxEventBytes: 1024 } });
      try {
        const stream = await openEvents(t.port, t.token);
        await stream.frame(1);
        const from = t.logs.lines.length;
        const raw = t.events as unknown as { emit(e: object): void };
        raw.emit({ type: "logged-in\ndata: {}", userId: "x" });
        raw.emit({ type: "hashing", name: "f", done: 1n, total: 2 });
        raw.emit({ type: "hashing", name: "x".repeat(2000), done: 1, total: 2 });
        t.events.emit({ type: "logged-in", userId: "ann" });
        await stream.frame(2);
        assert.deepEqual(
          stream.frames.slice(1).map((f) => [f.id, f.event]),
          [["1", "logged-in"]],
        );
        const errors = t.logs.lines.slice(from).filter((l) => l.startsWith("error: web event"));
        assert.equal(errors.length, 3, errors.join("\n"));
        stream.close();
      } finally {
        await t.web.close();
      }
    });

    it("keeps an idle stream alive with comment lines", async () => {
      const t = await start({ eventOptions: { heartbeatMs: 20 } });
      try {
        const stream = await openEvents(t.port, t.token);
        await stream.frame(1);
        // a keep-alive is a comment: then an event still comes as the next frame
        await new Promise<void>((resolve) => {
          const check = () => (stream.comments() >= 2 ? resolve() : stream.res.once("data", check));
          check();
        });
        t.events.emit({ type: "logged-in", userId: "ann" });
        await stream.frame(2);
        assert.equal(stream.frames[1]!.event, "logged-in");
        stream.close();
      } finally {
        await t.web.close();
      }
    });

    it("takes only GET, with the token", async () => {
      const none = await webCall(s.port, { path: "/api/v1/events" });
      assert.equal(none.code, "UNAUTHORIZED");
      const post = await webCall(s.port, {
        method: "POST",
        path: "/api/v1/events",
        token: s.token,
        body: {},
      });
      assert.equal(post.code, "METHOD_NOT_ALLOWED");
    });
  });
});
