/**
 * Which existing partial file a download may use (PartFile.open): only one it left
 * there itself. The checks that do not need another user (test/e2e/partial-files
 * has those): a file of ours that others may write, one with a second name, one
 * that is not the file the state recorded; and a state from an older client.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, link, lstat, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DONE_MODE, PART_MODE, PartFile, type SavedPart } from "../../src/client/download/partFile.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { GsError } from "../../src/shared/errors.js";
import { memoryFile } from "../helpers/files.js";

const PIECES = 3;
let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gs-partfile-"));
});
after(() => rm(dir, { recursive: true, force: true }));

const f = memoryFile(PIECES, 777);
const sha1 = createHash("sha1").update(f.data).digest("hex");
const options = { onRoom: () => {}, stopped: () => false, now: () => 0 };

function open(target: string, saved: SavedPart | undefined): Promise<PartFile> {
  return PartFile.open(`${target}.gspart`, target, f.hashes, f.data.length, saved, options);
}

/** A saved state of this same file, as a crash after the last save leaves it. */
function savedState(identity: SavedPart["identity"]): SavedPart {
  return { have: "", mtimeMs: 0, identity, sameFile: true };
}

/** A download of f into `target` that stops with every piece written; returns its saved state. */
async function leftPartial(target: string): Promise<SavedPart> {
  const part = await open(target, undefined);
  for (let i = 0; i < PIECES; i++) await part.write(i, f.data.subarray(i * PIECE_SIZE, (i + 1) * PIECE_SIZE));
  await part.touch();
  const saved = {
    have: part.written.toBase64(),
    mtimeMs: part.mtimeMs,
    identity: part.identity,
    sameFile: true,
  };
  await part.close();
  return saved;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => assert.fail("opened"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof GsError && err.code === "BAD_REQUEST", String(err));
  return err.message;
}

describe("PartFile.open: only the partial file this download left", () => {
  it(`creates a new one ${PART_MODE.toString(8)}, and publishes it ${DONE_MODE.toString(8)} less the umask, the same file`, async () => {
    const target = join(dir, "new.bin");
    const saved = await leftPartial(target);
    assert.equal((await stat(`${target}.gspart`)).mode & 0o777, PART_MODE);
    const part = await open(target, saved);
    assert.equal(part.written.count, PIECES, "the saved bitfield, trusted: same file, same mtime");
    await part.finish(sha1);
    await part.dropPartName();
    const st = await lstat(target);
    assert.equal(st.mode & 0o777, DONE_MODE & ~process.umask());
    assert.equal(st.ino, saved.identity!.ino);
    assert.deepEqual(await readFile(target), f.data);
    await assert.rejects(lstat(`${target}.gspart`), { code: "ENOENT" });
  });

  it("refuses one of ours that other users may write, and leaves it as it is", async () => {
    const target = join(dir, "loose.bin");
    const saved = await leftPartial(target);
    await chmod(`${target}.gspart`, 0o666);
    assert.match(
      await refusal(open(target, saved)),
      /loose\.bin\.gspart is writable by other users: left alone/,
    );
    assert.deepEqual(await readFile(`${target}.gspart`), f.data);
  });

  it("refuses one with a second name (a hard link to another file of ours)", async () => {
    const target = join(dir, "linked.bin");
    const saved = await leftPartial(target);
    await link(`${target}.gspart`, join(dir, "elsewhere"));
    assert.match(await refusal(open(target, saved)), /has other names \(hard links\)/);
  });

  it("refuses another file of ours put in its place, even of the right size", async () => {
    const target = join(dir, "moved.bin");
    const saved = await leftPartial(target);
    await rename(`${target}.gspart`, join(dir, "moved-away"));
    await writeFile(`${target}.gspart`, Buffer.alloc(f.data.length), { mode: 0o600 });
    assert.match(await refusal(open(target, saved)), /is not the partial file this client left there/);
    assert.deepEqual(await readFile(`${target}.gspart`), Buffer.alloc(f.data.length));
  });

  it("refuses any file at the path when this download saved no state", async () => {
    const target = join(dir, "stray.bin");
    await writeFile(`${target}.gspart`, "mine, from something else", { mode: 0o600 });
    assert.match(await refusal(open(target, undefined)), /stray\.bin\.gspart exists: left alone/);
    assert.equal(await readFile(`${target}.gspart`, "utf8"), "mine, from something else");
  });

  it("resumes from a state saved by an older client (no identity), re-hashing, and makes the file owner-only", async () => {
    const target = join(dir, "old.bin");
    await leftPartial(target);
    await chmod(`${target}.gspart`, 0o644);
    const part = await open(target, savedState(undefined));
    try {
      assert.equal(part.written.count, PIECES, "every piece re-hashed and kept");
      assert.equal((await stat(`${target}.gspart`)).mode & 0o777, PART_MODE);
    } finally {
      await part.close();
    }
  });

  it("resumes after a crash between the final link and the partial name's removal", async () => {
    const target = join(dir, "halfway.bin");
    const saved = await leftPartial(target);
    await link(`${target}.gspart`, target);
    const part = await open(target, saved);
    await part.finish(sha1);
    await part.dropPartName();
    assert.deepEqual(await readFile(target), f.data);
    assert.equal((await lstat(target)).nlink, 1);
  });
});
