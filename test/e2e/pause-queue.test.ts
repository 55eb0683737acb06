/**
 * Pause, resume and lifetime totals with real tracker and client processes on
 * 127.0.0.1. "Mid-download" is made deterministic by pacing a frozen seeder (stepUntil).
 */
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import type { UserState } from "../../src/client/state.js";
import { Cluster } from "../helpers/procs.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  groupOf,
  lit,
  ok,
  progressOf,
  randomFile,
  seen,
  stepToPercent,
  until,
} from "./sharing.helpers.js";

/** 32 pieces: one short burst of the seeder cannot finish it. */
const SIZE = 32 * PIECE_SIZE - 777;

describe("pause and resume across a restart, with lifetime totals", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let carol: Client;

  before(async () => {
    c = await Cluster.create();
    await c.tracker();
    [alice, bob, carol] = (await groupOf(c, "g", ["alice", "bob", "carol"])) as [Client, Client, Client];
  });
  after(() => c.close());

  const stateOf = async (user: string): Promise<UserState> =>
    JSON.parse(await readFile(join(c.dir, `state-${user}`, "users", `${user}.json`), "utf8")) as UserState;

  it("a paused download shares its pieces, fetches nothing, stays paused after quit and restart, and resumes to the same file", async () => {
    const dir = join(c.dir, "files");
    await mkdir(dir);
    const file = await randomFile(join(dir, "p.bin"), SIZE);
    await ok(alice, `upload_file ${file.path} g`, /^uploaded p\.bin to g/);
    const into = join(c.dir, "bob-dl");
    await mkdir(into);
    const target = join(into, "p.bin");

    alice.child.kill("SIGSTOP");
    await ok(bob, `download_file g p.bin ${into}`, /^downloading \[g\] p\.bin/);
    await stepToPercent(alice, bob, "p.bin", 25);
    const paused = await ok(bob, "pause_download g p.bin", /^\[D\] \[g\] p\.bin/);
    assert.match(paused, new RegExp(` paused \\(resume_download to go on\\) .* -> ${lit(target)}$`));
    const at = (await progressOf(bob, "p.bin")).percent;

    // still shared: carol gets pieces from bob while alice, the only other sharer, is frozen
    const shared = await ok(bob, "show_shares", /^\[g\] p\.bin /);
    assert.match(shared, /^\[g\] p\.bin {2}(\d+)\/32 pieces /);
    await ok(carol, `download_file g p.bin ${join(c.dir, "carol-p.bin")}`, /^downloading /);
    await until(
      "carol to get a piece from the paused bob",
      async () => (await progressOf(carol, "p.bin")).percent > 0,
    );
    await ok(carol, "cancel_download g p.bin", /^cancelled /);
    const still = await progressOf(bob, "p.bin");
    assert.equal(still.percent, at, `the paused download fetched nothing: ${still.line}`);

    // quit: a script's quit does not wait for a paused download
    bob.send("quit");
    assert.equal(await bob.waitExit(), 0);
    const saved = (await stateOf("bob")).downloads;
    assert.equal(saved.length, 1);
    assert.equal(saved[0]!.paused, true);
    const downloadedBefore = saved[0]!.downloadedBytes ?? 0;
    const uploadedBefore = saved[0]!.uploadedBytes ?? 0;
    assert.ok(downloadedBefore > 0 && downloadedBefore < SIZE, `downloaded ${downloadedBefore}`);
    assert.ok(uploadedBefore > 0, "carol's pieces count as uploaded");

    // restarted: paused at login, sharing what it has; alice runs again and still nothing is fetched
    alice.child.kill("SIGCONT");
    bob = await c.client("bob", { port: bob.port });
    await ok(bob, "login bob pw-bob", /^logged in as bob/);
    await seen(bob, new RegExp(`^download of \\[g\\] p\\.bin to ${lit(target)} stays paused`));
    const after = await progressOf(bob, "p.bin");
    assert.match(after.line, / paused /);
    assert.equal(after.percent, at);
    await until("bob to share the partial file again", async () =>
      /^\[g\] p\.bin {2}\d+\/32 pieces/.test(await bob.run("show_shares", /^\[g\] p\.bin |^\(not sharing/)),
    );

    await ok(bob, "resume_download g p.bin", /^\[D\] \[g\] p\.bin/);
    await seen(bob, /^download complete: \[g\] p\.bin -> /, DOWNLOAD_MS);
    await assertSameFile(target, file);
    // told once with its size and destination, then gone from the list
    assert.equal(await ok(bob, "show_downloads", /^\[C\] /), `[C] [g] p.bin  16.0 MiB  -> ${target}`);
    await ok(bob, "show_downloads", /^\(no downloads\)$/);

    // totals over both runs: every byte downloaded once, what carol got still counted as uploaded
    const line = await ok(bob, "show_shares", /^\[g\] p\.bin /);
    assert.match(line, /up=\S+ \S+ down=16\.0 MiB ratio=\d+\.\d\d /);
    bob.send("quit");
    assert.equal(await bob.waitExit(), 0);
    const share = (await stateOf("bob")).shares.find((s) => s.name === "p.bin");
    assert.ok(share);
    assert.equal(share.downloadedBytes, SIZE);
    assert.ok((share.uploadedBytes ?? 0) >= uploadedBefore);
  });
});
