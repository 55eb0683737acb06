/**
 * The partial file `<target>.gspart` in a folder another local user can write: a
 * shared folder they own, mode 1777 (sticky, world-writable). As its owner they may
 * create files there, and rename or delete anyone's. Real tracker and client
 * processes; the other user's files are made by chown, so these tests need root.
 *
 * A download is held mid-way by pacing its seeder (SIGSTOP, short bursts: see
 * stepToPercent in sharing.helpers.ts).
 */
import assert from "node:assert/strict";
import { chmod, chown, lchown, lstat, mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { Cluster } from "../helpers/procs.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  groupOf,
  type MadeFile,
  ok,
  randomFile,
  seen,
  stepToPercent,
  until,
} from "./sharing.helpers.js";

/** `nobody`: the other local user. */
const OTHER_UID = 65534;
/** 32 pieces: one short burst of the seeder cannot finish it. */
const SIZE = 32 * PIECE_SIZE - 12_345;
/** The other user's file: as big as the download, so a resume would take it for a partial file. */
const PLANTED = Buffer.alloc(SIZE, 1);
const NOTES = "bob's own notes: never overwritten\n";

const root = process.getuid?.() === 0;

async function gone(path: string): Promise<boolean> {
  return lstat(path).then(
    () => false,
    () => true,
  );
}

