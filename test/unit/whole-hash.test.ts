import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { WholeHash } from "../../src/client/download/wholeHash.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { prng } from "../helpers/files.js";

/** 9 pieces, the last one short. */
const SIZE = 8 * PIECE_SIZE + 1234;
const PIECES = 9;
const pieceLength = (p: number) => Math.min(PIECE_SIZE, SIZE - p * PIECE_SIZE);

let dir = "";
let data: Buffer;
let sha1 = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gs-wholehash-"));
  const random = prng(42);
  data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = Math.floor(random() * 256);
  sha1 = createHash("sha1").update(data).digest("hex");
});
after(() => rm(dir, { recursive: true, force: true }));

const piece = (p: number) => data.subarray(p * PIECE_SIZE, p * PIECE_SIZE + pieceLength(p));

describe("WholeHash", () => {
  it("gives the file's SHA1 whatever the order, holding at most maxHeld and reading the rest back", async () => {
    for (const maxHeld of [0, 2, 16]) {
      const path = join(dir, `f-${maxHeld}`);
      await writeFile(path, data);
      const fh = await open(path, "r");
      try {
        const written = new Bitfield(PIECES);
        const whole = new WholeHash(PIECES, pieceLength, written, () => fh, maxHeld);
        for (const p of [3, 0, 8, 1, 2, 7, 6, 4, 5]) {
          written.set(p);
          whole.add(p, Buffer.from(piece(p)));
          assert.ok(whole.held <= maxHeld, `${whole.held} held, at most ${maxHeld}`);
        }
        assert.equal(await whole.digest(), sha1);
      } finally {
        await fh.close();
      }
    }
  });

  it("reads back the pieces an earlier session wrote, and hashes the buffers written, not the disk", async () => {
    const path = join(dir, "resumed");
    // pieces 0 to 3 are on disk from before; the rest of the file holds zeros
    const partial = Buffer.alloc(SIZE);
    data.copy(partial, 0, 0, 4 * PIECE_SIZE);
    await writeFile(path, partial);
    const fh = await open(path, "r");
    try {
      const written = new Bitfield(PIECES);
      for (const p of [0, 1, 2, 3]) written.set(p);
      const whole = new WholeHash(PIECES, pieceLength, written, () => fh);
      for (const p of [4, 5, 6, 7, 8]) {
        written.set(p);
        whole.add(p, Buffer.from(piece(p)));
      }
      assert.equal(await whole.digest(), sha1);
    } finally {
      await fh.close();
    }
  });

  it("fails when a piece read back is short, and when pieces are missing", async () => {
    const path = join(dir, "short");
    await writeFile(path, data.subarray(0, PIECE_SIZE));
    const fh = await open(path, "r");
    try {
      const written = new Bitfield(PIECES);
      written.set(1);
      const whole = new WholeHash(PIECES, pieceLength, written, () => fh, 0);
      written.set(0);
      whole.add(0, Buffer.from(piece(0)));
      await assert.rejects(whole.digest(), /shorter than piece 1/);
      const gap = new WholeHash(PIECES, pieceLength, new Bitfield(PIECES), () => fh);
      await assert.rejects(gap.digest(), /stopped at piece 0/);
    } finally {
      await fh.close();
    }
  });
});
