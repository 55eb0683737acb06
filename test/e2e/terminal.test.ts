import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster, freePort, ROOT } from "../helpers/procs.js";
import { Terminal } from "../helpers/tmux.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  type MadeFile,
  ok,
  randomFile,
} from "./sharing.helpers.js";

// The shell on a real terminal (a tmux pane): the hidden password, completion,
// Ctrl-C, and the prompt's download bar. A seeder in script mode shares a file.

const PASSWORD = "Tr0ub4dor-unseen";

describe("the shell on a terminal", () => {
  let c: Cluster;
  let seeder: Client;
  let port: number;
  let file: MadeFile;
  const terminals: Terminal[] = [];

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    seeder = await c.client("alice");
    await ok(seeder, "create_user alice pw-alice", /^user alice created/);
    await ok(seeder, "login alice pw-alice", /^logged in as alice$/);
    await ok(seeder, "create_group gshell", /^group gshell created/);
    port = await freePort();
  });
  after(async () => {
    for (const t of terminals) await t.close();
    if (seeder?.alive) seeder.child.kill("SIGCONT");
    await c.close();
  });

  /** bob's client on a terminal, with one state folder for every start. */
  async function bob(): Promise<Terminal> {
    const cmd = `'${join(ROOT, "client")}' 127.0.0.1:${port} '${c.infoPath}' --state-dir '${join(c.dir, "state-bob")}'`;
    // a terminal left by a test that failed would hold the port
    for (const old of terminals.splice(0)) await old.close();
    const t = await Terminal.start(cmd, c.dir);
    terminals.push(t);
    await t.waitFor(/groupshare>$/m);
    return t;
  }

  /** Types `text`, presses Tab (a key of its own, as a person presses it), and waits for `shown`. */
  async function tab(t: Terminal, text: string, shown: RegExp): Promise<void> {
    await t.type(text);
    await t.waitFor((s) => s.endsWith(text));
    await t.press("Tab");
    await t.waitFor(shown);
  }

  it("asks for the password unseen, keeps it out of the screen and the history, and logs in", async () => {
    const t = await bob();
    // Ctrl-C at the password prompt gives the command up
    await t.line("login bob");
    await t.waitFor(/password for bob:$/);
    await t.type("half");
    await t.press("C-c");
    await t.waitFor(/^error: login cancelled$/m);
    await t.line("create_user bob");
    await t.waitFor(/password for bob:$/);
    await t.line(PASSWORD);
    await t.waitFor(/the same password again:$/);
    await t.line(PASSWORD);
    await t.waitFor(/^user bob created/m);
    await t.line("login bob");
    await t.waitFor(/password for bob:$/);
    await t.line(PASSWORD);
    await t.waitFor(/^logged in as bob$/m);
    // the seed's form still works, and its password is not kept either
    await t.line("logout");
    await t.waitFor(/^logged out bob/m);
    await t.line(`login bob ${PASSWORD}`);
    await t.waitFor(/^logged in as bob$/m);
    // up-arrow recalls the login without its password
    await t.press("Up");
    await t.waitFor(/bob> login bob$/);
    await t.press("C-c");
    assert.doesNotMatch((await t.screen()).replace(`login bob ${PASSWORD}`, ""), new RegExp(PASSWORD));
    // a mistyped login keeps no password either
    await t.line(`loign bob ${PASSWORD}`);
    await t.waitFor(/unknown command 'loign': did you mean login\?/);
    await t.line("quit");
    assert.equal(await t.waitExit(), 0);
    const history = await readFile(join(c.dir, "state-bob", "history"), "utf8");
    assert.doesNotMatch(history, new RegExp(PASSWORD), history);
    assert.match(history, /^login bob$/m);
    assert.match(history, /^loign bob$/m);
  });

  it("completes commands with a space after them, group ids and the group's file names", async () => {
    const t = await bob();
    await t.line(`login bob ${PASSWORD}`);
    await t.waitFor(/^logged in as bob$/m);
    await tab(t, "acc", /bob> accept_request$/);
    await t.type("x");
    await t.waitFor(/bob> accept_request x$/);
    await t.press("C-c");
    await tab(t, "join_group gsh", /bob> join_group gshell$/);
    await t.press("Enter");
    await t.waitFor(/^asked to join gshell/m);
    await ok(seeder, "accept_request gshell bob", /^bob is now a member of gshell$/);
    file = await randomFile(join(c.dir, "clip one.bin"), 24 * 1024 * 1024);
    await ok(seeder, `upload_file "${file.path}" gshell`, /^uploaded "clip one\.bin" to gshell/);
    await tab(t, "download_file gshell cl", /bob> download_file gshell clip\\ one\.bin$/);
    await t.press("C-c");
    await t.line("quit");
    assert.equal(await t.waitExit(), 0);
  });

  it("Ctrl-C clears a half-typed line, asks once more with downloads running, and the bar goes when they end", async () => {
    const t = await bob();
    await t.line(`login bob ${PASSWORD}`);
    await t.waitFor(/^logged in as bob$/m);
    // a half-typed line is dropped, the client stays
    await t.type("list_groups half typed");
    await t.waitFor(/half typed$/);
    await t.press("C-c");
    await t.waitFor(/half typed\^C\nbob>$/);
    // a download that cannot finish while the seeder is frozen
    seeder.child.kill("SIGSTOP");
    const dest = join(c.dir, "bob-dl");
    await t.line(`download_file gshell "clip one.bin" ${dest}/`);
    await t.waitFor(/^downloading \[gshell\]/m);
    await t.waitFor(/^bob \[-+\] 0% .*>$/m);
    await t.press("C-c");
    await t.waitFor(/press Ctrl-C again/);
    await t.press("C-c");
    assert.equal(await t.waitExit(), 0);
    // the download was kept: the next login resumes it, and the bar goes when it ends
    const u = await bob();
    await u.line(`login bob ${PASSWORD}`);
    await u.waitFor(/^resuming download of \[gshell\] "clip one\.bin"/m);
    // news comes on a line of its own, above what is being typed, which stays
    await u.type("list_gr");
    await u.waitFor(/> list_gr$/);
    seeder.child.kill("SIGCONT");
    const done = await u.waitFor(/^download complete: \[gshell\] "clip one\.bin"/m, DOWNLOAD_MS);
    assert.doesNotMatch(done, /list_grdownload|\]download complete/);
    // the bar goes when the last download ends; the half-typed line is still there
    await u.waitFor((s) => s.split("\n").at(-1) === "bob> list_gr");
    await u.press("C-c");
    await u.waitFor((s) => s.split("\n").at(-1) === "bob>");
    await assertSameFile(join(dest, "clip one.bin"), file);
    // no download running, but the finished file is shared: Ctrl-C asks once more
    await u.press("C-c");
    await u.waitFor(/you are sharing 1 file: press Ctrl-C again within 3 s to leave/);
    await u.press("C-c");
    assert.equal(await u.waitExit(), 0);
  });
});
