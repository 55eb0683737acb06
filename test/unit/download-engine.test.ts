import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { describeDownload } from "../../src/client/cli/lines.js";
import { Download } from "../../src/client/download/download.js";
import { downloadView } from "../../src/client/engine/views.js";
import { newsLines } from "../helpers/newsLines.js";
import type { FileTracker, Sharer } from "../../src/client/download/fileTracker.js";
import { nodeFiles, type PartFileSystem } from "../../src/client/download/partFile.js";
import { GIVE_UP_MS } from "../../src/client/download/retry.js";
import { ShareRegistry } from "../../src/client/serving/shares.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";
import { type MemoryFile, memoryFile } from "../helpers/files.js";
import { MemorySharer, memoryDialer } from "../helpers/memoryPeers.js";

const PIECES = 5;

/** A download of one file from in-memory sharers, a fake clock and a stand-in tracker. */
function setup(
  dir: string,
  sharers: Map<string, MemorySharer>,
  f: MemoryFile,
  files?: PartFileSystem,
  sha1 = createHash("sha1").update(f.data).digest("hex"),
) {
  const clock = new FakeClock();
  const lines: string[] = [];
  const calls: string[] = [];
  const peers: Sharer[] = [...sharers.keys()].map((addr, i) => ({
    userId: `u${i}`,
    addr,
    key: `k${i}`,
    complete: true,
  }));
  const tracker: FileTracker = {
    begin: async () => {
      calls.push("begin");
      return {
        file: {
          name: "f.bin",
          size: f.data.length,
          sha1,
          fileId: f.fileIdHex,
          pieces: f.hashes.toString("base64"),
        },
        ticket: "t",
        peers,
      };
    },
    peers: async () => {
      calls.push("peers");
      return { ticket: "t", peers };
    },
    addSharer: async (complete) => {
      calls.push(`addSharer ${complete}`);
    },
    removeSharer: async () => {
      calls.push("removeSharer");
    },
  };
  const target = join(dir, "f.bin");
  // the first save comes once the partial file is open: from then on the engine runs on the fake clock
  let opened!: () => void;
  const ready = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const d: Download = new Download(
    {
      tracker,
      shares: new ShareRegistry(),
      news: newsLines(lines, () => d),
      selfAddr: "10.0.0.1:7000",
      onStateChange: () => opened(),
      onComplete: () => {},
      clock,
      dialer: memoryDialer(sharers),
      files,
    },
    { groupId: "g", name: "f.bin", target },
  );
  return { d, clock, lines, calls, target, ready };
}

