/**
 * upload_file's hashing when another local user can change the path: the piece hashes,
 * the whole-file SHA1 and the identity served later are all of the file that was opened,
 * and a FIFO put in a file's place is refused instead of waited on.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hashFile } from "../../src/client/hashing/hasher.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import type { GsError } from "../../src/shared/errors.js";

const sha1 = (b: Buffer) => createHash("sha1").update(b).digest();

describe("hashFile: one open file, whatever happens to its path", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-hash-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("hashes the file it opened when another is renamed over its path mid-way", async () => {
    // large enough that the whole-file hash is still under way after the first read
    const size = 48 * PIECE_SIZE + 777;
    const original = randomBytes(size);
    const other = randomBytes(size);
    const path = join(dir, "movie.bin");
    await writeFile(path, original);
    await writeFile(join(dir, "other.bin"), other);
    const opened = await stat(path);
    let swapped: Promise<void> | undefined;
    const h = await hashFile(path, () => {
      swapped ??= rename(join(dir, "other.bin"), path);
    });
    await swapped;
    assert.ok(swapped, "the path was replaced while hashing");
    assert.equal((await stat(path)).ino !== opened.ino, true, "another file is at the path now");
    assert.equal(h.sha1, sha1(original).toString("hex"), "the whole-file SHA1 is the opened file's");
    const pieces = Buffer.concat(
      Array.from({ length: Math.ceil(size / PIECE_SIZE) }, (_, i) =>
        sha1(original.subarray(i * PIECE_SIZE, (i + 1) * PIECE_SIZE)),
      ),
    );
    assert.ok(h.pieces.equals(pieces), "every piece's SHA1 is the opened file's");
    assert.deepEqual(h.identity, { dev: opened.dev, ino: opened.ino }, "and so is the identity served later");
  });

  it("refuses a FIFO in a file's place at once, as not a regular file", async () => {
    const fifo = join(dir, "swapped.bin");
    execFileSync("mkfifo", [fifo]);
    await assert.rejects(
      hashFile(fifo),
      (e: GsError) => e.code === "BAD_REQUEST" && /not a regular file/.test(e.message),
    );
  });
});