describe("partial files in a folder another local user can write", {
  skip: root ? false : "needs root: the other user's files are made with chown",
}, () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let carol: Client;
  /** the other user's folder, 1777 */
  let shared: string;
  /** a file of bob's, outside the shared folder */
  let notes: string;

  /** A file of the other user's at `path`: theirs, and writable by everyone. */
  async function plant(path: string): Promise<void> {
    await writeFile(path, PLANTED);
    await chown(path, OTHER_UID, OTHER_UID);
    await chmod(path, 0o666);
  }

  /** The other user's symbolic link at `path` to bob's notes. */
  async function linkToNotes(path: string): Promise<void> {
    await symlink(notes, path);
    await lchown(path, OTHER_UID, OTHER_UID);
  }

  /** Asserts the other user's file is as they left it: theirs, with their bytes. */
  async function assertUntouched(path: string): Promise<void> {
    const st = await lstat(path);
    assert.equal(st.uid, OTHER_UID, `${path}: owner`);
    assert.deepEqual(await readFile(path), PLANTED, `${path}: content`);
  }

  /** The line that ends a download of [g] name, or its `error:` at once. */
  function endOf(name: string): RegExp {
    return new RegExp(`^error: |^download (?:complete|failed): \\[g\\] ${name.replace(".", "\\.")}(?: ->|:)`);
  }

  /** alice shares a new file; alice is then frozen, to be let run in bursts. */
  async function frozenShare(name: string): Promise<MadeFile> {
    alice.child.kill("SIGCONT"); // left frozen by a test that failed midway
    const f = await randomFile(join(c.dir, "alice", name), SIZE);
    await ok(alice, `upload_file ${f.path} g`, new RegExp(`^uploaded ${name.replace(".", "\\.")} to g`));
    alice.child.kill("SIGSTOP");
    return f;
  }

  /** bob downloads `name` into the shared folder until it holds part of it; alice stays frozen. */
  async function bobMidway(name: string): Promise<void> {
    await ok(bob, `download_file g ${name} ${shared}/`, /^downloading \[g\] /);
    await stepToPercent(alice, bob, name, 10);
  }

  /** bob is SIGKILLed mid-download, once its state file lists the download with verified pieces. */
  async function crashBob(name: string): Promise<void> {
    const stateFile = join(c.dir, "state-bob", "users", "bob.json");
    const listed = new RegExp(`"name": "${name.replace(".", "\\.")}"[^}]*"have": "[^"]+"`);
    await until("bob's state file to list the partial file", async () =>
      listed.test(await readFile(stateFile, "utf8").catch(() => "")),
    );
    await bob.kill("SIGKILL");
    const port = bob.port;
    bob = await c.client("bob-again", { stateDir: join(c.dir, "state-bob"), port });
  }

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    [alice, bob, carol] = (await groupOf(c, "g", ["alice", "bob", "carol"])) as [Client, Client, Client];
    shared = join(c.dir, "shared");
    await mkdir(shared);
    await chown(shared, OTHER_UID, OTHER_UID);
    await chmod(shared, 0o1777);
    for (const d of ["alice", "carol"]) await mkdir(join(c.dir, d));
    notes = join(c.dir, "bob-notes.txt");
    await writeFile(notes, NOTES);
  });
  after(async () => {
    alice.child.kill("SIGCONT");
    await c.close();
  });

  /** What the other user puts at a partial file's path, and how bob's download must leave it. */
  const plantings = [
    {
      what: "their own file",
      put: plant,
      refused: /gspart belongs to another user \(uid 65534\): left alone/,
      intact: assertUntouched,
    },
    {
      what: "a link to bob's notes",
      put: linkToNotes,
      refused: /gspart is a symbolic link: left alone/,
      intact: async (path: string) => {
        assert.ok((await lstat(path)).isSymbolicLink());
        assert.equal(await readFile(notes, "utf8"), NOTES);
      },
    },
  ];

  const theirs = plantings[0]!;

  /** The folder's owner moves bob's partial file of `name` away and puts something of theirs in its place. */
  async function swapPart(name: string, put: (path: string) => Promise<void>): Promise<string> {
    const part = join(shared, `${name}.gspart`);
    await rename(part, join(shared, `${name}.moved`));
    await put(part);
    return part;
  }

  for (const [i, p] of plantings.entries()) {
    it(`a partial file that is ${p.what}, there before the download: not used, and left alone`, async () => {
      const name = `a${i}.bin`;
      await frozenShare(name);
      alice.child.kill("SIGCONT");
      const part = join(shared, `${name}.gspart`);
      await p.put(part);
      const end = await bob.run(`download_file g ${name} ${shared}/`, endOf(name), DOWNLOAD_MS);
      assert.match(end, /\.gspart exists; not overwritten/, bob.dump());
      await p.intact(part);
      assert.ok(await gone(join(shared, name)), "nothing under the final name");
    });
  }

  it("bob's own partial file is 0600 while it downloads, resumes after a crash, and ends bob's, 0644 less the umask", async () => {
    const f = await frozenShare("own.bin");
    await bobMidway("own.bin");
    const part = join(shared, "own.bin.gspart");
    const st = await lstat(part);
    assert.equal(st.mode & 0o777, 0o600, "owner-only until complete");
    await crashBob("own.bin");
    alice.child.kill("SIGCONT");
    await ok(bob, "login bob pw-bob", /^logged in as bob/);
    const end = await bob.expect(endOf("own.bin"), DOWNLOAD_MS);
    assert.match(end, /^download complete: /, bob.dump());
    const target = join(shared, "own.bin");
    await assertSameFile(target, f);
    const done = await lstat(target);
    assert.equal(done.ino, st.ino, "the file it wrote, resumed");
    assert.equal(done.uid, process.getuid!());
    assert.equal(done.nlink, 1, "the partial name is gone");
    assert.equal(done.mode & 0o777, 0o644 & ~process.umask());
  });

  for (const [i, p] of plantings.entries()) {
    it(`after a crash, bob's partial file swapped for ${p.what}: the resume refuses it and leaves it alone`, async () => {
      const name = `r${i}.bin`;
      await frozenShare(name);
      await bobMidway(name);
      await crashBob(name);
      const part = await swapPart(name, p.put);
      alice.child.kill("SIGCONT");
      await ok(bob, "login bob pw-bob", /^logged in as bob/);
      const end = await bob.expect(endOf(name), DOWNLOAD_MS);
      assert.match(end, /^download failed: /, bob.dump());
      assert.match(end, p.refused);
      await p.intact(part);
      assert.ok(await gone(join(shared, name)), "nothing under the final name");
    });
  }

  it("bob's partial file swapped while bob shares it and downloads: no peer gets the other file's bytes, and it is never published", async () => {
    const f = await frozenShare("s.bin");
    await bobMidway("s.bin");
    const part = await swapPart("s.bin", theirs.put);
    // carol finds bob a partial sharer (alice is frozen): bob must not serve the planted file
    const carolDir = join(c.dir, "carol");
    await ok(carol, `download_file g s.bin ${carolDir}/`, /^downloading \[g\] /);
    await seen(bob, /^warning: .*s\.bin\.gspart changed on disk since it was shared: no longer sharing it/);
    alice.child.kill("SIGCONT");
    assert.match(await carol.expect(endOf("s.bin"), DOWNLOAD_MS), /^download complete: /, carol.dump());
    await assertSameFile(join(carolDir, "s.bin"), f);
    assert.ok(!carol.lines.some((l) => /sent a corrupt piece/.test(l)), carol.dump());
    // bob's own download went on in the file it created, and is not linked from the planted one
    const end = await bob.expect(endOf("s.bin"), DOWNLOAD_MS);
    assert.match(end, /^download failed: .*s\.bin\.gspart was replaced on disk/, bob.dump());
    assert.ok(await gone(join(shared, "s.bin")), "nothing under the final name");
    await theirs.intact(part);
  });

  it("bob's partial file swapped mid-download: the file bob checked is not published, nor the one put in its place", async () => {
    await frozenShare("p.bin");
    await bobMidway("p.bin");
    const part = await swapPart("p.bin", theirs.put);
    alice.child.kill("SIGCONT");
    const end = await bob.expect(endOf("p.bin"), DOWNLOAD_MS);
    assert.match(end, /^download failed: .*p\.bin\.gspart was replaced on disk/, bob.dump());
    assert.ok(await gone(join(shared, "p.bin")), "nothing under the final name");
    await theirs.intact(part);
  });
});
