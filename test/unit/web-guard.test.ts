import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { crossSite, HostRule, hostName, isLoopback } from "../../src/client/web/guard.js";
import { Router } from "../../src/client/web/routes.js";
import { SlowDown } from "../../src/client/web/slowDown.js";
import { readStatic } from "../../src/client/web/staticFiles.js";
import { loadWebTls, loadWebToken, tokensEqual, WEB_TOKEN_PATTERN } from "../../src/client/web/token.js";
import { certificateFingerprint } from "../../src/shared/x509.js";
import { prepareStateDir, WEB_KEY_FILE, WEB_TOKEN_FILE } from "../../src/client/state.js";

// The web server's decisions as pure functions: what each one lets through and why.

describe("web guard: Host (DNS rebinding)", () => {
  it("reads the name out of a Host header, or nothing from a malformed one", () => {
    assert.equal(hostName("LocalHost:8080"), "localhost");
    assert.equal(hostName("[::1]:8080"), "::1");
    assert.equal(hostName("127.0.0.1"), "127.0.0.1");
    for (const bad of [undefined, "", "a b", "evil.example:80:80", "[::1", "host:99999999", "user@host"])
      assert.equal(hostName(bad), undefined, String(bad));
  });

  it("on loopback, answers to the bound address, localhost and allowed names only", () => {
    const rule = new HostRule("127.0.0.1", ["My.Lan"]);
    for (const ok of ["127.0.0.1:1", "localhost:2", "my.lan:3", "MY.LAN"]) assert.ok(rule.allows(ok), ok);
    for (const no of [
      "evil.example",
      "127.0.0.2",
      "localhost.",
      "sub.localhost",
      "[::1]:1",
      "0.0.0.0",
      undefined,
    ])
      assert.ok(!rule.allows(no), String(no));
  });

  it("on every interface, answers to any IP literal (none can be rebound) but no other name", () => {
    const rule = new HostRule("0.0.0.0", []);
    for (const ok of ["192.0.2.7:1", "[2001:db8::1]:1", "localhost"]) assert.ok(rule.allows(ok), ok);
    assert.ok(!rule.allows("evil.example"));
    assert.ok(!rule.allows("0.0.0.0.evil.example"));
  });

  it("knows loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.9.9.9", "::1", "localhost", "::ffff:127.0.0.1"])
      assert.ok(isLoopback(h), h);
    for (const h of ["0.0.0.0", "::", "198.18.0.1", "128.0.0.1", "localhost.evil"])
      assert.ok(!isLoopback(h), h);
  });
});

describe("web guard: cross-site requests", () => {
  const host = "127.0.0.1:7000";
  it("lets through scripts (no Origin, no Sec-Fetch-Site) and the page's own origin", () => {
    assert.equal(crossSite({ host }, "http"), undefined);
    assert.equal(
      crossSite({ host, origin: "http://127.0.0.1:7000", "sec-fetch-site": "same-origin" }, "http"),
      undefined,
    );
    assert.equal(crossSite({ host, "sec-fetch-site": "none" }, "http"), undefined);
  });

  it("refuses another origin, another port, another scheme, an opaque origin, and same-site", () => {
    for (const origin of ["http://evil.example", "http://127.0.0.1:7001", "https://127.0.0.1:7000", "null"])
      assert.match(crossSite({ host, origin }, "http") ?? "", /page at/, origin);
    for (const site of ["cross-site", "same-site", "anything"])
      assert.match(crossSite({ host, "sec-fetch-site": site }, "http") ?? "", /Sec-Fetch-Site/, site);
  });
});

describe("web routes", () => {
  const handler = async () => ({});
  it("keeps every route under /api/, once, away from the server's own paths", () => {
    assert.throws(() => new Router([{ method: "GET", path: "/admin", handler }], []));
    assert.throws(() => new Router([{ method: "GET", path: "/api/v1/auth", handler }], ["/api/v1/auth"]));
    assert.throws(
      () =>
        new Router(
          [
            { method: "GET", path: "/api/v1/x/:a", handler },
            { method: "GET", path: "/api/v1/x/:b", handler },
          ],
          [],
        ),
    );
  });

  it("matches params and tells which methods a path has", () => {
    const r = new Router(
      [
        { method: "GET", path: "/api/v1/x/:id", handler },
        { method: "DELETE", path: "/api/v1/x/:id", handler },
      ],
      [],
    );
    const m = r.match("GET", "/api/v1/x/a%2Fb");
    assert.deepEqual(m.route && m.params, { id: "a/b" });
    assert.deepEqual(r.match("PUT", "/api/v1/x/1"), { route: undefined, methods: ["GET", "DELETE"] });
    assert.deepEqual(r.match("GET", "/api/v1/x/"), { route: undefined, methods: [] });
  });
});

