/**
 * The failover scenario between two trackers, written once and run by multi-tracker.test.ts
 * (two trackers over one SQLite file) and multi-tracker-pg.test.ts (two trackers
 * on PostgreSQL, started from different folders). Not a test file by itself.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { after, before, it } from "node:test";
import type { Proc } from "../helpers/procs.js";

/** Big enough that a download cannot end between two of our steps (48 pieces and an odd tail). */
const BIG_BYTES = 24 * 1024 * 1024 + 12_345;
/** Hashing and uploading the big file, and a whole download, are bounded by this. */
const LONG_WAIT_MS = 60_000;
/** Heartbeats come every 10 s (HEARTBEAT_INTERVAL_MS): one must land within this after a kill. */
const HEARTBEAT_WAIT_MS = 25_000;

/** What each store's test file provides: how to start trackers and clients, and how to read sessions. */
export interface FailoverRig {
  /** Scratch directory for the test's files. */
  readonly dir: string;
  /** Tracker ports, tracker 1 first. */
  readonly ports: readonly [number, number];
  /** Starts tracker `no` (1 or 2) and waits until it listens. */
  startTracker(no: 1 | 2): Promise<Proc>;
  /** Starts a client whose tracker_info.txt lists tracker 1 first. */
  startClient(name: string): Promise<Proc>;
  /** last_seen (ms) of every session in the store, by user id: the trace of heartbeats. */
  lastSeen(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** A file of random bytes, written in 1 MiB chunks (never held in memory whole). */
export async function makeFile(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 1024 * 1024);
    if (!out.write(randomBytes(n))) await new Promise<void>((r) => out.once("drain", () => r()));
    left -= n;
  }
  out.end();
  await finished(out);
}

