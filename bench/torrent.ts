import { createHash } from "node:crypto";

/**
 * The info hash of a .torrent (BEP 3): the SHA1 of the bencoded `info`
 * dictionary exactly as it appears in the file. Only walks the structure.
 */
export function infoHash(torrent: Buffer): Buffer {
  let pos = 0;
  let info: [number, number] | undefined;
  const digits = (end: number) => {
    const s = torrent.toString("latin1", pos, end);
    if (!/^-?\d+$/.test(s)) throw new Error(`bad bencode number at ${pos}`);
    return Number(s);
  };
  // returns the string value (for dictionary keys), skips everything else
  const skip = (depth: number): string | undefined => {
    if (depth > 64) throw new Error("bencode nested too deep");
    const c = torrent[pos];
    if (c === 0x69 /* i */) {
      const end = torrent.indexOf(0x65, pos);
      pos++;
      digits(end);
      pos = end + 1;
      return undefined;
    }
    if (c === 0x6c /* l */ || c === 0x64 /* d */) {
      const dict = c === 0x64;
      pos++;
      while (torrent[pos] !== 0x65 /* e */) {
        if (pos >= torrent.length) throw new Error("truncated bencode");
        const key = dict ? skip(depth + 1) : undefined;
        const start = pos;
        skip(depth + 1);
        if (dict && depth === 0 && key === "info") info = [start, pos];
      }
      pos++;
      return undefined;
    }
    const colon = torrent.indexOf(0x3a /* : */, pos);
    if (colon < 0) throw new Error("truncated bencode");
    const len = digits(colon);
    const s = torrent.toString("latin1", colon + 1, colon + 1 + len);
    pos = colon + 1 + len;
    return s;
  };
  skip(0);
  if (!info) throw new Error("no info dictionary in the torrent");
  return createHash("sha1").update(torrent.subarray(info[0], info[1])).digest();
}
