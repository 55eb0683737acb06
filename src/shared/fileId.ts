import { createHash } from "node:crypto";

/**
 * A file's id: what its pieces are, as a BitTorrent info hash is. SHA1 over a
 * domain tag, the size (8 bytes, big-endian) and every piece's SHA1 in order, in
 * hex. Two groups holding the same bytes get the same id, but a lying entry
 * (the same whole-file SHA1 with other piece hashes, or another size) gets
 * another: a share is looked up by group and id, never by the whole-file SHA1,
 * which is checked at the end of a download and names nothing on its own.
 */
export function fileIdOf(size: number, pieces: Buffer): string {
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(size));
  return createHash("sha1").update("groupshare-file-v1\0").update(head).update(pieces).digest("hex");
}
