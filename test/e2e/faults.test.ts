/**
 * Faults: each one ends in a byte-identical file, or in a clear error with
 * no file under the final name. Real tracker and client processes on 127.0.0.1.
 *
 * Loopback moves a whole test file in a fraction of a second, so "mid-download" is
 * made deterministic by pacing the seeder: it is kept SIGSTOPped and let run for
 * short bursts until the downloader reports part of the file (see `stepUntil`).
 * The fault then strikes while the seeder is frozen with requests in flight.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, open, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { sha1File, writeRandomFile } from "../helpers/files.js";
import { Cluster, type Proc } from "../helpers/procs.js";
import { type Progress, progressOf, stepToPercent, until } from "./sharing.helpers.js";

const run = promisify(execFile);

/** Each test file here is 32 pieces: enough that one short burst of the seeder cannot finish it. */
const FILE_SIZE = 32 * PIECE_SIZE - 12_345;
/** Generous bound on a download that has a sharer, or waits for one (retry schedule up to 15 s). */
const DONE_MS = 60_000;

type Client = Proc & { port: number };

async function assertSameFile(actual: string, expected: string): Promise<void> {
  assert.equal((await stat(actual)).size, (await stat(expected)).size, `${actual}: size`);
  assert.equal(await sha1File(actual), await sha1File(expected), `${actual}: content`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function pieceLen(size: number, piece: number): number {
  return Math.min(PIECE_SIZE, size - piece * PIECE_SIZE);
}

/** Which pieces of a partial file already hold the original's bytes (read piece by piece). */
async function validPieces(partial: string, original: string): Promise<number[]> {
  const size = (await stat(original)).size;
  const a = await open(partial, "r");
  const b = await open(original, "r");
  const bufA = Buffer.alloc(PIECE_SIZE);
  const bufB = Buffer.alloc(PIECE_SIZE);
  const good: number[] = [];
  try {
    for (let i = 0; i * PIECE_SIZE < size; i++) {
      const len = pieceLen(size, i);
      const ra = await a.read(bufA, 0, len, i * PIECE_SIZE);
      await b.read(bufB, 0, len, i * PIECE_SIZE);
      if (ra.bytesRead === len && bufA.subarray(0, len).equals(bufB.subarray(0, len))) good.push(i);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return good;
}

/** The served= counter of show_shares for [g] name. */
async function servedBy(p: Proc, name: string): Promise<number> {
  const line = await p.run("show_shares", new RegExp(`^\\[g\\] ${name.replace(".", "\\.")} `));
  const m = /served=(?:\S+ \S+ \((\d+) bytes\)|(\d+) B)/.exec(line);
  assert.ok(m, line);
  return Number(m[1] ?? m[2]);
}

describe("faults: nothing lost, every fault ends byte-identical or with a clear error", () => {
  let c: Cluster;
  let files: string;
  let tracker: Proc;
  /** Running client processes by user id (restarted in place with the same state dir and port). */
  const clients = new Map<string, Client>();
  const mounts: string[] = [];

  async function start(user: string, opts: { fresh?: boolean } = {}): Promise<Client> {
    const old = clients.get(user);
    if (old?.alive) throw new Error(`${user} is running`);
    const p = await c.client(user, {
      stateDir: join(c.dir, `state-${user}`),
      ...(old && !opts.fresh ? { port: old.port } : {}),
    });
    clients.set(user, p);
    return p;
  }

  async function restart(user: string): Promise<Client> {
    const p = await start(user);
    await p.run(`login ${user} pw-${user}`, `logged in as ${user}`);
    return p;
  }

  function cl(user: string): Client {
    const p = clients.get(user);
    assert.ok(p?.alive, `${user} is not running`);
    return p;
  }

  /** Uploads a fresh random file as `user` (and optionally the same bytes as other users too). */
  async function share(name: string, ...users: string[]): Promise<string> {
    const path = join(files, name);
    await writeRandomFile(path, FILE_SIZE);
    for (const [i, u] of users.entries()) {
      let from = path;
      if (i > 0) {
        await mkdir(join(files, u), { recursive: true });
        from = join(files, u, name);
        await copyFile(path, from);
      }
      await cl(u).run(`upload_file ${from} g`, new RegExp(`^uploaded ${name.replace(".", "\\.")} to g`));
    }
    return path;
  }

  before(async () => {
    c = await Cluster.create(1);
    files = join(c.dir, "files");
    await mkdir(files);
    tracker = await c.tracker(1);
    for (const u of ["owner", "s1", "s2", "d"]) {
      const p = await start(u);
      await p.run(`create_user ${u} pw-${u}`, /^user .* created/);
      await p.run(`login ${u} pw-${u}`, /^logged in as/);
    }
    await cl("owner").run("create_group g", /^group g created/);
    for (const u of ["s1", "s2", "d"]) {
      await cl(u).run("join_group g", /^asked to join g/);
      await cl("owner").run(`accept_request g ${u}`, new RegExp(`^${u} is now a member`));
    }
  });

  after(async () => {
    for (const m of mounts) await run("umount", ["-l", m]).catch(() => {});
    await c?.close();
  });

  it("a seeder killed mid-download: the other seeder serves the rest", async () => {
    const original = await share("a.bin", "s1", "s2");
    const s1 = cl("s1");
    const s2 = cl("s2");
    const d = cl("d");
    const out = join(c.dir, "dl-a");
    await mkdir(out);
    // both frozen: the download can only move when we let s1 run
    s1.child.kill("SIGSTOP");
    s2.child.kill("SIGSTOP");
    try {
      await d.run(`download_file g a.bin ${out}`, /^downloading \[g\] a\.bin/);
      const at = await stepToPercent(s1, d, "a.bin", 10);
      await s1.kill("SIGKILL"); // frozen with requests in flight
      assert.ok(at.percent < 100);
    } finally {
      s2.child.kill("SIGCONT");
    }
    await d.expect(/^download complete: \[g\] a\.bin -> /, DONE_MS);
    await assertSameFile(join(out, "a.bin"), original);
    assert.deepEqual(await readdir(out), ["a.bin"], "no partial file left behind");
    assert.ok((await servedBy(s2, "a.bin")) > 0, "s2 served the rest");
    await restart("s1");
  });

  it("every seeder gone: the download waits, then goes on when one comes back", async () => {
    const original = await share("b.bin", "s1");
    const s1 = cl("s1");
    const d = cl("d");
    const out = join(c.dir, "dl-b");
    await mkdir(out);
    s1.child.kill("SIGSTOP");
    await d.run(`download_file g b.bin ${out}`, /^downloading \[g\] b\.bin/);
    const at = await stepToPercent(s1, d, "b.bin", 10);
    await s1.kill("SIGKILL");
    // nobody has the rest: visible in show_downloads, bounded retry schedule
    let waiting: Progress | undefined;
    await until("show_downloads to say it is waiting", async () => {
      waiting = await progressOf(d, "b.bin");
      return /waiting for a sharer: try \d+ in \d+ s/.test(waiting.line);
    });
    assert.ok(waiting!.percent >= at.percent && waiting!.percent < 100, waiting!.line);
    assert.ok(await exists(join(out, "b.bin.gspart")));
    assert.ok(!(await exists(join(out, "b.bin"))), "nothing under the final name while incomplete");
    await restart("s1"); // same state dir and port: it shares b.bin again
    await d.expect(/^download complete: \[g\] b\.bin -> /, DONE_MS);
    await assertSameFile(join(out, "b.bin"), original);
    assert.deepEqual(await readdir(out), ["b.bin"]);
  });

  it("the tracker SIGKILLed and restarted mid-download: the download goes on and completes", async () => {
    const original = await share("c.bin", "s1");
    const s1 = cl("s1");
    const d = cl("d");
    const out = join(c.dir, "dl-c");
    await mkdir(out);
    s1.child.kill("SIGSTOP");
    try {
      await d.run(`download_file g c.bin ${out}`, /^downloading \[g\] c\.bin/);
      const before = await stepToPercent(s1, d, "c.bin", 10);
      await tracker.kill("SIGKILL");
      // no tracker at all: the connected seeder still serves
      const during = await stepToPercent(s1, d, "c.bin", before.percent + 20);
      assert.ok(during.percent > before.percent);
      tracker = await c.tracker(1); // same port, same store
    } finally {
      s1.child.kill("SIGCONT");
    }
    await d.expect(/^download complete: \[g\] c\.bin -> /, DONE_MS);
    await assertSameFile(join(out, "c.bin"), original);
    assert.deepEqual(await readdir(out), ["c.bin"]);
    // the session outlived the tracker: no new login needed
    await d.run("list_files g", /^c\.bin /);
  });

  it("the downloader SIGKILLed and restarted: it resumes at login and fetches only what it lacked", async () => {
    const original = await share("d.bin", "s1", "s2");
    // s2 holds the file too, but offline: it comes back only once d has restarted
    await cl("s2").run("logout", /^logged out s2/);
    const s1 = cl("s1");
    let d = cl("d");
    const out = join(c.dir, "dl-d");
    await mkdir(out);
    const part = join(out, "d.bin.gspart");
    s1.child.kill("SIGSTOP");
    await d.run(`download_file g d.bin ${out}`, /^downloading \[g\] d\.bin/);
    await stepToPercent(s1, d, "d.bin", 25);
    // the partial download is in the state file before the crash
    const stateFile = join(c.dir, "state-d", "users", "d.json");
    await until("d's state file to list the download", async () =>
      (await readFile(stateFile, "utf8").catch(() => "")).includes('"d.bin"'),
    );
    await d.kill("SIGKILL");
    await s1.kill("SIGKILL");
    assert.ok(!(await exists(join(out, "d.bin"))), "nothing under the final name after the crash");

    const had = await validPieces(part, original);
    assert.ok(had.length >= 2 && had.length < 32, `d had ${had.length} pieces`);
    // the partial file is checked on resume: spoil one verified piece behind d's back
    const spoilt = had[0]!;
    const fh = await open(part, "r+");
    await fh.write(Buffer.alloc(100, 0xee), 0, 100, spoilt * PIECE_SIZE + 7);
    await fh.close();
    const size = (await stat(original)).size;
    let missing = pieceLen(size, spoilt);
    for (let i = 0; i * PIECE_SIZE < size; i++) if (!had.includes(i)) missing += pieceLen(size, i);

    d = await start("d");
    await d.run("login d pw-d", /^logged in as d/);
    await d.expect(`resuming download of [g] d.bin to ${join(out, "d.bin")}`);
    const s2 = cl("s2");
    await s2.run("login s2 pw-s2", /^sharing again: /);
    await d.expect(/^download complete: \[g\] d\.bin -> /, DONE_MS);
    await assertSameFile(join(out, "d.bin"), original);
    assert.deepEqual(await readdir(out), ["d.bin"], "the partial file is gone");
    // s2 is the only sharer since the restart: what it served is all d fetched again
    const served = await servedBy(s2, "d.bin");
    assert.ok(served < size, `served ${served} of ${size} bytes after the restart`);
    assert.equal(served, missing, "exactly the pieces d lacked, and the one spoilt on disk");
    await restart("s1");
  });

  it("the downloader SIGKILLed right after download_file answers, before any piece: resumed at login", async () => {
    const original = await share("g.bin", "s1");
    const s1 = cl("s1");
    let d = cl("d");
    const out = join(c.dir, "dl-g");
    await mkdir(out);
    s1.child.kill("SIGSTOP"); // no piece can arrive
    try {
      await d.run(`download_file g g.bin ${out}`, /^downloading \[g\] g\.bin/);
      await d.kill("SIGKILL");
      d = await start("d");
      await d.run("login d pw-d", /^logged in as d/);
      await d.expect(`resuming download of [g] g.bin to ${join(out, "g.bin")}`);
    } finally {
      s1.child.kill("SIGCONT");
    }
    await d.expect(/^download complete: \[g\] g\.bin -> /, DONE_MS);
    await assertSameFile(join(out, "g.bin"), original);
    assert.deepEqual(await readdir(out), ["g.bin"]);
  });

  it("a destination that is not writable: a clear error at once, and no file written", async () => {
    await share("e.bin", "s1");
    const d = cl("d");
    // under a regular file (ENOTDIR): root cannot write there either
    const plain = join(c.dir, "plain-file");
    await writeFile(plain, "not a directory\n");
    await d.run(
      `download_file g e.bin ${join(plain, "sub")}`,
      /^error: cannot write to .*plain-file.*not a directory/,
    );
    // a read-only file system (tmpfs mounted ro): root cannot write there either
    const ro = join(c.dir, "ro");
    await mkdir(ro);
    await run("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro]);
    mounts.push(ro);
    await d.run(`download_file g e.bin ${ro}`, /^error: cannot write to .*ro: .*not writable/);
    assert.deepEqual(await readdir(ro), []);
    assert.equal(await readFile(plain, "utf8"), "not a directory\n");
  });

  it("a full disk: 'download failed: ... disk full', and no file under the final name nor a partial file", async () => {
    await share("f.bin", "s1");
    const d = cl("d");
    const small = join(c.dir, "small");
    await mkdir(small);
    // a real ENOSPC: a 4 MiB file system for a 16 MiB download
    await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]);
    mounts.push(small);
    await d.run(`download_file g f.bin ${small}`, /^downloading \[g\] f\.bin/);
    const line = await d.expect(/^download failed: \[g\] f\.bin: /, DONE_MS);
    assert.match(line, /disk full/);
    assert.deepEqual(await readdir(small), [], "neither f.bin nor f.bin.gspart");
    // the failed download is not resumed at the next login...
    await until("d's state file to drop the failed download", async () => {
      const state = JSON.parse(await readFile(join(c.dir, "state-d", "users", "d.json"), "utf8"));
      return !state.downloads.some((x: { name: string }) => x.name === "f.bin");
    });
    // ...and d, which announced itself as a partial sharer, is no longer handed out for it
    await until("the tracker to list s1 as the only sharer of f.bin", async () =>
      / 1 sharer online /.test(await cl("owner").run("list_files g", /^f\.bin /)),
    );
  });
});
