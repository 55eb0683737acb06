/**
 * File sharing, with a real tracker and real clients on 127.0.0.1:
 * a file spread over several peers, odd sizes and names, where downloads land,
 * and stop_share.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { Cluster } from "../helpers/procs.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  download,
  fails,
  groupOf,
  lit,
  ok,
  randomFile,
  seen,
  servedBytes,
  sharersOnline,
  shown,
} from "./sharing.helpers.js";

/** Several MiB, and not a whole number of pieces: the last piece is short. */
const BIG = 12 * 1024 * 1024 + 12345;

/**
 * Watches `path` until stopped: whenever it exists it must already be the whole
 * file (the client writes `<path>.gspart` and links it into place when verified).
 */
function watchTarget(path: string, size: number): { stop(): Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      const st = await stat(path).catch(() => undefined);
      if (st) assert.equal(st.size, size, `${path} exists with ${st.size} of ${size} bytes mid-download`);
      await delay(2); // an observation interval, not a synchronisation
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe("sharing: one group, three members", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let carol: Client;
  const dir = (n: string) => join(c.dir, n);

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    [alice, bob, carol] = (await groupOf(c, "g", ["alice", "bob", "carol"])) as [Client, Client, Client];
    for (const n of ["alice", "bob", "carol"]) await mkdir(dir(n));
  });
  after(() => c.close());

  it("B downloads from A; then C downloads from both A and B; every copy is byte-identical", async () => {
    const big = await randomFile(join(dir("alice"), "big.bin"), BIG);
    await ok(
      alice,
      `upload_file ${big.path} g`,
      /^uploaded big\.bin to g: .*, 25 pieces, sha1 [0-9a-f]{40}; sharing it$/,
    );
    assert.match(
      await ok(bob, "list_files g", /^big\.bin {2}/),
      new RegExp(`\\(${BIG} bytes\\) {2}1 sharer online \\(1 complete\\)`),
    );

    const bobCopy = join(dir("bob"), "big.bin");
    const watch = watchTarget(bobCopy, BIG);
    // a directory as the destination: saved as <dir>/<name>
    await ok(
      bob,
      `download_file g big.bin ${dir("bob")}`,
      new RegExp(`^downloading \\[g\\] big\\.bin to ${lit(bobCopy)} `),
    );
    // while it runs: progress (it may be done already on a fast machine: then [C])
    const status = await ok(bob, "show_downloads", /^\[[DC]\] \[g\] big\.bin/);
    if (status.startsWith("[D]")) {
      assert.match(
        status,
        /^\[D\] \[g\] big\.bin {2}(starting|\S+ \S+\/\S+ \S+ \d+\.\d% {2}DL .+ {2}ETA .+ {2}\d+ peers?(?: \((?:\d+ (?:direct|reversed|relayed)(?:, )?)+\))?|\S+ \S+\/\S+ \S+ 100% {2}checking .*) {2}up=\S+ \S+ down=\S+ \S+ ratio=\S+ {2}-> \/.*big\.bin$/,
      );
    }
    await seen(bob, /^download complete: \[g\] big\.bin -> /, DOWNLOAD_MS);
    await watch.stop();
    // a complete download is listed once, with its size and where it is, then leaves the list
    const end = status.startsWith("[C]") ? status : await ok(bob, "show_downloads", /^\[C\] \[g\] big\.bin/);
    assert.equal(end, `[C] [g] big.bin  12.0 MiB  -> ${bobCopy}`);
    await ok(bob, "show_downloads", /^\(no downloads\)$/);
    await assertSameFile(bobCopy, big);
    await assert.rejects(stat(`${bobCopy}.gspart`), { code: "ENOENT" }, "the partial file is left behind");

    // bob is a complete seeder now
    assert.match(await ok(carol, "list_files g", /^big\.bin {2}/), /2 sharers online \(2 complete\)/);
    const carolCopy = join(dir("carol"), "copy of big.bin");
    assert.equal(await download(carol, "g", "big.bin", carolCopy), carolCopy);
    await assertSameFile(carolCopy, big);

    // alice served all of bob's copy and some of carol's; bob served carol the rest
    const byAlice = await servedBytes(alice, "g", "big.bin");
    const byBob = await servedBytes(bob, "g", "big.bin");
    assert.ok(byAlice > BIG, `alice served ${byAlice} bytes: carol got nothing from her`);
    assert.ok(byBob > 0, "bob served nothing: carol got every piece from alice");
    assert.ok(byAlice + byBob >= 2 * BIG);
    assert.equal(await sharersOnline(alice, "g", "big.bin"), 3);
  });

  it("a 0-byte file, a file of exactly one piece, and a name with spaces", async () => {
    const empty = await randomFile(join(dir("alice"), "empty.bin"), 0);
    const one = await randomFile(join(dir("alice"), "one.bin"), PIECE_SIZE);
    const spaced = await randomFile(join(dir("alice"), "my file.bin"), 2 * PIECE_SIZE + 1);
    await ok(alice, `upload_file ${empty.path} g`, /^uploaded empty\.bin to g: .*, 0 pieces, sha1 da39a3ee/);
    await ok(alice, `upload_file ${one.path} g`, /^uploaded one\.bin to g: .*, 1 piece, /);
    await ok(alice, `upload_file "${spaced.path}" g`, /^uploaded "my file\.bin" to g: .*, 3 pieces, /);
    assert.match(
      await ok(bob, "list_files g", /^"my file\.bin" {2}/),
      /\(1048577 bytes\) {2}1 sharer online/,
    );
    assert.match(await ok(bob, "list_files g", /^empty\.bin {2}/), /\(0 bytes\) {2}1 sharer online/);

    const into = join(dir("bob"), "edge");
    await mkdir(into);
    for (const f of [empty, one, spaced]) {
      const name = f.path.slice(dir("alice").length + 1);
      const target = await download(bob, "g", name, into);
      assert.equal(target, join(into, name));
      await assertSameFile(target, f);
      // quoted like everywhere else when the name has a space
      await ok(
        bob,
        "show_downloads",
        new RegExp(`^\\[C\\] \\[g\\] ${lit(shown(name))}  \\S+ \\S+  -> ${lit(target)}$`),
      );
    }
    assert.match(
      await ok(bob, "show_shares", /^\[g\] "my file\.bin" {2}/),
      new RegExp(
        `3/3 pieces  served=0 B  up=0 B down=1\\.00 MiB ratio=0\\.00  ${lit(join(into, "my file.bin"))}$`,
      ),
    );
  });

  it("download_file never overwrites: an existing file, or <dir>/<name> that exists, is refused", async () => {
    const keep = join(dir("carol"), "keep.txt");
    await writeFile(keep, "carol's own notes\n");
    const before = await stat(keep, { bigint: true });
    const refused = await fails(carol, `download_file g one.bin ${keep}`, /^downloading /);
    assert.match(refused, /exists; not overwritten/);
    const now = await stat(keep, { bigint: true });
    assert.equal(await readFile(keep, "utf8"), "carol's own notes\n");
    assert.equal(now.mtimeNs, before.mtimeNs);

    // a directory that already holds a file of that name
    const holder = join(dir("carol"), "holder");
    await mkdir(holder);
    await writeFile(join(holder, "one.bin"), "x");
    await fails(carol, `download_file g one.bin ${holder}`, /^downloading /);
    assert.equal(await readFile(join(holder, "one.bin"), "utf8"), "x");

    // a destination under a regular file: no folder can be made there
    assert.match(
      await fails(
        carol,
        `download_file g one.bin "${join(holder, "one.bin", "sub", "one.bin")}"`,
        /^downloading /,
      ),
      /^error: cannot write to .*one\.bin: not a directory/,
    );
    // a file the group does not have
    assert.match(
      await fails(carol, `download_file g nothing.bin ${dir("carol")}`, /^downloading /),
      /^error: no file nothing\.bin in g/,
    );
    await ok(carol, "show_downloads", /^\[C\] \[g\] big\.bin {2}\S+ \S+ {2}-> .*copy of big\.bin$/);
  });

  it("stop_share: the other members stop being handed that peer", async () => {
    assert.equal(await sharersOnline(carol, "g", "big.bin"), 3);
    await ok(bob, "stop_share g big.bin", /^stopped sharing big\.bin in g$/);
    assert.equal(await sharersOnline(carol, "g", "big.bin"), 2);
    await ok(carol, "stop_share g big.bin", /^stopped sharing big\.bin in g$/);
    assert.match(await ok(bob, "list_files g", /^big\.bin {2}/), /1 sharer online \(1 complete\)/);
    // the others are untouched
    assert.equal(await sharersOnline(carol, "g", "my file.bin"), 2);
  });
});
