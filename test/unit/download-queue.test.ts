import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Download } from "../../src/client/download/download.js";
import type { Sharer } from "../../src/client/download/fileTracker.js";
import { DEFAULT_MAX_ACTIVE, DownloadManager } from "../../src/client/download/manager.js";
import { ShareRegistry } from "../../src/client/serving/shares.js";
import type { TrackerClient } from "../../src/client/tracker/trackerClient.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";
import { type MemoryFile, memoryFile } from "../helpers/files.js";
import { MemorySharer, memoryDialer } from "../helpers/memoryPeers.js";

const PIECES = 4;

type SharedFiles = Map<string, { f: MemoryFile; sharer: MemorySharer; peer: Sharer }>;

/** `count` files f0.bin.., each with its own sharer that holds every request until the test serves it. */
function sharedFiles(count: number): SharedFiles {
  const files: SharedFiles = new Map();
  for (let i = 0; i < count; i++) {
    const f = memoryFile(PIECES, 100 + i);
    const sharer = new MemorySharer(f.data, f.fileId, { holdPieces: true });
    const addr = `10.0.0.${i + 2}:1`;
    files.set(`f${i}.bin`, { f, sharer, peer: { userId: `u${i}`, addr, key: `k${i}`, complete: true } });
  }
  return files;
}

/**
 * A manager of downloads of `count` files of group g, each from its own in-memory
 * sharer that holds every request until the test serves it, on a fake clock, with a
 * stand-in for the tracker connection (the calls a download and start() make).
 */
function world(dir: string, files: SharedFiles) {
  const clock = new FakeClock();
  const sharers = new Map([...files.values()].map((v) => [v.peer.addr, v.sharer]));
  const announced: string[] = [];
  const tracker = {
    async call(op: string, params: { groupId: string; name?: string }, body?: { complete?: boolean }) {
      const file = params.name === undefined ? undefined : files.get(params.name);
      switch (op) {
        case "listFiles":
          return { files: [...files.keys()].map((name) => ({ name })) };
        case "download": {
          const { f, peer } = file!;
          const sha1 = createHash("sha1").update(f.data).digest("hex");
          const info = { name: params.name, size: f.data.length, sha1, fileId: f.fileIdHex };
          return { file: { ...info, pieces: f.hashes.toString("base64") }, ticket: "t", peers: [peer] };
        }
        case "peers":
          return { ticket: "t", peers: [file!.peer] };
        case "announce":
          announced.push(`${params.name} ${body?.complete}`);
          return {};
        default:
          return {};
      }
    },
  } as unknown as TrackerClient;
  const shares = new ShareRegistry();
  let wake = () => {};
  const m = new DownloadManager({
    tracker,
    shares,
    news: () => wake(),
    selfAddr: "10.0.0.1:7000",
    onStateChange: () => {},
    onComplete: () => {},
    clock,
    dialer: memoryDialer(sharers),
  });
  const get = (name: string): Download => {
    const d = m.list().find((x) => x.name === name);
    assert.ok(d, `no download of ${name}`);
    return d;
  };
  /**
   * Resolves once `cond` holds: looked at on each download's news (a phase change)
   * and as the partial files' real disk I/O completes; fails after 5 s.
   */
  const until = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 5_000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`not reached: ${what} (${JSON.stringify(phases())})`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 5);
      });
      await settle();
    }
  };
  const phases = () => Object.fromEntries(m.list().map((d) => [d.name, d.phase]));
  /** Every held request answered, until the sharer holds none (a link asks for the next as one lands). */
  const serveAll = async (name: string) => {
    const { sharer } = files.get(name)!;
    for (let round = 0; round < 10 * PIECES && sharer.held.length > 0; round++) {
      for (const piece of sharer.held) sharer.serve(piece);
      await settle();
    }
  };
  return { m, clock, shares, files, announced, get, phases, serveAll, until, dir };
}

