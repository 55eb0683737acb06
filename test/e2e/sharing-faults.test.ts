/**
 * File sharing when things go wrong: a peer serving a corrupted copy,
 * a sharer that logs out and back in, a download that waits for a sharer, and a
 * script's end of input with a download still in flight.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { Cluster, WAIT_MS } from "../helpers/procs.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  download,
  groupOf,
  lit,
  ok,
  randomFile,
  restoreMtime,
  seen,
  sha1File,
  sharersOnline,
} from "./sharing.helpers.js";

/** Enough pieces that a downloader asks both of its peers for some. */
const SIZE = 10 * 1024 * 1024 + 4321;

/** Overwrites the start of every piece with garbage, in place: same size; the caller restores the mtime. */
async function corruptEveryPiece(path: string, size: number): Promise<void> {
  const fh = await open(path, "r+");
  try {
    for (let at = 0; at < size; at += PIECE_SIZE) {
      const garbage = randomBytes(Math.min(64, size - at));
      await fh.write(garbage, 0, garbage.length, at);
    }
  } finally {
    await fh.close();
  }
}

describe("sharing faults: corrupt peers, sharers coming and going", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let carol: Client;
  let dave: Client;
  const dir = (n: string) => join(c.dir, n);

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    [alice, bob, carol, dave] = (await groupOf(c, "g", ["alice", "bob", "carol", "dave"])) as [
      Client,
      Client,
      Client,
      Client,
    ];
    for (const n of ["alice", "bob", "carol", "dave"]) await mkdir(dir(n));
  });
  after(() => c.close());

  it("a peer whose copy was corrupted behind its back (same size and mtime) is dropped; the file still arrives whole", async () => {
    const f = await randomFile(join(dir("alice"), "c.bin"), SIZE);
    await ok(alice, `upload_file ${f.path} g`, /^uploaded c\.bin to g: /);
    const bobCopy = await download(bob, "g", "c.bin", dir("bob"));
    await assertSameFile(bobCopy, f);

    // every piece of bob's copy goes bad, and nothing about the file says so
    const was = await stat(bobCopy, { bigint: true });
    await corruptEveryPiece(bobCopy, SIZE);
    await restoreMtime(bobCopy, was.mtimeNs);
    const is = await stat(bobCopy, { bigint: true });
    assert.equal(is.size, was.size);
    assert.equal(is.mtimeNs, was.mtimeNs);
    assert.notEqual(await sha1File(bobCopy), f.sha1);
    assert.match(await ok(carol, "list_files g", /^c\.bin {2}/), /2 sharers online \(2 complete\)/);

    // carol asks both; whatever she takes from bob fails its SHA1
    const carolCopy = await download(carol, "g", "c.bin", dir("carol"));
    const warning = await carol
      .expectErr(/^warning: peer .* sent a corrupt piece/)
      .catch((err: Error) => assert.fail(`${err.message}\n${bob.dump()}`));
    assert.match(
      warning,
      new RegExp(`^warning: peer 127\\.0\\.0\\.1:${bob.port} sent a corrupt piece \\d+ of \\[g\\] c\\.bin`),
    );
    await assertSameFile(carolCopy, f);
    assert.ok(alice.alive && bob.alive && carol.alive);
    assert.equal(
      carol.errLines.filter((l) => l.includes("sent a corrupt piece")).length,
      1,
      "bob was not dropped after his first corrupt piece",
    );
  });

  it("logout stops sharing; a download waits for a sharer ([D] waiting); login shares again and the download completes", async () => {
    const w = await randomFile(join(dir("alice"), "w.bin"), 3 * PIECE_SIZE + 1);
    await ok(alice, `upload_file ${w.path} g`, /^uploaded w\.bin to g: /);
    assert.equal(await sharersOnline(dave, "g", "w.bin"), 1);

    await ok(alice, "logout", /^logged out alice; stopped sharing 2 files$/);
    assert.match(await ok(dave, "list_files g", /^w\.bin {2}/), /unavailable \(no sharer online\)/);

    // dave asks anyway: the download waits for a sharer, visibly
    const target = join(dir("dave"), "w.bin");
    await ok(
      dave,
      `download_file g w.bin ${dir("dave")}`,
      new RegExp(`^downloading \\[g\\] w\\.bin to ${lit(target)} `),
    );
    // it gets there by itself once the tracker has answered: look, within a bound
    let status = "";
    for (const until = Date.now() + WAIT_MS; !/waiting for a sharer/.test(status) && Date.now() < until; ) {
      status = await ok(dave, "show_downloads", /^\[[DC]\] \[g\] w\.bin/);
      await delay(20); // an observation interval, not a synchronisation
    }
    assert.match(
      status,
      /^\[D\] \[g\] w\.bin {2}0 B\/\S+ \S+ 0\.0% {2}waiting for a sharer: try \d+ in \d+ s {2}up=0 B down=0 B ratio=- {2}-> \/.*w\.bin$/,
    );
    // nothing under the final name while it is incomplete; the partial file is beside it
    await assert.rejects(stat(target), { code: "ENOENT" });
    await stat(`${target}.gspart`);

    // the end of dave's input: he must wait for the download, not leave
    dave.endInput();

    // alice comes back: sharing again with no command
    await ok(alice, "login alice pw-alice", /^logged in as alice$/);
    await alice.expect(/^sharing again: 2 files$/);
    assert.match(await ok(carol, "list_files g", /^w\.bin {2}/), /1 sharer online \(1 complete\)/);

    await seen(dave, /^download complete: \[g\] w\.bin -> /, DOWNLOAD_MS);
    assert.equal(await dave.waitExit(DOWNLOAD_MS), 0, dave.dump());
    await assertSameFile(target, w);
  });
});
