import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Download } from "../../src/client/download/download.js";
import { newsLines } from "../helpers/newsLines.js";
import { ShareRegistry } from "../../src/client/serving/shares.js";
import type { FileTracker } from "../../src/client/download/fileTracker.js";
import { fileIdOf } from "../../src/shared/fileId.js";

/** A tracker that answers a download's start with `file`, and nothing else. */
function trackerAnswering(file: object): FileTracker {
  return {
    begin: async () =>
      ({ file, ticket: "t", peers: [] }) as unknown as Awaited<ReturnType<FileTracker["begin"]>>,
    peers: async () => ({ ticket: "t", peers: [] }),
    addSharer: async () => {},
    removeSharer: async () => {},
  };
}

describe("a download names its file by the pieces it was sent", () => {
  it("refuses a tracker whose file id does not match the piece hashes it sent", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gs-fileid-"));
    try {
      const data = randomBytes(1_000);
      const pieces = createHash("sha1").update(data).digest();
      const lines: string[] = [];
      const d: Download = new Download(
        {
          tracker: trackerAnswering({
            name: "f.bin",
            size: data.length,
            sha1: createHash("sha1").update(data).digest("hex"),
            // the id of other pieces: a tracker steering us to another share
            fileId: fileIdOf(data.length, randomBytes(20)),
            pieces: pieces.toString("base64"),
          }),
          shares: new ShareRegistry(),
          news: newsLines(lines, () => d),
          selfAddr: "127.0.0.1:1",
          onStateChange: () => {},
          onComplete: () => assert.fail("completed"),
          dialer: () => Promise.reject(new Error("no sharer should be dialled")),
        },
        { groupId: "g", name: "f.bin", target: join(dir, "f.bin") },
      );
      await d.start();
      assert.equal(d.phase, "failed");
      assert.match(d.error?.message ?? "", /file id does not match/);
      assert.equal(d.error?.code, "BAD_TRACKER_ANSWER");
      assert.ok(
        lines.some((l) => /^download failed: \[g\] f\.bin: .*file id/.test(l)),
        lines.join("\n"),
      );
      assert.deepEqual(await readdir(dir), [], "nothing written");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