/** The file's SHA1, streamed. */
export async function sha1Of(path: string): Promise<string> {
  const h = createHash("sha1");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Polls `probe` until it returns true; bounded. For state that prints no line (heartbeats in the store). */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Asks show_downloads until the line for [group] name matches `pattern`; returns it.
 * Bounded by `timeoutMs` overall (each answer is awaited, never slept for).
 */
export async function awaitDownloadLine(
  p: Proc,
  group: string,
  name: string,
  pattern: RegExp,
  timeoutMs = LONG_WAIT_MS,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const head = `[${group}] ${name}`;
  const esc = head.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  let last = "";
  for (;;) {
    last = await p.run("show_downloads", new RegExp(`^\\[[DC]\\] ${esc}(\\s|$)`));
    if (pattern.test(last)) return last;
    if (Date.now() > deadline) throw new Error(`${p.label}: ${head} never matched ${pattern}; last: ${last}`);
    // the next show_downloads answers at once: give the download a moment to move
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Lines a client prints when its session is lost: after a failover there must be none. */
const SESSION_LOST = /session ended|logged out|not logged in/;

function assertStillLoggedIn(...clients: Proc[]): void {
  for (const c of clients) {
    const lost = [...c.lines, ...c.errLines].filter((l) => SESSION_LOST.test(l));
    assert.deepEqual(lost, [], `${c.label} lost its session:\n${c.dump()}`);
  }
}

/**
 * Registers the scenario's tests in the current describe(): alice shares, bob
 * downloads; tracker 1 dies mid-download, then comes back while tracker 2 dies;
 * then a tracker hangs; then none answers.
 */
export function failoverScenario(makeRig: () => Promise<FailoverRig>): void {
  let rig: FailoverRig;
  let t1: Proc;
  let t2: Proc;
  let alice: Proc;
  let bob: Proc;
  let files: string;
  let out: string;

  const stopped = new Set<Proc>();
  /** SIGSTOP: the seeder freezes, so a download cannot progress, let alone end, until SIGCONT. */
  const freeze = (p: Proc) => {
    p.child.kill("SIGSTOP");
    stopped.add(p);
  };
  const thaw = (p: Proc) => {
    p.child.kill("SIGCONT");
    stopped.delete(p);
  };

  /** A heartbeat of every user landed in the store after `since`. */
  const heartbeatsAfter = (since: number, users: string[]) =>
    waitUntil(
      `a heartbeat from ${users.join(", ")} after the kill`,
      async () => {
        const seen = await rig.lastSeen();
        return users.every((u) => (seen.get(u) ?? 0) > since);
      },
      HEARTBEAT_WAIT_MS,
    );

  /**
   * bob downloads [g] name into out/ and checks it against the original. With
   * `killMidway`, the seeder is frozen first, so that the download is under way
   * (tracker answered, peer connected) and cannot progress, let alone end, when
   * that tracker is SIGKILLed; then the seeder thaws. Returns when the kill happened.
   */
  const download = async (name: string, killMidway?: Proc): Promise<number> => {
    const dest = join(out, name);
    const re = name.replace(".", "\\.");
    let killedAt = 0;
    if (killMidway) freeze(alice);
    await bob.run(`download_file g ${name} ${dest}`, new RegExp(`^downloading \\[g\\] ${re}`));
    if (killMidway) {
      // a percentage means the tracker answered: hashes, ticket, peer list; alice is frozen so it is < 100
      const line = await awaitDownloadLine(bob, "g", name, /^\[D\] \S+ \S+ {2}\S+ \S+\/\S+ \S+ \d+(\.\d+)?%/);
      assert.doesNotMatch(line, /100(\.0)?%/);
      killedAt = Date.now();
      await killMidway.kill("SIGKILL");
      thaw(alice);
    }
    await bob.expect(new RegExp(`^download complete: \\[g\\] ${re}`), LONG_WAIT_MS);
    assert.equal(await sha1Of(dest), await sha1Of(join(files, name)), `${dest} differs from the original`);
    // bob's announces (partial at the first piece, complete at the end) went through
    const listed = await bob.run("list_files g", new RegExp(`^${re}\\s`));
    assert.match(listed, /2 sharers online \(2 complete\)/);
    assert.deepEqual(
      bob.errLines.filter((l) => l.includes("could not announce")),
      [],
    );
    return killedAt;
  };

  before(async () => {
    rig = await makeRig();
    files = join(rig.dir, "files");
    out = join(rig.dir, "out");
    await mkdir(files);
    await mkdir(out);
    await Promise.all([
      makeFile(join(files, "big.bin"), BIG_BYTES),
      makeFile(join(files, "late.bin"), BIG_BYTES / 2),
      makeFile(join(files, "small.bin"), 300_000),
      makeFile(join(files, "small2.bin"), 700_001),
    ]);
    [t1, t2] = await Promise.all([rig.startTracker(1), rig.startTracker(2)]);
    [alice, bob] = await Promise.all([rig.startClient("alice"), rig.startClient("bob")]);
    await alice.run("create_user alice pw", /^user alice created/);
    await alice.run("login alice pw", /^logged in as alice/);
    await alice.run("create_group g", /^group g created/);
    await alice.run(`upload_file ${join(files, "big.bin")} g`, /^uploaded big\.bin/, LONG_WAIT_MS);
    await alice.run(`upload_file ${join(files, "small.bin")} g`, /^uploaded small\.bin/);
    await bob.run("create_user bob pw", /^user bob created/);
    await bob.run("login bob pw", /^logged in as bob/);
    await bob.run("join_group g", /^asked to join g/);
    await alice.run("accept_request g bob", /^bob is now a member of g/);
  });

  after(async () => {
    for (const p of stopped) p.child.kill("SIGCONT");
    await rig?.close();
  });

  it("SIGKILL tracker 1 mid-download: download, heartbeats, peer lists and tickets carry on via tracker 2", async () => {
    const killedAt = await download("big.bin", t1);
    const beats = heartbeatsAfter(killedAt, ["alice", "bob"]);
    // the same sessions work on tracker 2: no login was sent
    await bob.run("list_groups", /^g\s+owner=alice\s+members=2/);
    // written while tracker 1 is down, read back later through tracker 1
    await alice.run(`upload_file ${join(files, "small2.bin")} g`, /^uploaded small2\.bin/);
    await alice.run(`upload_file ${join(files, "late.bin")} g`, /^uploaded late\.bin/, LONG_WAIT_MS);
    await bob.run("create_group g2", /^group g2 created/);
    // a new download: hashes, peer list and ticket from tracker 2, checked by alice with the key she got from tracker 1
    await download("small.bin");
    await beats;
    assertStillLoggedIn(alice, bob);
  });

  it("restart tracker 1 and SIGKILL tracker 2 mid-download: it carries on; tracker 1 sees what 2 wrote", async () => {
    t1 = await rig.startTracker(1);
    // the clients stuck to tracker 2: this download's grant comes from it, the rest from tracker 1
    const killedAt = await download("late.bin", t2);
    const beats = heartbeatsAfter(killedAt, ["alice", "bob"]);
    await bob.run("list_groups", /^g2\s+owner=bob\s+members=1\s+you=owner/);
    const listed = await bob.run("list_files g", /^small2\.bin\s/);
    assert.match(listed, /1 sharer online/);
    await download("small2.bin");
    await alice.run("list_requests g", /^\(no pending requests for g\)/);
    await beats;
    assertStillLoggedIn(alice, bob);
  });

  it("a tracker that hangs (SIGSTOP) is timed out and the next one answers", async () => {
    t2 = await rig.startTracker(2);
    // both clients stick to tracker 1 now; freeze it so that it accepts connections but never answers
    freeze(t1);
    const started = Date.now();
    await bob.run("list_groups", /^g\s+owner=alice/);
    // not a speed check: only that the answer came after the per-tracker timeout, i.e. from tracker 2
    assert.ok(Date.now() - started >= 2_500, "answered before the 3 s timeout: not a failover");
    await alice.run("list_files g", /^big\.bin\s/);
    await t1.kill("SIGKILL");
    stopped.delete(t1);
    assertStillLoggedIn(alice, bob);
  });

  it("no tracker answers: the error names every tracker tried", async () => {
    await t2.kill("SIGKILL");
    const line = await bob.run("list_groups", /^error:/);
    for (const port of rig.ports)
      assert.ok(line.includes(`127.0.0.1:${port}`), `${line} misses port ${port}`);
  });
}
