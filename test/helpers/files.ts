import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { fileIdOf } from "../../src/shared/fileId.js";

/** A small seeded PRNG (mulberry32) in [0, 1): the same choices on every run with one seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes `size` bytes in 1 MiB chunks (never the whole file in memory) and returns
 * their SHA1 (hex). Random bytes, or with `seed` an AES-CTR keystream derived from it:
 * the same bytes for the same seed.
 */
export async function writeRandomFile(path: string, size: number, seed?: string): Promise<string> {
  const chunkSize = 1 << 20;
  const cipher =
    seed === undefined
      ? undefined
      : createCipheriv(
          "aes-128-ctr",
          createHash("sha256").update(seed).digest().subarray(0, 16),
          Buffer.alloc(16),
        );
  const zeros = cipher ? Buffer.alloc(chunkSize) : undefined;
  const out = createWriteStream(path);
  const h = createHash("sha1");
  for (let left = size; left > 0; left -= chunkSize) {
    const n = Math.min(left, chunkSize);
    const chunk = cipher ? cipher.update(zeros!.subarray(0, n)) : randomBytes(n);
    h.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
  return h.digest("hex");
}

/** A file's SHA1 (hex), streamed. */
export async function sha1File(path: string): Promise<string> {
  const h = createHash("sha1");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** A file's id as the tracker and peers name it (fileIdOf over its piece SHA1s), streamed piece by piece. */
export async function fileIdOfFile(path: string): Promise<string> {
  const pieces: Buffer[] = [];
  let size = 0;
  let piece = createHash("sha1");
  let inPiece = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 16 })) {
    let buf = chunk as Buffer;
    size += buf.length;
    while (buf.length > 0) {
      const take = Math.min(PIECE_SIZE - inPiece, buf.length);
      piece.update(buf.subarray(0, take));
      inPiece += take;
      buf = buf.subarray(take);
      if (inPiece === PIECE_SIZE) {
        pieces.push(piece.digest());
        piece = createHash("sha1");
        inPiece = 0;
      }
    }
  }
  if (inPiece > 0) pieces.push(piece.digest());
  return fileIdOf(size, Buffer.concat(pieces));
}

/** A file of `pieces` pieces in memory (the last one `short` bytes short), with its piece hashes and id. */
export function memoryFile(pieces: number, short = 1000) {
  const data = randomBytes(pieces * PIECE_SIZE - short);
  const hashes = Buffer.alloc(pieces * 20);
  for (let i = 0; i < pieces; i++) {
    createHash("sha1")
      .update(data.subarray(i * PIECE_SIZE, (i + 1) * PIECE_SIZE))
      .digest()
      .copy(hashes, i * 20);
  }
  const fileIdHex = fileIdOf(data.length, hashes);
  return { data, hashes, fileIdHex, fileId: Buffer.from(fileIdHex, "hex") };
}

export type MemoryFile = ReturnType<typeof memoryFile>;
