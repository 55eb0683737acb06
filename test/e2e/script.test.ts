import assert from "node:assert/strict";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster } from "../helpers/procs.js";
import { assertSameFile, DOWNLOAD_MS, ok, randomFile, seen } from "./sharing.helpers.js";

// The client in script mode (stdin a pipe): its exit status, errors on stderr,
// paths with ~ and missing folders, and the small answers a script relies on.

describe("the client in a script", () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    const a = await c.client("setup");
    await ok(a, "create_user alice pw-alice", /^user alice created/);
    await ok(a, "create_user bob pw-bob", /^user bob created/);
    a.endInput();
    assert.equal(await a.waitExit(), 0, a.dump());
  });
  after(() => c.close());

  /** Runs `lines` as a script; its exit status, stdout and stderr. */
  async function script(name: string, lines: string[], env?: NodeJS.ProcessEnv) {
    const p = await c.client(name, { separateStderr: true, env });
    for (const l of lines) p.send(l);
    p.endInput();
    const code = await p.waitExit(DOWNLOAD_MS);
    return { code, out: p.lines, err: p.errLines, dump: p.dump() };
  }

  it("exits 0 when every command worked, 1 when one failed, with the error on stderr", async () => {
    const good = await script("good", ["login alice pw-alice", "list_groups", "logout"]);
    assert.equal(good.code, 0, good.dump);
    assert.deepEqual(good.err, [], good.dump);

    const bad = await script("bad", ["login nobody x", "list_groups", "bogus", "LIST_GROUPS", "list_group"]);
    assert.equal(bad.code, 1, bad.dump);
    assert.equal(bad.out.filter((l) => l.startsWith("error:")).length, 0, "no error on stdout");
    assert.match(bad.err[0]!, /^error: wrong user id or password/);
    assert.match(bad.err[1]!, /^error: not logged in/);
    assert.match(bad.err[2]!, /^error: unknown command 'bogus': type help/);
    assert.match(bad.err[3]!, /^error: unknown command 'LIST_GROUPS': did you mean list_groups\?/);
    assert.match(bad.err[4]!, /^error: unknown command 'list_group': did you mean list_groups\?/);
  });

  it("~ is the home folder, a destination's missing folders are made, and errors name the folder", async () => {
    const home = join(c.dir, "home");
    await mkdir(home);
    const f = await randomFile(join(home, "clip.bin"), 3 * 1024 * 1024 + 5);
    const blocker = join(home, "plain");
    await writeFile(blocker, "a file, not a folder\n");
    const alice = await c.client("alice", { env: { HOME: home } });
    await ok(alice, "login alice pw-alice", /^logged in as alice$/);
    await ok(alice, "create_group paths", /^group paths created/);
    await ok(alice, "upload_file ~/clip.bin paths", /^uploaded clip\.bin to paths/);
    await randomFile(join(home, "two.bin"), 1024 * 1024);
    await ok(alice, "upload_file ~/two.bin paths", /^uploaded two\.bin to paths/);
    // a path with a space, unquoted: the error says to quote it
    assert.match(
      await alice.run("upload_file ~/my clip.bin paths", /^error:/),
      /takes 2 arguments, got 3: .*a path with spaces goes in quotes/,
    );
    const bob = await c.client("bob-paths", { env: { HOME: home } });
    await ok(bob, "login bob pw-bob", /^logged in as bob$/);
    await ok(bob, "join_group paths", /^asked to join paths/);
    await ok(alice, "accept_request paths bob", /^bob is now a member of paths$/);
    await ok(bob, "download_file paths clip.bin ~/new/deeper/", /^downloading \[paths\] clip\.bin to /);
    await seen(bob, /^download complete: \[paths\] clip\.bin -> .*home\/new\/deeper\/clip\.bin/, DOWNLOAD_MS);
    await assertSameFile(join(home, "new", "deeper", "clip.bin"), f);
    await ok(bob, "download_file paths two.bin ~/other/copy.bin", /^downloading \[paths\] two\.bin to /);
    await seen(bob, /^download complete: \[paths\] two\.bin -> .*home\/other\/copy\.bin/, DOWNLOAD_MS);
    assert.ok((await stat(join(home, "other", "copy.bin"))).isFile());
    assert.match(
      await bob.run("download_file paths clip.bin ~/plain/sub/x.bin", /^error:/),
      new RegExp(`^error: cannot write to ${blocker.replace(/[.]/g, "\\.")}: not a directory`),
    );
    bob.endInput();
    assert.equal(await bob.waitExit(), 1, "the refused command makes the status 1");
    await ok(alice, "logout", /^logged out alice/);
  });

  it("list_files for a pending member says the request is pending", async () => {
    const alice = await c.client("alice2");
    await ok(alice, "login alice pw-alice", /^logged in as alice$/);
    await ok(alice, "create_group pend", /^group pend created/);
    const bob = await c.client("bob");
    await ok(bob, "login bob pw-bob", /^logged in as bob$/);
    await ok(bob, "join_group pend", /^asked to join pend/);
    const line = await bob.run("list_files pend", /^error:/);
    assert.match(line, /^error: your request to join 'pend' is pending: the owner must accept it/);
    assert.doesNotMatch(line, /join_group first/);
  });

  it("cancel_download stops a download in any phase, forgets it and deletes its partial file", async () => {
    const files = join(c.dir, "cancel-files");
    const into = join(c.dir, "cancel-into");
    await mkdir(files);
    const one = await randomFile(join(files, "c1.bin"), 16 * 1024 * 1024);
    const two = await randomFile(join(files, "c2.bin"), 4 * 1024 * 1024);
    const alice = await c.client("alice-cancel");
    await ok(alice, "login alice pw-alice", /^logged in as alice$/);
    await ok(alice, "create_group cancel", /^group cancel created/);
    await ok(alice, `upload_file ${one.path} cancel`, /^uploaded c1\.bin/);
    await ok(alice, `upload_file ${two.path} cancel`, /^uploaded c2\.bin/);
    const bobState = join(c.dir, "state-bob-cancel");
    let bob = await c.client("bob-cancel", { stateDir: bobState });
    await ok(bob, "login bob pw-bob", /^logged in as bob$/);
    await ok(bob, "join_group cancel", /^asked to join cancel/);
    await ok(alice, "accept_request cancel bob", /^bob is now a member of cancel$/);

    // while it fetches (its seeder frozen mid-way)
    alice.child.kill("SIGSTOP");
    try {
      await ok(bob, `download_file cancel c1.bin ${into}/`, /^downloading \[cancel\] c1\.bin/);
      // it has opened its partial file: look, within a bound
      const part = join(into, "c1.bin.gspart");
      for (
        const until = Date.now() + DOWNLOAD_MS;
        !(await stat(part).catch(() => undefined)) && Date.now() < until;
      ) {
        await ok(bob, "show_downloads", /^\[[DC]\] \[cancel\] c1\.bin/);
      }
      await stat(part);
      const line = await ok(
        bob,
        "cancel_download cancel c1.bin",
        /^cancelled the download of \[cancel\] c1\.bin/,
      );
      assert.match(line, /deleted .*c1\.bin\.gspart$/);
    } finally {
      alice.child.kill("SIGCONT");
    }
    await assert.rejects(stat(join(into, "c1.bin.gspart")), { code: "ENOENT" });
    await assert.rejects(stat(join(into, "c1.bin")), { code: "ENOENT" });

    // while it waits for a sharer (the only one logged out)
    await ok(alice, "logout", /^logged out alice/);
    await ok(bob, `download_file cancel c2.bin ${into}/`, /^downloading \[cancel\] c2\.bin/);
    let status = "";
    for (
      const until = Date.now() + DOWNLOAD_MS;
      !/waiting for a sharer/.test(status) && Date.now() < until;
    ) {
      status = await ok(bob, "show_downloads", /^\[[DC]\] \[cancel\] c2\.bin/);
    }
    assert.match(status, /waiting for a sharer/);
    // it waits to resume: before the next login, show_downloads says so
    bob.child.kill("SIGTERM");
    assert.equal(await bob.waitExit(), 0, bob.dump());
    bob = await c.client("bob-cancel-2", { stateDir: bobState });
    assert.match(
      await ok(bob, "show_downloads", /^\[D\] \[cancel\] c2\.bin/),
      /resumes when bob logs in {2}-> .*c2\.bin$/,
    );
    await ok(bob, "login bob pw-bob", /^logged in as bob$/);
    await ok(bob, "cancel_download cancel c2.bin", /^cancelled the download of \[cancel\] c2\.bin/);
    assert.match(
      await bob.run("cancel_download cancel c2.bin", /^error:/),
      /no download of \[cancel\] c2\.bin/,
    );
    await ok(bob, "show_downloads", /^\(no downloads\)$/);
    await assert.rejects(stat(join(into, "c2.bin.gspart")), { code: "ENOENT" });
    await ok(bob, "logout", /^logged out bob/);
    // forgotten: the next login resumes nothing
    await ok(bob, "show_downloads", /^\(no downloads\)$/);
    const from = bob.lines.length;
    await ok(bob, "login bob pw-bob", /^logged in as bob$/);
    await ok(bob, "show_downloads", /^\(no downloads\)$/);
    assert.ok(!bob.lines.slice(from).some((l) => /^resuming download/.test(l)), bob.dump());
  });
});
