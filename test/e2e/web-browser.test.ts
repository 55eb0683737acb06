import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { EngineEmitter } from "../../src/client/engine/emitter.js";
import { WebServer } from "../../src/client/web/server.js";
import { newWebToken } from "../../src/client/web/token.js";
import { CHROMIUM, haveChromium, launchBrowser } from "../helpers/browser.js";
import { WebLogLines } from "../helpers/web.js";

// The web UI's server against a real browser (Chromium, headless): the page logs in from
// the printed link and keeps an event stream open under its CSP; a page of another site
// (evil.example, which the browser resolves to 127.0.0.1, as DNS rebinding would make it)
// tries to read the API, post to it, frame the page, and load it under its own name.

describe("web UI server in a real browser", { timeout: 120_000 }, () => {
  if (!haveChromium()) {
    it("needs Chromium", (t) => t.skip(`no browser at ${CHROMIUM} (set GS_CHROMIUM)`));
    return;
  }
  const ran: string[] = [];
  const logs = new WebLogLines();
  const token = newWebToken();
  const events = new EngineEmitter();
  let web: WebServer;
  let evil: Server;
  let evilPort: number;
  let browser: Browser;

  before(async () => {
    web = await WebServer.start({
      host: "127.0.0.1",
      port: 0,
      token,
      log: logs.log,
      events: (l) => events.subscribe(l),
      routes: [
        { method: "GET", path: "/api/v1/session", handler: async () => ({ loggedIn: false, userId: null }) },
        {
          method: "GET",
          path: "/api/v1/things",
          handler: async () => {
            ran.push("list");
            return { things: [] };
          },
        },
        {
          method: "POST",
          path: "/api/v1/things",
          handler: async () => {
            ran.push("create");
            return { ok: true };
          },
        },
      ],
    });
    // the other site: a blank page that the test then scripts, as its own script would
    evil = createServer((_req, res) => {
      res
        .writeHead(200, { "content-type": "text/html" })
        .end("<!doctype html><title>evil</title><p>hello</p>");
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    evilPort = (evil.address() as AddressInfo).port;
    browser = await launchBrowser(["--host-resolver-rules=MAP evil.example 127.0.0.1"]);
  });

  after(async () => {
    await browser?.close();
    await web?.close();
    evil?.close();
  });

  /** A new tab; fails the test on any Content-Security-Policy report in its console. */
  async function tab(): Promise<{ page: Page; csp: string[] }> {
    const page = await browser.newPage();
    const csp: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    return { page, csp };
  }

  it("the printed link logs the page in: token kept for the tab, gone from the address; events arrive", async () => {
    const { page, csp } = await tab();
    try {
      const from = logs.lines.length;
      const opened = logs.waitFor(/^info: event stream opened/, from);
      await page.goto(`http://127.0.0.1:${web.port}/#token=${token}`);
      await page.waitForFunction(() => location.hash === "");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("groupshare-token")), token);
      await opened;
      events.emit({ type: "request-accepted", groupId: "g-browser" });
      await page.getByText("You are now a member of g-browser").waitFor();
      assert.deepEqual(csp, [], "the page broke its own CSP");
    } finally {
      await page.close();
    }
  });

  it("another site's page can neither read nor change anything", async () => {
    const { page } = await tab();
    try {
      const from = logs.lines.length;
      await page.goto(`http://evil.example:${evilPort}/`);
      const target = `http://127.0.0.1:${web.port}`;
      const outcome = await page.evaluate(async (target) => {
        const tries: Record<string, string> = {};
        const attempt = async (name: string, f: () => Promise<Response>) => {
          try {
            const r = await f();
            tries[name] = `${r.type} ${r.status} ${await r.text()}`;
          } catch (e) {
            tries[name] = `refused: ${(e as Error).name}`;
          }
        };
        await attempt("read", () => fetch(`${target}/api/v1/things`));
        await attempt("read with a guessed token", () =>
          fetch(`${target}/api/v1/things`, { headers: { authorization: "Bearer guess" } }),
        );
        await attempt("blind post", () =>
          fetch(`${target}/api/v1/things`, {
            method: "POST",
            mode: "no-cors",
            headers: { "content-type": "text/plain" },
            body: '{"a":1}',
          }),
        );
        return tries;
      }, target);
      assert.match(outcome.read!, /^refused: TypeError/);
      assert.match(outcome["read with a guessed token"]!, /^refused: TypeError/);
      // at most an opaque answer (the browser may refuse it itself): the page learns nothing
      assert.match(outcome["blind post"]!, /^(refused: TypeError|opaque 0 )$/);

      // a form posted to the API, as a CSRF page does
      const posted = page.waitForResponse((r) => r.url().startsWith(target));
      await page.evaluate((target) => {
        const f = document.createElement("form");
        f.method = "POST";
        f.action = `${target}/api/v1/things`;
        f.enctype = "text/plain";
        const i = document.createElement("input");
        i.name = '{"a":1,"b":"';
        i.value = '"}';
        f.append(i);
        document.body.append(f);
        f.submit();
      }, target);
      assert.equal((await posted).status(), 403);

      await page.waitForURL(`${target}/api/v1/things`);
      assert.deepEqual(ran, [], "a route ran for another site's page");
      const refused = logs.lines.slice(from).filter((l) => / -> 403 CROSS_SITE/.test(l));
      assert.ok(
        refused.length >= 3,
        `the server refused only ${refused.length}:\n${logs.lines.slice(from).join("\n")}`,
      );
    } finally {
      await page.close();
    }
  });

  it("another site's page cannot show the page in a frame (refused twice over: Sec-Fetch-Site, frame-ancestors)", async () => {
    const { page } = await tab();
    try {
      const target = `http://127.0.0.1:${web.port}`;
      await page.goto(`http://evil.example:${evilPort}/`);
      // the frame's load event fires for a refused frame too (with the browser's error page)
      await page.evaluate(
        (target) =>
          new Promise((loaded) => {
            const f = document.createElement("iframe");
            f.addEventListener("load", loaded, { once: true });
            f.src = `${target}/`;
            document.body.append(f);
          }),
        target,
      );
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, "no frame");
      const framed = await frame
        ?.evaluate(() => document.getElementById("no-token") !== null)
        .catch(() => false);
      assert.equal(framed, false, "the page was shown inside another site's frame");
    } finally {
      await page.close();
    }
  });

  it("DNS rebinding: the page under another site's name is refused, and so is its API", async () => {
    const { page } = await tab();
    try {
      const res = await page.goto(`http://evil.example:${web.port}/`);
      assert.equal(res?.status(), 403);
      const api = await page.evaluate(async () => (await fetch("/api/v1/things")).status);
      assert.equal(api, 403);
      assert.deepEqual(ran, []);
    } finally {
      await page.close();
    }
  });
});