let root = "";
before(async () => {
  root = await mkdtemp(join(tmpdir(), "gs-queue-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => mkdtemp(join(root, `${n++}-`));

describe("download queue", () => {
  it("runs the first maxActive downloads in order, queues the rest, and follows moves and a new limit", async () => {
    const w = world(await freshDir(), sharedFiles(4));
    assert.equal(w.m.maxActive, DEFAULT_MAX_ACTIVE);
    w.m.setMaxActive(2);
    const started = [];
    for (let i = 0; i < 4; i++) started.push(await w.m.start("g", `f${i}.bin`, w.dir));
    await w.until(
      () => w.get("f0.bin").phase === "downloading" && w.get("f1.bin").phase === "downloading",
      "two fetch",
    );
    assert.deepEqual(
      started.map((s) => s.held),
      [undefined, undefined, "queued", "queued"],
    );
    assert.deepEqual(w.phases(), {
      "f0.bin": "downloading",
      "f1.bin": "downloading",
      "f2.bin": "queued",
      "f3.bin": "queued",
    });
    // a queued download asks no sharer for anything
    assert.equal(w.files.get("f2.bin")!.sharer.requests.length, 0);
    assert.equal(w.get("f2.bin").peerCount, 0);

    w.m.move("g", "f3.bin", 1);
    await w.until(() => w.get("f3.bin").phase === "downloading", "f3 fetches");
    assert.deepEqual(
      w.m.list().map((d) => d.name),
      ["f3.bin", "f0.bin", "f1.bin", "f2.bin"],
    );
    assert.deepEqual(w.phases(), {
      "f3.bin": "downloading",
      "f0.bin": "downloading",
      "f1.bin": "queued",
      "f2.bin": "queued",
    });
    assert.equal(w.get("f1.bin").peerCount, 0, "a download sent back to the queue closes its links");

    w.m.setMaxActive(3);
    await w.until(() => w.get("f1.bin").phase === "downloading", "f1 fetches again");
    assert.equal(w.get("f1.bin").phase, "downloading");
    assert.equal(w.get("f2.bin").phase, "queued");

    // the first to end frees its place for the next in order
    await w.serveAll("f3.bin");
    await w.get("f3.bin").done;
    assert.equal(w.get("f3.bin").phase, "complete");
    await w.until(() => w.get("f2.bin").phase === "downloading", "f2 takes the free place");
    assert.equal(w.get("f2.bin").phase, "downloading");

    assert.throws(() => w.m.setMaxActive(0), { code: "BAD_REQUEST" });
    assert.throws(() => w.m.move("g", "f0.bin", 9), { code: "BAD_REQUEST" });
    assert.throws(() => w.m.pause("g", "nope.bin", true), { code: "BAD_REQUEST" });
    await w.m.stopAll();
  });

  it("pauses a download: no links, no requests, its verified pieces still shared and saved; resume completes it", async () => {
    const w = world(await freshDir(), sharedFiles(1));
    const { f, sharer } = w.files.get("f0.bin")!;
    const ref = await w.m.start("g", "f0.bin", w.dir);
    const d = w.get("f0.bin");
    await w.until(() => sharer.held.length >= 2, "requests");
    // two pieces arrive and are written
    for (const piece of sharer.held.slice(0, 2)) sharer.serve(piece);
    await w.until(() => w.shares.get("g", f.fileIdHex)?.have.count === 2, "two pieces written");

    w.m.pause("g", "f0.bin", true);
    await w.until(() => d.peerCount === 0, "links closed");
    assert.equal(d.phase, "paused");
    assert.equal(d.peerCount, 0, "its links are closed");
    const asked = sharer.requests.length;
    await w.clock.advance(5 * 60_000);
    assert.equal(sharer.requests.length, asked, "a paused download asks for nothing");
    assert.equal(d.phase, "paused", "and does not give up while paused");
    const share = w.shares.get("g", f.fileIdHex);
    assert.ok(share, "its partial share stays in the registry");
    assert.equal(share.have.count, 2);
    assert.equal(share.path, `${ref.target}.gspart`);
    assert.ok(w.announced.includes("f0.bin false"), "and was announced");
    const saved = w.m.snapshot()[0]!;
    assert.equal(saved.paused, true);
    assert.equal(saved.downloadedBytes, d.downloadedBytes);
    assert.ok(d.downloadedBytes > 0);

    // paused ones do not keep a script waiting
    await w.m.whenIdle();

    w.m.pause("g", "f0.bin", false);
    await w.until(() => d.phase === "downloading", "fetching again");
    await w.serveAll("f0.bin");
    await d.done;
    assert.equal(d.phase, "complete", d.error?.message);
    assert.ok((await readFile(ref.target)).equals(f.data));
    // the pieces it had were not fetched again
    assert.equal(d.downloadedBytes, f.data.length);
    assert.equal(w.m.snapshot().length, 0);
  });

  it("takes up saved downloads in order at login, a paused one paused but sharing its pieces", async () => {
    const first = world(await freshDir(), sharedFiles(2));
    const { f } = first.files.get("f0.bin")!;
    await first.m.start("g", "f0.bin", first.dir);
    await first.m.start("g", "f1.bin", first.dir);
    const s0 = first.files.get("f0.bin")!.sharer;
    await first.until(() => s0.held.length > 0, "a request");
    s0.serve(s0.held[0]!);
    await first.until(() => first.shares.get("g", f.fileIdHex)?.have.count === 1, "a piece written");
    first.m.pause("g", "f0.bin", true);
    first.m.move("g", "f1.bin", 1);
    await settle();
    await first.m.stopAll();
    const saved = first.m.snapshot();
    assert.deepEqual(
      saved.map((s) => [s.name, s.paused ?? false]),
      [
        ["f1.bin", false],
        ["f0.bin", true],
      ],
    );

    // a new manager (a restart) with the same files and sharers
    const again = world(first.dir, first.files);
    const m = again.m;
    m.restore(saved, 1);
    await again.until(
      () => m.list()[0]?.phase === "downloading" && again.shares.get("g", f.fileIdHex) !== undefined,
      "taken up",
    );
    assert.deepEqual(
      m.list().map((d) => [d.name, d.phase]),
      [
        ["f1.bin", "downloading"],
        ["f0.bin", "paused"],
      ],
    );
    assert.equal(again.shares.get("g", f.fileIdHex)?.have.count, 1, "the paused one shares its piece");
    await m.stopAll();
  });
});
