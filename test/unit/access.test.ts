import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { shareFor } from "../../src/client/serving/access.js";
import { ShareRegistry } from "../../src/client/serving/shares.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { fileIdOf } from "../../src/shared/fileId.js";
import { RejectCode } from "../../src/wire/index.js";

const pieces = Buffer.alloc(20, 1);
const real = fileIdOf(1_000, pieces);
const forged = fileIdOf(1_000, Buffer.alloc(20, 2)); // same size and whole-file SHA1, other pieces
const SHA1 = "ab".repeat(20);

function share(groupId: string, fileId: string, path: string) {
  return {
    groupId,
    fileId,
    name: "f.bin",
    sha1: SHA1,
    size: 1_000,
    path,
    identity: { dev: 1, ino: 1 },
    have: Bitfield.full(1),
    mtimeMs: undefined,
  };
}

describe("shareFor: what a ticket may read", () => {
  const now = 1_000_000;
  const claims = (g: string, f: string, exp = now + 10_000) => ({ u: "eve", g, f, k: "key", exp });

  it("reads the share of the ticket's group and file id, and nothing of another group", () => {
    const shares = new ShareRegistry();
    const g1 = shares.add(share("g1", real, "/real"));
    // the cross-group aliasing attack: a download in evilg of a forged entry with f.bin's SHA1
    const evil = shares.add(share("evilg", forged, "/partial"));
    assert.notEqual(g1, evil);
    const a = shareFor(shares, claims("g1", real), real, now);
    assert.ok(a.ok && a.share === g1);
    const b = shareFor(shares, claims("evilg", forged), forged, now);
    assert.ok(b.ok && b.share === evil && b.share.path === "/partial");
    assert.deepEqual(shareFor(shares, claims("evilg", real), real, now), {
      ok: false,
      code: RejectCode.NOT_SHARED,
      reason: "file not shared in that group here",
    });
  });

  it("refuses a ticket for another file than the handshake's, and an expired one", () => {
    const shares = new ShareRegistry();
    shares.add(share("g1", real, "/real"));
    const other = shareFor(shares, claims("g1", forged), real, now);
    assert.ok(!other.ok && other.code === RejectCode.BAD_TICKET);
    const late = shareFor(shares, claims("g1", real, now - 1), real, now);
    assert.ok(!late.ok && late.code === RejectCode.BAD_TICKET && /expired/.test(late.reason));
  });

  it("keeps the same bytes in two groups as two shares: removing one leaves the other", () => {
    const shares = new ShareRegistry();
    const g1 = shares.add(share("g1", real, "/real"));
    const g2 = shares.add(share("g2", real, "/real"));
    assert.notEqual(g1, g2);
    assert.equal(shares.remove("g2", real), true);
    const a = shareFor(shares, claims("g1", real), real, now);
    assert.ok(a.ok && a.share === g1);
    assert.equal(shareFor(shares, claims("g2", real), real, now).ok, false);
    shares.removeGroup("g1");
    assert.deepEqual(shares.all(), []);
  });
});
