import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MAX_HASHING, PartFile } from "../../src/client/download/partFile.js";
import { WholeHash } from "../../src/client/download/wholeHash.js";
import { type MakeHasher, type StreamHasher, threadHasher } from "../../src/client/hashing/sha1Thread.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";

const sha1 = (b: Uint8Array) => createHash("sha1").update(b).digest("hex");

/** A piece in memory of its own, as a frame decoder hands it over: 9 header bytes before it. */
function framedPiece(bytes: Buffer): Buffer {
  const body = Buffer.allocUnsafeSlow(9 + bytes.length);
  bytes.copy(body, 9);
  return body.subarray(9);
}

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gs-sha1thread-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("the hashing thread", () => {
  it("follows a SHA1 over updates in order, moved or copied, and room() waits for the backlog", async () => {
    let eased = 0;
    const t = threadHasher(() => eased++);
    try {
      const parts = Array.from({ length: 6 }, (_, i) => randomBytes(i === 5 ? 777 : PIECE_SIZE));
      const whole = sha1(Buffer.concat(parts));
      for (const [i, p] of parts.entries()) t.update(i % 2 === 0 ? framedPiece(p) : p, i % 2 === 0);
      assert.equal(t.backlog, parts.length, "posted, not hashed yet");
      await t.room(1);
      assert.equal(t.backlog, 0);
      assert.ok(eased >= parts.length, `${eased} eased calls`);
      assert.ok(parts[1]!.length === PIECE_SIZE, "an update not given keeps its buffer");
      assert.equal(await t.digest(), whole);
    } finally {
      await t.close();
    }
  });

  it("keeps one whole-file SHA1 per download on the one thread; closing one leaves the other going", async () => {
    const a = threadHasher();
    const b = threadHasher();
    const c = threadHasher();
    try {
      const pa = [randomBytes(PIECE_SIZE), randomBytes(100)];
      const pb = [randomBytes(PIECE_SIZE), randomBytes(PIECE_SIZE), randomBytes(9)];
      a.update(framedPiece(pa[0]!), true);
      b.update(framedPiece(pb[0]!), true);
      c.update(framedPiece(pb[0]!), true);
      await c.close();
      b.update(pb[1]!);
      a.update(pa[1]!);
      b.update(framedPiece(pb[2]!), true);
      assert.equal(await a.digest(), sha1(Buffer.concat(pa)));
      await a.close();
      assert.equal(await b.digest(), sha1(Buffer.concat(pb)));
      await assert.rejects(c.digest(), /hashing stopped/);
    } finally {
      await b.close();
    }
    // the thread ended with its last hasher; the next download starts another
    const d = threadHasher();
    try {
      const bytes = randomBytes(1000);
      d.update(framedPiece(bytes), true);
      assert.equal(d.backlog, 1, "at a thread");
      assert.equal(await d.digest(), sha1(bytes));
    } finally {
      await d.close();
    }
  });

  it("after it stops: the backlog is gone, room() answers, the digest rejects", async () => {
    const t = threadHasher();
    t.update(framedPiece(randomBytes(PIECE_SIZE)), true);
    t.update(framedPiece(randomBytes(PIECE_SIZE)), true);
    const waiting = t.room(1);
    await t.close();
    await waiting;
    assert.equal(t.backlog, 0);
    t.update(Buffer.from("more"));
    assert.equal(t.backlog, 0, "dropped, not queued");
    await assert.rejects(t.digest(), /hashing stopped/);
  });

  it("a WholeHash whose thread stopped reads the whole file back for its digest", async () => {
    const size = 3 * PIECE_SIZE + 5;
    const data = randomBytes(size);
    const path = join(dir, "reread");
    await writeFile(path, data);
    const fh = await open(path, "r");
    const t = threadHasher();
    try {
      const len = (p: number) => Math.min(PIECE_SIZE, size - p * PIECE_SIZE);
      const written = new Bitfield(4);
      const whole = new WholeHash(4, len, written, () => fh, 12, t);
      for (const p of [0, 1, 2, 3]) {
        written.set(p);
        whole.add(p, framedPiece(data.subarray(p * PIECE_SIZE, p * PIECE_SIZE + len(p))));
        if (p === 1) await t.close();
      }
      assert.equal(await whole.digest(), sha1(data));
    } finally {
      await fh.close();
      await t.close();
    }
  });

  it("does not keep a process alive once its work is done", async () => {
    const module = fileURLToPath(new URL("../../src/client/hashing/sha1Thread.js", import.meta.url));
    const script = `
      import { threadHasher } from ${JSON.stringify(module)};
      const t = threadHasher();
      t.update(Buffer.from("abc"));
      console.log(await t.digest());`;
    const path = join(dir, "idle.mjs");
    await writeFile(path, script);
    const { stdout } = await promisify(execFile)(process.execPath, [path], { timeout: 20_000 });
    assert.equal(stdout.trim(), "a9993e364706816aba3e25717850c26c9cd0d89d");
  });
});

/** A hasher whose updates are hashed when the test says. */
function heldHasher(): { make: MakeHasher; release: () => void; eased: () => void } {
  let backlog = 0;
  let onEased = () => {};
  const hasher: StreamHasher = {
    get backlog() {
      return backlog;
    },
    update: () => {
      backlog++;
    },
    digest: async () => "",
    room: async () => {},
    close: async () => {},
  };
  return {
    make: (e) => {
      onEased = e;
      return hasher;
    },
    release: () => {
      backlog--;
      onEased();
    },
    eased: () => onEased(),
  };
}

describe("PartFile: pieces waiting for the hashing thread are bounded", () => {
  it(`is full at ${MAX_HASHING} written pieces not yet hashed, and calls onRoom once one is`, async () => {
    const h = heldHasher();
    let rooms = 0;
    const pieces = 2 * MAX_HASHING;
    const part = await PartFile.open(
      join(dir, "bound.gspart"),
      join(dir, "bound"),
      Buffer.alloc(20 * pieces),
      pieces * PIECE_SIZE,
      undefined,
      { hasher: h.make, onRoom: () => rooms++, stopped: () => false, now: () => 0 },
    );
    try {
      // written in file order, each goes straight to the hasher
      for (let i = 0; i < MAX_HASHING; i++) {
        assert.equal(part.full, false, `room for piece ${i}`);
        await part.write(i, Buffer.alloc(PIECE_SIZE));
      }
      assert.equal(part.full, true);
      h.eased();
      assert.equal(rooms, 0, "still full: no room yet");
      h.release();
      assert.equal(part.full, false);
      assert.equal(rooms, 1);
      await part.write(MAX_HASHING, Buffer.alloc(PIECE_SIZE));
      assert.equal(part.full, true, "full again");
      for (let i = 0; i < MAX_HASHING; i++) h.release();
      assert.equal(rooms, 2);
    } finally {
      await part.close();
    }
  });
});