describe("web slow-down of failed tokens", () => {
  const o = { baseMs: 100, maxMs: 800, maxHeld: 2, maxAddresses: 3, forgetMs: 60_000 };

  it("holds each failure twice as long as the last, up to the cap; refuses past maxHeld held", () => {
    let now = 0;
    const s = new SlowDown({ ...o, now: () => now });
    const delays: (number | undefined)[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(s.fail("a"));
      s.release("a");
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 800, 800]);
    assert.equal(s.fail("b"), 100);
    assert.equal(s.fail("b"), 200);
    assert.equal(s.fail("b"), undefined, "a third held answer");
    s.release("b");
    assert.equal(s.fail("b"), 400);
    now += 60_001;
    s.release("b");
    s.release("b");
    assert.equal(s.fail("b"), 100, "forgotten after forgetMs without failures");
  });

  it("remembers at most maxAddresses, dropping the least recently failed", () => {
    const s = new SlowDown(o);
    for (const a of ["a", "b", "c", "d", "e"]) s.fail(a);
    assert.equal(s.size, 3);
  });
});

describe("web token", () => {
  it("is made owner-only at first use, kept across loads, and made anew once deleted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-web-"));
    try {
      const t1 = await loadWebToken(dir);
      assert.match(t1, WEB_TOKEN_PATTERN);
      const path = join(dir, WEB_TOKEN_FILE);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal(await loadWebToken(dir), t1);
      assert.equal((await readFile(path, "utf8")).trim(), t1);
      await rm(path);
      const t2 = await loadWebToken(dir);
      assert.notEqual(t2, t1);
      assert.match(t2, WEB_TOKEN_PATTERN);
      await writeFile(path, "short\n");
      await assert.rejects(loadWebToken(dir), /does not hold a web token/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is tightened to 0600 with the rest of the state folder", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-web-"));
    try {
      await writeFile(join(dir, WEB_TOKEN_FILE), "x", { mode: 0o644 });
      await prepareStateDir(dir);
      assert.equal((await stat(join(dir, WEB_TOKEN_FILE))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the HTTPS key is P-256, owner-only and kept; the certificate names the bound address", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-web-"));
    try {
      const a = await loadWebTls(dir, "192.0.2.7");
      assert.equal((await stat(join(dir, WEB_KEY_FILE))).mode & 0o777, 0o600);
      const x = new X509Certificate(a.cert);
      assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
      assert.equal(x.subjectAltName, "IP Address:192.0.2.7");
      const b = await loadWebTls(dir, "0.0.0.0");
      assert.equal(b.key, a.key);
      assert.equal(certificateFingerprint(b.cert), certificateFingerprint(a.cert));
      assert.equal(new X509Certificate(b.cert).subjectAltName, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("compares equal tokens equal and any other string not", () => {
    const t = "A".repeat(43);
    assert.ok(tokensEqual(t, t));
    for (const other of ["", "A".repeat(42), `${"A".repeat(42)}B`, "A".repeat(44)])
      assert.ok(!tokensEqual(other, t));
  });
});

describe("web static files", () => {
  it("serves the folder's own files by type, and no dot-file, other type or path out of it", async () => {
    const base = await mkdtemp(join(tmpdir(), "gs-web-"));
    const root = join(base, "ui");
    try {
      await mkdir(root);
      await writeFile(join(root, "index.html"), "<p>hi</p>");
      await writeFile(join(root, ".secret.json"), "{}");
      await writeFile(join(root, "notes.txt"), "x");
      await writeFile(join(base, "outside.json"), "{}");
      assert.equal((await readStatic(root, "/"))?.type, "text/html; charset=utf-8");
      for (const path of [
        "/.secret.json",
        "/notes.txt",
        "/../outside.json",
        "/..%2foutside.json",
        "/%2e%2e/outside.json",
        "/a\\b.json",
        "//index.html",
        "/%zz",
      ])
        assert.equal(await readStatic(root, path), undefined, path);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
