/**
 * The web UI in a real browser (Debian's Chromium, headless), against two real clients
 * started with `--web` and a real tracker: each control is found by its role and
 * accessible name, as a screen reader would find it. Screenshots go to the run's folder,
 * or to $GS_SCREENSHOTS when set.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { haveChromium, launchBrowser } from "../helpers/browser.js";
import { Cluster } from "../helpers/procs.js";
import { webClient } from "../helpers/web.js";
import { assertSameFile, ok, randomFile } from "./sharing.helpers.js";

const UI_MS = 30_000;

describe("the web UI in a real browser", { timeout: 300_000 }, () => {
  if (!haveChromium()) {
    it("needs Chromium", (t) => t.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)"));
    return;
  }
  let c: Cluster;
  let browser: Browser;
  let alice: Awaited<ReturnType<typeof webClient>>;
  let bob: Awaited<ReturnType<typeof webClient>>;
  let pa: Page;
  let pb: Page;
  let shots: string;

  before(async () => {
    c = await Cluster.create();
    await c.tracker();
    alice = await webClient(c, "alice");
    // a download limit, so that a download on loopback lasts long enough to be watched
    bob = await webClient(c, "bob", ["--max-down", "6MB/s"]);
    browser = await launchBrowser();
    // two browsers' worth of storage: each page keeps its own token
    pa = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    pb = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    for (const p of [pa, pb]) {
      p.on("pageerror", (e) => assert.fail(`the page threw: ${e.message}`));
      p.on("dialog", (d) => void d.accept());
    }
    shots = process.env.GS_SCREENSHOTS ?? join(c.dir, "screenshots");
    await mkdir(shots, { recursive: true });
  });
  after(async () => {
    if (alice?.proc.alive) alice.proc.child.kill("SIGCONT");
    await browser?.close();
    await c?.close();
  });

  async function signUp(p: Page, url: string, user: string, password: string): Promise<void> {
    await p.goto(url);
    // the token left the address bar at once
    assert.doesNotMatch(p.url(), /token/);
    await p.getByLabel("New user id").fill(user);
    await p.getByLabel("New password").fill(password);
    await p.getByRole("button", { name: "Create account" }).click();
    await p.getByText(`Account ${user} created`).waitFor({ timeout: UI_MS });
    await p.getByLabel("Password", { exact: true }).fill(password);
    await p.getByRole("button", { name: "Log in" }).click();
    await p.getByText(`Signed in as ${user}`).waitFor({ timeout: UI_MS });
  }

  it("two members sign up, form a group, share, and download with progress seen live", async () => {
    await signUp(pa, alice.url, "alice", "pw-alice");
    // a login in the page is the shell's login too
    alice.proc.send("list_groups");
    await alice.proc.expect(/^\(no groups yet/);
    await pa.getByLabel("New group id").fill("films");
    await pa.getByRole("button", { name: "Create group" }).click();
    await pa.getByRole("heading", { name: "films" }).waitFor({ timeout: UI_MS });

    await signUp(pb, bob.url, "bob", "pw-bob");
    await pb.getByLabel("Search groups").fill("fil");
    await pb.getByRole("button", { name: "Join films" }).click();
    await pb.getByText("Asked to join films").waitFor({ timeout: UI_MS });

    // the owner hears of the request without reloading, and accepts it
    await pa.getByText("bob asks to join films").waitFor({ timeout: UI_MS });
    await pa.getByRole("button", { name: "Accept bob" }).click();
    await pb.getByText("You are now a member of films").waitFor({ timeout: UI_MS });
    await pa.getByRole("button", { name: "Remove bob" }).waitFor({ timeout: UI_MS });

    const file = await randomFile(join(c.dir, "holiday clip.bin"), 48 * 1024 * 1024 + 5);
    await pa.getByLabel("File to share (path on this computer)").fill(file.path);
    await pa.getByRole("button", { name: "Share file" }).click();
    await pa.getByText("Sharing holiday clip.bin in films").waitFor({ timeout: UI_MS });
    await pa.screenshot({ path: join(shots, "group-owner.png") });

    await pb.getByRole("button", { name: "Open films" }).click();
    await pb.getByRole("button", { name: "Download holiday clip.bin" }).click();
    const dest = join(c.dir, "bob-dl");
    await mkdir(dest);
    await pb.getByLabel("Destination folder").fill(dest);
    await pb.getByRole("button", { name: "Start download" }).click();
    await pb.getByRole("tab", { name: /Downloads/ }).click();
    // the bar moves while the page does nothing but listen: two values short of the end
    const bar = 'progress[aria-label="Progress of holiday clip.bin in films"]';
    const shownAbove = (floor: number) =>
      pb
        .waitForFunction(
          ([sel, min]) => {
            const v = Number(document.querySelector(sel as string)?.getAttribute("value") ?? 0);
            return v > (min as number) && v < 100 ? v : false;
          },
          [bar, floor] as const,
          { timeout: UI_MS },
        )
        .then((h) => h.jsonValue() as Promise<number>);
    const first = await shownAbove(0);
    const later = await shownAbove(first);
    assert.ok(first < later && later < 100, `progress seen: ${first}% then ${later}%`);
    await pb.getByRole("table", { name: "Peers of holiday clip.bin in films" }).waitFor({ timeout: UI_MS });
    await pb.screenshot({ path: join(shots, "downloading.png") });
    await pb
      .getByText(`Saved to ${join(dest, "holiday clip.bin")}`, { exact: true })
      .waitFor({ timeout: 60_000 });
    await assertSameFile(join(dest, "holiday clip.bin"), file);

    // what was served shows on the sharer's Shares tab
    await pa.getByRole("tab", { name: /Shares/ }).click();
    await pa
      .getByRole("button", { name: "Stop sharing holiday clip.bin in films" })
      .waitFor({ timeout: UI_MS });
    await pa.screenshot({ path: join(shots, "shares.png") });
  });

  it("cancels a download, and its partial file goes", async () => {
    const file = await randomFile(join(c.dir, "second.bin"), 24 * 1024 * 1024);
    await pa.getByRole("tab", { name: "Groups" }).click();
    await pa.getByLabel("File to share (path on this computer)").fill(file.path);
    await pa.getByRole("button", { name: "Share file" }).click();
    await pa.getByText("Sharing second.bin in films").waitFor({ timeout: UI_MS });

    await pb.getByRole("tab", { name: "Groups" }).click();
    await pb.getByRole("button", { name: "Open films" }).click();
    await pb.getByRole("button", { name: "Download second.bin" }).click();
    const dest = join(c.dir, "bob-dl");
    await pb.getByLabel("Destination folder").fill(dest);
    alice.proc.child.kill("SIGSTOP");
    try {
      await pb.getByRole("button", { name: "Start download" }).click();
      await pb.getByRole("tab", { name: /Downloads/ }).click();
      // paused and resumed from the page: the state and the button follow
      await pb.getByRole("button", { name: "Pause download of second.bin" }).click();
      const item = pb.getByRole("listitem", { name: "second.bin in films" });
      await item.getByText("paused", { exact: true }).waitFor({ timeout: UI_MS });
      await pb.getByRole("button", { name: "Resume download of second.bin" }).click();
      await pb.getByRole("button", { name: "Pause download of second.bin" }).waitFor({ timeout: UI_MS });
      // its own limit, from its Limit button: the form is set to it
      await pb.getByRole("button", { name: "Limit download of second.bin" }).click();
      await pb.getByLabel("Download limit").fill("300kB/s");
      await pb.getByRole("button", { name: "Set limits" }).click();
      await pb
        .getByText("Download second.bin (films): download 293.0 KiB/s", { exact: true })
        .waitFor({ timeout: UI_MS });
      await ok(bob.proc, "show_limits", /^upload limit: /);
      await bob.proc.expect(/^ {2}\[films\] second\.bin: download 300\.0 kB\/s$/);
      await pb.getByRole("button", { name: "Cancel download of second.bin" }).click();
      await pb.getByText("Cancelled the download of second.bin").waitFor({ timeout: UI_MS });
      await pb
        .getByRole("listitem", { name: "second.bin in films" })
        .waitFor({ state: "detached", timeout: UI_MS });
    } finally {
      alice.proc.child.kill("SIGCONT");
    }
    await assert.rejects(stat(join(dest, "second.bin.gspart")), { code: "ENOENT" });
    await assert.rejects(stat(join(dest, "second.bin")), { code: "ENOENT" });
  });

  it("the speed limits form sets what show_limits reports; a bad rate changes nothing", async () => {
    await pb.getByRole("tab", { name: /Downloads/ }).click();
    await pb.getByLabel("Upload limit").fill("2MB/s");
    await pb.getByLabel("Download limit").fill("40Mbit/s");
    await pb.getByRole("button", { name: "Set limits" }).click();
    // the page shows speeds in binary units, as for downloads: 2 MB/s is 1.91 MiB/s
    const now = "Every transfer together: upload 1.91 MiB/s, download 4.77 MiB/s";
    await pb.getByText(now, { exact: true }).first().waitFor({ timeout: UI_MS });
    await ok(bob.proc, "show_limits", /^upload limit: 2\.00 MB\/s$/);
    await bob.proc.expect(/^download limit: 5\.00 MB\/s$/);

    // a group's limit, chosen in "Applies to", listed with a Remove button
    await pb.getByLabel("Applies to").selectOption({ label: "Group films" });
    await pb.getByLabel("Download limit").fill("1MB/s");
    await pb.getByRole("button", { name: "Set limits" }).click();
    const groupLimit = pb.getByText(/^Group films: upload unlimited, download /);
    await groupLimit.waitFor({ timeout: UI_MS });
    await pb.screenshot({ path: join(shots, "limits.png"), fullPage: true });
    await ok(bob.proc, "show_limits", /^upload limit: 2\.00 MB\/s$/);
    await bob.proc.expect(/^ {2}group films: upload unlimited, download 1\.00 MB\/s$/);
    await pb.getByRole("button", { name: "Remove the limits of Group films" }).click();
    await groupLimit.waitFor({ state: "detached", timeout: UI_MS });
    await pb.getByLabel("Applies to").selectOption({ label: "Every transfer together" });

    await pb.getByLabel("Upload limit").fill("5Mb/s");
    await pb.getByRole("button", { name: "Set limits" }).click();
    await pb.getByText(/not a speed limit: '5Mb\/s'/).waitFor({ timeout: UI_MS });
    await ok(bob.proc, "show_limits", /^upload limit: 2\.00 MB\/s$/);
    await ok(bob.proc, "set_limit up unlimited", /^upload limit \(client-wide\): unlimited$/);
    await ok(bob.proc, "set_limit down unlimited", /^download limit \(client-wide\): unlimited$/);
  });

  it("a remembered login comes back after a headless restart, and logout forgets it", async () => {
    const carol = await webClient(c, "carol", ["--headless"]);
    const pc = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await pc.goto(carol.url);
    await pc.getByLabel("New user id").fill("carol");
    await pc.getByLabel("New password").fill("pw-carol");
    await pc.getByRole("button", { name: "Create account" }).click();
    await pc.getByText("Account carol created").waitFor({ timeout: UI_MS });
    await pc.getByLabel("Password", { exact: true }).fill("pw-carol");
    await pc.getByRole("checkbox", { name: "Remember me on this device" }).check();
    await pc.getByRole("button", { name: "Log in" }).click();
    await pc.getByText("Signed in as carol").waitFor({ timeout: UI_MS });
    const file = join(c.dir, "state-carol", "remembered_login.json");
    const st = await stat(file);
    assert.equal(st.mode & 0o777, 0o600);
    assert.doesNotMatch(await readFile(file, "utf8"), /pw-carol/);

    // stopped as a service manager stops it, then started again: no password typed anywhere
    carol.proc.child.kill("SIGTERM");
    assert.equal(await carol.proc.waitExit(), 0);
    const again = await webClient(c, "carol", ["--headless"]);
    await again.proc.expect(/^logged in as carol$/);
    await pc.goto(again.url);
    await pc.getByText("Signed in as carol").waitFor({ timeout: UI_MS });

    await pc.getByRole("button", { name: "Log out" }).click();
    // the notice comes with the logout's answer, the login form perhaps before it (an event)
    await pc.getByText("Logged out: sharing stopped").waitFor({ timeout: UI_MS });
    await assert.rejects(stat(file), { code: "ENOENT" });
    again.proc.child.kill("SIGTERM");
    assert.equal(await again.proc.waitExit(), 0);
    const third = await webClient(c, "carol", ["--headless"]);
    await pc.goto(third.url);
    await pc.getByRole("button", { name: "Log in" }).waitFor({ timeout: UI_MS });
    assert.equal(
      third.proc.lines.some((l) => /^logged in as/.test(l)),
      false,
    );
    third.proc.child.kill("SIGTERM");
    await third.proc.waitExit();
  });

  it("reads on a narrow window", async () => {
    await pb.setViewportSize({ width: 400, height: 800 });
    await pb.getByRole("tab", { name: "Groups" }).click();
    await pb.getByRole("button", { name: "Open films" }).click();
    await pb.getByRole("button", { name: "Download second.bin" }).waitFor({ timeout: UI_MS });
    // nothing wider than the window: no sideways scrolling
    const overflow = await pb.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 400 px window`);
    await pb.screenshot({ path: join(shots, "narrow.png"), fullPage: true });
  });
});
