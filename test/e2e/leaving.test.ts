import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { UserState } from "../../src/client/state.js";
import { Cluster, freePort, ROOT } from "../helpers/procs.js";
import { Terminal } from "../helpers/tmux.js";
import { type Client, DOWNLOAD_MS, type MadeFile, ok, randomFile, sha1File } from "./sharing.helpers.js";

// No way of leaving the client loses a download: each way (quit, exit, Ctrl-D and
// a double Ctrl-C on a terminal; SIGINT, SIGTERM, SIGHUP and SIGKILL from a script)
// is tried at three moments of a download (its seeder frozen, just started, well
// under way), 24 times in all. After each, every download started so far is either
// complete and byte-identical, or in the state file to resume; at the end, one more
// login resumes them all and every one completes.

const WAYS = ["quit", "exit", "ctrl-d", "ctrl-c twice", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"] as const;
type Way = (typeof WAYS)[number];
/** How long after the downloads start the client is left, and whether the seeder is frozen then. */
const MOMENTS = [
  { frozen: true, afterMs: 150 },
  { frozen: false, afterMs: 30 },
  { frozen: false, afterMs: 400 },
] as const;
const FILES = 8;
const FILE_SIZE = 32 * 1024 * 1024 + 12_345;

describe("leaving the client never loses a download", () => {
  let c: Cluster;
  let seeder: Client;
  const files: MadeFile[] = [];
  const started: { file: MadeFile; target: string }[] = [];
  const terminals: Terminal[] = [];
  const stateDir = () => join(c.dir, "state-bob");
  const dest = () => join(c.dir, "bob-downloads");

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    seeder = await c.client("alice");
    await ok(seeder, "create_user alice pw-alice", /^user alice created/);
    await ok(seeder, "create_user bob pw-bob", /^user bob created/);
    await ok(seeder, "login alice pw-alice", /^logged in as alice$/);
    await ok(seeder, "create_group leave", /^group leave created/);
    for (let i = 0; i < FILES; i++) {
      const f = await randomFile(join(c.dir, `f${i}.bin`), FILE_SIZE);
      files.push(f);
      await ok(seeder, `upload_file ${f.path} leave`, new RegExp(`^uploaded f${i}\\.bin to leave`));
    }
    const b = await c.client("bob-join", { stateDir: stateDir() });
    await ok(b, "login bob pw-bob", /^logged in as bob$/);
    await ok(b, "join_group leave", /^asked to join leave/);
    await ok(seeder, "accept_request leave bob", /^bob is now a member of leave$/);
    b.endInput();
    assert.equal(await b.waitExit(), 0, b.dump());
  });
  after(async () => {
    for (const t of terminals) await t.close();
    if (seeder?.alive) seeder.child.kill("SIGCONT");
    await c.close();
  });

  /** Every download started so far is complete and identical, or saved to resume. */
  async function assertNothingLost(round: string): Promise<void> {
    const state = JSON.parse(await readFile(join(stateDir(), "users", "bob.json"), "utf8")) as UserState;
    for (const { file, target } of started) {
      const name = target.split("/").at(-1)!;
      const saved = state.downloads.some((d) => d.name === name && d.target === target);
      const done = (await stat(target).catch(() => undefined))?.size === file.size;
      if (done) assert.equal(await sha1File(target), file.sha1, `${round}: ${target} differs`);
      assert.ok(
        done || saved,
        `${round}: ${name} is neither complete nor saved to resume\n${JSON.stringify(state)}`,
      );
    }
  }

  /** One round on a terminal: log in, maybe start a download, leave `way` at the moment. */
  async function onTerminal(way: Way, startFile: MadeFile | undefined, afterMs: number): Promise<void> {
    const port = await freePort();
    const cmd = `'${join(ROOT, "client")}' 127.0.0.1:${port} '${c.infoPath}' --state-dir '${stateDir()}'`;
    const t = await Terminal.start(cmd, c.dir);
    terminals.push(t);
    await t.waitFor(/groupshare>$/m);
    await t.line("login bob pw-bob");
    await t.waitFor(/^logged in as bob$/m);
    if (startFile) {
      await t.line(`download_file leave ${startFile.path.split("/").at(-1)} ${dest()}/`);
      await t.waitFor(/^downloading \[leave\]/m);
    }
    await new Promise((r) => setTimeout(r, afterMs));
    if (way === "quit" || way === "exit") await t.line(way);
    else if (way === "ctrl-d") await t.press("C-d");
    else {
      await t.press("C-c");
      // with no download left running, one Ctrl-C leaves
      const asked = await t.waitFor(/press Ctrl-C again|\^C$/m).then((s) => /press Ctrl-C again/.test(s));
      if (asked) await t.press("C-c");
    }
    assert.equal(await t.waitExit(), 0, `${way}: ${await t.screen()}`);
    assert.doesNotMatch(await t.screen(), /session ended/);
    await t.close();
  }

  /** One round from a script: log in, maybe start a download, send the signal at the moment. */
  async function fromScript(way: Way, startFile: MadeFile | undefined, afterMs: number): Promise<void> {
    const p = await c.client(`bob-${way}-${started.length}`, { stateDir: stateDir() });
    await ok(p, "login bob pw-bob", /^logged in as bob$/);
    if (startFile) {
      await ok(
        p,
        `download_file leave ${startFile.path.split("/").at(-1)} ${dest()}/`,
        /^downloading \[leave\]/,
      );
    }
    await new Promise((r) => setTimeout(r, afterMs));
    if (way === "SIGKILL") await p.kill("SIGKILL");
    else {
      p.child.kill(way as NodeJS.Signals);
      await p.waitExit();
    }
    assert.ok(!p.lines.some((l) => /session ended/.test(l)), p.dump());
  }

  it("after each of 24 leavings, every download is complete or resumes; then all complete", async () => {
    let round = 0;
    for (const moment of MOMENTS) {
      for (const way of WAYS) {
        const file = round < FILES ? files[round] : undefined;
        if (file) started.push({ file, target: join(dest(), file.path.split("/").at(-1)!) });
        if (moment.frozen) seeder.child.kill("SIGSTOP");
        try {
          if (way.startsWith("SIG")) await fromScript(way, file, moment.afterMs);
          else await onTerminal(way, file, moment.afterMs);
        } finally {
          if (moment.frozen) seeder.child.kill("SIGCONT");
        }
        await assertNothingLost(`round ${round} (${way}, ${JSON.stringify(moment)})`);
        round++;
      }
    }
    assert.equal(round, 24);
    // the last login shares again what completed, resumes what is left, and a script's end waits for it
    let complete = 0;
    for (const { file, target } of started)
      if ((await stat(target).catch(() => undefined))?.size === file.size) complete++;
    const last = await c.client("bob-last", { stateDir: stateDir() });
    await ok(last, "login bob pw-bob", /^logged in as bob$/);
    if (complete > 0) await last.expect(`sharing again: ${complete} file${complete === 1 ? "" : "s"}`);
    last.endInput();
    assert.equal(await last.waitExit(DOWNLOAD_MS * 2), 0, last.dump());
    for (const { file, target } of started) assert.equal(await sha1File(target), file.sha1, target);
    for (const { target } of started) await assert.rejects(stat(`${target}.gspart`), { code: "ENOENT" });
  });
});