let root = "";
before(async () => {
  root = await mkdtemp(join(tmpdir(), "gs-engine-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = async () => {
  const dir = join(root, String(n++));
  await mkdir(dir);
  return dir;
};

describe("download engine, in memory", () => {
  it("downloads from sharers, drops a corrupt one, and reports its figures", async () => {
    const f = memoryFile(PIECES, 777);
    const dir = await freshDir();
    // the good one holds its pieces until the corrupt one has sent its own (peers are dialled in random order)
    const good = new MemorySharer(f.data, f.fileId, { holdPieces: true });
    const sharers = new Map([
      ["10.0.0.2:1", new MemorySharer(f.data, f.fileId, { corrupt: new Set([0, 1, 2, 3, 4]) })],
      ["10.0.0.3:1", good],
    ]);
    const { d, lines, calls, target, ready } = setup(dir, sharers, f);
    const done = d.start();
    await ready;
    await settle();
    assert.equal(d.peerCount, 1, "the corrupt sharer was dropped");
    while (good.held.length > 0) {
      for (const piece of good.held) good.serve(piece);
      await settle();
    }
    await done;
    assert.equal(d.phase, "complete", d.error?.message);
    assert.ok((await readFile(target)).equals(f.data));
    assert.deepEqual(await readdir(dir), ["f.bin"], "the partial file is gone");
    assert.equal(lines.filter((l) => /^warning: peer 10\.0\.0\.2:1 sent a corrupt piece/.test(l)).length, 1);
    assert.ok(
      lines.some((l) => /^download complete: \[g\] f\.bin -> /.test(l)),
      lines.join("\n"),
    );
    assert.ok(calls.includes("addSharer false") && calls.at(-1) === "addSharer true", calls.join(","));
    const p = d.progress();
    assert.equal(p.phase, "complete");
    assert.equal(p.percent, 100);
    assert.equal(p.piecesDone, PIECES);
    assert.ok(p.bytesThisRun >= f.data.length, `${p.bytesThisRun}`);
    assert.equal(p.etaSeconds, 0);
  });

  it("fails with 'disk full' when a write finds no space, and removes its partial file", async () => {
    const f = memoryFile(PIECES, 777);
    const dir = await freshDir();
    const fullDisk: PartFileSystem = {
      ...nodeFiles,
      open: async (path, flags, mode) => {
        const fh = await open(path, flags, mode);
        const enospc = Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        (fh as { write: unknown }).write = async () => {
          throw enospc;
        };
        return fh;
      },
    };
    const sharer = new MemorySharer(f.data, f.fileId);
    const { d, lines } = setup(dir, new Map([["10.0.0.2:1", sharer]]), f, fullDisk);
    await d.start();
    assert.equal(d.phase, "failed");
    assert.equal(d.error?.message, "disk full");
    assert.equal(d.error?.code, "DISK_FULL");
    assert.ok(lines.includes("download failed: [g] f.bin: disk full"), lines.join("\n"));
    assert.deepEqual(await readdir(dir), [], "nothing left behind");
    assert.equal(d.snapshot(), undefined, "not resumed at the next login");
  });

  it("fails when every piece checks but the whole file's SHA1 is not the tracker's, and keeps no file", async () => {
    const f = memoryFile(PIECES, 777);
    const dir = await freshDir();
    const sharers = new Map([
      ["10.0.0.2:1", new MemorySharer(f.data, f.fileId)],
      ["10.0.0.3:1", new MemorySharer(f.data, f.fileId)],
    ]);
    const { d, lines } = setup(dir, sharers, f, undefined, "0".repeat(40));
    await d.start();
    assert.equal(d.phase, "failed");
    assert.match(d.error?.message ?? "", /whole file's SHA1 does not match/);
    assert.equal(d.error?.code, "DOWNLOAD_FAILED");
    assert.ok(
      lines.some((l) => /^download failed: \[g\] f\.bin: the whole file's SHA1/.test(l)),
      lines.join("\n"),
    );
    assert.deepEqual(await readdir(dir), [], "neither f.bin nor its partial file");
  });

  it("waits on the retry schedule while nobody can serve, then gives up after GIVE_UP_MS", async () => {
    const f = memoryFile(PIECES, 777);
    const dir = await freshDir();
    const { d, clock, lines, calls, ready } = setup(dir, new Map(), f);
    const done = d.start();
    await ready;
    await settle();
    assert.equal(d.phase, "waiting");
    assert.match(
      describeDownload(downloadView(d)),
      /^0 B\/2\.50 MiB 0\.0% {2}waiting for a sharer: try 1 in 1 s$/,
    );
    await clock.advance(1_000);
    assert.match(describeDownload(downloadView(d)), /try 2 in 2 s$/);
    await clock.advance(GIVE_UP_MS - 1_000 - 30_000);
    assert.equal(d.phase, "waiting", "still trying");
    await clock.advance(60_000);
    await done;
    assert.equal(d.phase, "failed");
    assert.match(d.error?.message ?? "", /no sharer had the missing pieces for 10 minutes/);
    assert.equal(d.error?.code, "DOWNLOAD_STALLED");
    assert.ok(lines.some((l) => l.startsWith("download failed: [g] f.bin: no sharer")));
    assert.ok(calls.filter((c) => c === "peers").length > 5, "the tracker was asked again meanwhile");
    assert.deepEqual(await readdir(dir), []);
  });

  it("stops at once when asked, keeping the partial file for a resume", async () => {
    const f = memoryFile(PIECES, 777);
    const dir = await freshDir();
    const sharer = new MemorySharer(f.data, f.fileId, { holdPieces: true });
    const { d, ready } = setup(dir, new Map([["10.0.0.2:1", sharer]]), f);
    void d.start();
    await ready;
    await settle();
    assert.equal(d.phase, "downloading");
    sharer.serve(sharer.held[0]!);
    await settle();
    await d.stop();
    assert.equal(d.phase, "stopped");
    const snap = d.snapshot();
    assert.ok(snap, "a snapshot to resume from");
    assert.equal(Bitfield.fromBase64(PIECES, snap.have).count, 1, "the written piece");
    assert.deepEqual(await readdir(dir), ["f.bin.gspart"]);
    const p = d.progress();
    assert.equal(p.piecesDone, 1);
    assert.ok(p.bytesThisRun > 0);
  });
});
