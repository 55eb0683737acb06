/**
 * Attacks on a real ./tracker over raw HTTP: a file registered elsewhere with the
 * same whole-file SHA1, spoofed peer addresses at login, membership that ends,
 * sessions that go idle, hostile names, and what the tracker's log shows.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { fileIdOf } from "../../src/shared/fileId.js";
import { Cluster, freePort, Proc, ROOT, WAIT_MS } from "../helpers/procs.js";
import { fails, ok } from "./sharing.helpers.js";
import { type Api, api } from "./tracker.helpers.js";
import { TEST_PEER, tlsIdentity, trackerCall } from "../helpers/tls.js";
import { PEER_KEY_PATTERN } from "../../src/shared/peerKey.js";

/** A one-piece file's registration body. */
function fileBody(name: string, content: string, pieces?: Buffer) {
  const sha1 = createHash("sha1").update(content).digest();
  const p = pieces ?? sha1;
  return { name, size: content.length, sha1: sha1.toString("hex"), pieces: p.toString("base64") };
}

/** Polls `check` every 100 ms until it returns true; fails after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("tracker: file ids, peer addresses and membership (raw HTTP)", () => {
  let c: Cluster;
  let tracker: Proc;
  let t: Api;
  before(async () => {
    c = await Cluster.create(2); // tracker 2 is listed, never started: its address is still a tracker's
    tracker = await c.tracker(1);
    t = api(c.ports[0]!);
  });
  after(() => c.close());

  it("gives a file with forged piece hashes another file id than the file whose SHA1 it copies", async () => {
    for (const u of ["alice", "eve"]) await t.register(u);
    const alice = await t.login("alice", "127.0.0.1:6101");
    const eve = await t.login("eve", "127.0.0.1:6102");
    await t.ok(alice, "POST", "/v1/groups", { groupId: "g1" }, 201);
    await t.ok(eve, "POST", "/v1/groups", { groupId: "evilg" }, 201);
    await t.join(alice, eve, "evilg");
    const real = fileBody("doc.bin", "the real content");
    const forged = fileBody("doc.bin", "the real content", Buffer.alloc(20, 0xee));
    assert.equal(forged.sha1, real.sha1);
    const up1 = await t.ok(alice, "POST", "/v1/groups/g1/files", real, 201);
    const up2 = await t.ok(eve, "POST", "/v1/groups/evilg/files", forged, 201);
    const realId = fileIdOf(real.size, Buffer.from(real.pieces, "base64"));
    const forgedId = fileIdOf(forged.size, Buffer.from(forged.pieces, "base64"));
    assert.notEqual(realId, forgedId);
    assert.equal(up1.fileId, realId);
    assert.equal(up2.fileId, forgedId);
    const inG1 = (await t.ok(alice, "GET", "/v1/groups/g1/files")).files[0];
    const inEvil = (await t.ok(alice, "GET", "/v1/groups/evilg/files")).files[0];
    assert.equal(inG1.sha1, inEvil.sha1);
    assert.equal(inG1.fileId, realId);
    assert.equal(inEvil.fileId, forgedId);
    // the download answer and the ticket name the group's own file id
    for (const [g, id] of [
      ["g1", realId],
      ["evilg", forgedId],
    ] as const) {
      const d = await t.ok(alice, "POST", `/v1/groups/${g}/files/doc.bin/download`, {});
      assert.equal(d.file.fileId, id);
      assert.equal(fileIdOf(d.file.size, Buffer.from(d.file.pieces, "base64")), id);
      const claims = JSON.parse(Buffer.from(d.ticket.split(".")[0], "base64url").toString());
      assert.equal(claims.f, id);
      assert.equal(claims.g, g);
    }
  });

  it("hands out a sharer at its connection's source IP, never a spoofed, broadcast or tracker address", async () => {
    const users = ["own", "s1", "s2", "s3", "s4", "s5", "dl"];
    for (const u of users) await t.register(u);
    const own = await t.login("own", "127.0.0.1:6200");
    await t.ok(own, "POST", "/v1/groups", { groupId: "addr" }, 201);
    const tracker1 = `127.0.0.1:${c.ports[0]}`;
    const tracker2 = `127.0.0.1:${c.ports[1]}`;
    // [user, address claimed, the source IP it logs in from, what must be handed out]
    const cases = [
      ["s1", "0.0.0.0:1", "127.0.0.3", "127.0.0.3:1"],
      ["s2", "255.255.255.255:6202", "127.0.0.4", "127.0.0.4:6202"],
      ["s3", "224.0.0.1:6203", "127.0.0.5", "127.0.0.5:6203"],
      ["s4", "10.9.9.9:6204", "127.0.0.6", "127.0.0.6:6204"],
      ["s5", "127.0.0.1\r\n6205", "127.0.0.7", "127.0.0.7:6205"],
    ] as const;
    const file = fileBody("f.bin", "shared by all");
    for (const [u, claim, from] of cases) {
      const token = await t.login(u, claim, from);
      await t.join(token, own, "addr");
      await t.ok(token, "POST", "/v1/groups/addr/files", file, 201);
    }
    // a tracker's own address (either tracker of tracker_info.txt) is refused at login
    for (const claim of [tracker1, tracker2]) {
      const r = await t.call("POST", "/v1/sessions", { userId: "dl", password: "pw-dl", peerAddr: claim });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, "BAD_REQUEST");
    }
    // CR/LF inside an address with more than IP and port does not parse at all
    const crlf = await t.call("POST", "/v1/sessions", {
      userId: "dl",
      password: "pw-dl",
      peerAddr: "127.0.0.1:6206\r\nX-Evil: 1",
    });
    assert.equal(crlf.status, 400);
    const dl = await t.login("dl", "127.0.0.1:6207");
    await t.join(dl, own, "addr");
    const { peers } = await t.ok(dl, "POST", "/v1/groups/addr/files/f.bin/peers", {});
    const handed = Object.fromEntries(peers.map((p: { userId: string; addr: string }) => [p.userId, p.addr]));
    assert.deepEqual(handed, Object.fromEntries(cases.map(([u, , , want]) => [u, want])));
    for (const addr of Object.values(handed) as string[]) {
      assert.match(addr, /^127\.0\.0\.\d{1,3}:\d{1,5}$/);
      assert.notEqual(addr, tracker1);
    }
    // a downloader at a sharer's own IP (behind the same router) gets the LAN address the
    // sharer announced, but not where that IP is loopback (a shared host): s4 announced
    // 10.9.9.9, and its neighbour at 127.0.0.6 is sent where the tracker sees s4
    await t.register("lan");
    const lan = await t.login("lan", "127.0.0.6:6208", "127.0.0.6");
    await t.join(lan, own, "addr");
    const peersFrom = async (token: string, from: string) => {
      const r = await t.call("POST", "/v1/groups/addr/files/f.bin/peers", {}, token, from);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.peers as { userId: string; addr: string }[];
    };
    const nearBy = Object.fromEntries((await peersFrom(lan, "127.0.0.6")).map((p) => [p.userId, p.addr]));
    assert.deepEqual(nearBy, Object.fromEntries(cases.map(([u, , , want]) => [u, want])));
    await t.register("nearS1");
    const nearS1 = await t.login("nearS1", "127.0.0.3:6209", "127.0.0.3");
    await t.join(nearS1, own, "addr");
    // s1 announced 0.0.0.0:1, which no one is sent to, not even its neighbours
    const s1View = await peersFrom(nearS1, "127.0.0.3");
    assert.equal(s1View.find((p) => p.userId === "s1")?.addr, "127.0.0.3:1");
  });

  it("refuses a removed member's next grant at once, and a member who left", async () => {
    for (const u of ["gown", "gmem", "gleft", "gpend"]) await t.register(u);
    const own = await t.login("gown", "127.0.0.1:6300");
    const mem = await t.login("gmem", "127.0.0.1:6301");
    const left = await t.login("gleft", "127.0.0.1:6302");
    const pend = await t.login("gpend", "127.0.0.1:6303");
    await t.ok(own, "POST", "/v1/groups", { groupId: "club" }, 201);
    await t.join(mem, own, "club");
    await t.join(left, own, "club");
    await t.ok(own, "POST", "/v1/groups/club/files", fileBody("x.bin", "club file"), 201);
    await t.ok(mem, "POST", "/v1/groups/club/files", fileBody("m.bin", "member's file"), 201);
    for (const tok of [mem, left]) await t.ok(tok, "POST", "/v1/groups/club/files/x.bin/peers", {});

    // only the owner removes; the owner cannot remove themselves
    await t.fails(mem, "DELETE", "/v1/groups/club/members/gleft", undefined, "NOT_OWNER");
    await t.fails(own, "DELETE", "/v1/groups/club/members/gown", undefined, "CANNOT_REMOVE_OWNER");
    await t.fails(own, "DELETE", "/v1/groups/club/members/nobody", undefined, "MEMBER_NOT_FOUND");
    await t.ok(own, "DELETE", "/v1/groups/club/members/gmem");
    await t.fails(mem, "POST", "/v1/groups/club/files/x.bin/peers", {}, "NOT_MEMBER");
    await t.fails(mem, "POST", "/v1/groups/club/files/x.bin/download", {}, "NOT_MEMBER");
    await t.fails(mem, "GET", "/v1/groups/club/files", undefined, "NOT_MEMBER");
    // the removed member's shares in the group ended
    const m = (await t.ok(own, "GET", "/v1/groups/club/files")).files.find(
      (f: { name: string }) => f.name === "m.bin",
    );
    assert.equal(m.sharersOnline, 0);

    await t.ok(left, "POST", "/v1/groups/club/leave", {});
    await t.fails(left, "POST", "/v1/groups/club/files/x.bin/peers", {}, "NOT_MEMBER");

    // reject_request: owner only, then the request is gone
    await t.ok(pend, "POST", "/v1/groups/club/requests", {}, 201);
    await t.fails(pend, "POST", "/v1/groups/club/requests/gpend/reject", {}, "NOT_OWNER");
    await t.ok(own, "POST", "/v1/groups/club/requests/gpend/reject", {});
    assert.deepEqual((await t.ok(own, "GET", "/v1/groups/club/requests")).requests, []);
    await t.fails(own, "POST", "/v1/groups/club/requests/gpend/accept", {}, "REQUEST_NOT_FOUND");
    await t.fails(own, "POST", "/v1/groups/club/requests/gpend/reject", {}, "REQUEST_NOT_FOUND");
    await t.fails(pend, "GET", "/v1/groups/club/files", undefined, "NOT_MEMBER");
  });

  it("reversals, relays and punches: only for a member, of an online sharer of the file; a circuit only for its two users", async () => {
    for (const u of ["rown", "rmem", "rstr"]) await t.register(u);
    const own = await t.login("rown", "127.0.0.1:6310");
    const mem = await t.login("rmem", "127.0.0.1:6311");
    const str = await t.login("rstr", "127.0.0.1:6312");
    await t.ok(own, "POST", "/v1/groups", { groupId: "nat" }, 201);
    await t.join(mem, own, "nat");
    await t.ok(own, "POST", "/v1/groups/nat/files", fileBody("n.bin", "behind a router"), 201);
    const base = "/v1/groups/nat/files/n.bin";
    for (const tail of ["reversals", "relays", "punches"]) {
      await t.fails(str, "POST", `${base}/${tail}`, { userId: "rown" }, "NOT_MEMBER");
      await t.fails(mem, "POST", `${base}/${tail}`, { userId: "rstr" }, "NOT_SHARING");
    }
    // a member's reversal reaches the sharer's poll: dial the member at its own address, proving its key
    await t.ok(mem, "POST", `${base}/reversals`, { userId: "rown" });
    const { circuit } = await t.ok(mem, "POST", `${base}/relays`, { userId: "rown" });
    const { signals } = await t.ok(own, "GET", "/v1/signals?after=0");
    assert.deepEqual(
      signals.map((x: { kind: string }) => x.kind),
      ["reverse", "relay"],
    );
    assert.equal(signals[0].addr, "127.0.0.1:6311");
    assert.equal(signals[0].key, TEST_PEER.publicKey);
    assert.equal(signals[1].circuit, circuit);
    assert.equal(signals[1].relay, `127.0.0.1:${c.ports[0]}`);
    // the circuit: no session, or a user it was not opened for, is refused before any byte is carried
    const upgrade = (token?: string) =>
      trackerCall(c.ports[0]!, {
        method: "GET",
        path: `/v1/relay/${circuit}`,
        headers: { connection: "Upgrade", upgrade: "groupshare-relay/1" },
        token,
      });
    assert.equal((await upgrade()).status, 401);
    assert.equal((await upgrade(str)).status, 404);
  });

  it("refuses names with control, bidi or zero-width characters, and keeps names NFC", async () => {
    await t.register("namer");
    const tok = await t.login("namer", "127.0.0.1:6400");
    await t.ok(tok, "POST", "/v1/groups", { groupId: "names" }, 201);
    for (const name of [
      "invoice\u202etxt.exe",
      "zero\u200bwidth.bin",
      "c1\u0085control.bin",
      "csi\u009b31m.bin",
      "isolate\u2066x\u2069.bin",
      "mark\u200f.bin",
      "alm\u061c.bin",
      "bom\ufeff.bin",
      "joiner\u2060.bin",
      "line\u2028separator.bin",
    ]) {
      const r = await t.fails(
        tok,
        "POST",
        "/v1/groups/names/files",
        fileBody(name, "x"),
        "INVALID_FILE_NAME",
      );
      assert.match(r.error.message, /U\+[0-9A-F]{4}/);
      assert.ok(!/[\u0080-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/.test(r.error.message));
    }
    // NFD in, NFC stored; either spelling finds it
    const nfd = "cafe\u0301.txt";
    await t.ok(tok, "POST", "/v1/groups/names/files", fileBody(nfd, "coffee"), 201);
    const { files } = await t.ok(tok, "GET", "/v1/groups/names/files");
    assert.deepEqual(
      files.map((f: { name: string }) => f.name),
      ["caf\u00e9.txt"],
    );
    for (const n of [nfd, "caf\u00e9.txt"]) {
      await t.ok(tok, "POST", `/v1/groups/names/files/${encodeURIComponent(n)}/peers`, {});
    }
    // the same content under the NFD name again is the same file, not a second one
    await t.ok(tok, "POST", "/v1/groups/names/files", fileBody(nfd, "coffee"), 201);
    assert.equal((await t.ok(tok, "GET", "/v1/groups/names/files")).files.length, 1);
  });

  it("escapes client-supplied text in its log, and logs users' mistakes as info, not warnings", async () => {
    const r = await t.call("POST", "/v1/sessions", {
      userId: "alice",
      password: "pw",
      peerAddr: "\u001b[2J\u001b]0;pwned\u0007:1",
    });
    assert.equal(r.status, 400);
    const line = await tracker.expectErr(/BAD_REQUEST: peerAddr '\\x1b/);
    assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(line), JSON.stringify(line));
    assert.match(line, /\\x1b\[2J/);
    await t.register("mistaken");
    const tok = await t.login("mistaken", "127.0.0.1:6500");
    await t.fails(tok, "GET", "/v1/groups/g1/files", undefined, "NOT_MEMBER");
    await t.fails(tok, "GET", "/v1/groups/nope/files", undefined, "GROUP_NOT_FOUND");
    await tracker.expectErr(/^info: .*403 NOT_MEMBER/);
    await tracker.expectErr(/^info: .*404 GROUP_NOT_FOUND/);
    assert.ok(
      !tracker.errLines.some((l) => /^warning: .* -> (403|404|401|409) /.test(l)),
      tracker.errLines.join("\n"),
    );
  });
});

describe("tracker: idle sessions end, beating ones stay (raw HTTP, --session-idle 4)", () => {
  let c: Cluster;
  let t: Api;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1, ["--session-idle", "4"]);
    t = api(c.ports[0]!);
  });
  after(() => c.close());

  it("refuses a session that stopped beating after the idle time, and deletes it; one that beats stays", async () => {
    for (const u of ["quiet", "beats"]) await t.register(u);
    const loggedIn = Date.now();
    const quiet = await t.login("quiet", "127.0.0.1:6601");
    const beats = await t.login("beats", "127.0.0.1:6602");
    await t.ok(quiet, "GET", "/v1/groups");
    const failures: string[] = [];
    let stop = false;
    const beating = (async () => {
      while (!stop) {
        const r = await t.call("POST", "/v1/heartbeat", {}, beats);
        if (r.status !== 200) failures.push(JSON.stringify(r.body));
        await new Promise((res) => setTimeout(res, 300));
      }
    })();
    try {
      await eventually("the quiet session is refused", async () => {
        const r = await t.call("GET", "/v1/groups", undefined, quiet);
        if (r.status === 200) return false;
        assert.equal(r.status, 401);
        assert.equal(r.body.error.code, "UNAUTHORIZED");
        return true;
      });
      assert.ok(Date.now() - loggedIn >= 4_000, "not before the idle time");
      // and its heartbeat cannot revive it
      await t.fails(quiet, "POST", "/v1/heartbeat", {}, "UNAUTHORIZED");
      // the store forgets it (the sweep runs on a beat)
      const db = new Database(join(c.dir, "groupshare.db"), { readonly: true, fileMustExist: true });
      try {
        await eventually("the idle session is deleted", async () => {
          const rows = db.prepare("SELECT user_id FROM sessions").all() as { user_id: string }[];
          return rows.length === 1 && rows[0]!.user_id === "beats";
        });
      } finally {
        db.close();
      }
      await t.ok(beats, "GET", "/v1/groups");
    } finally {
      stop = true;
      await beating;
    }
    assert.deepEqual(failures, [], "the beating session was never refused");
  });
});

describe("real clients: remove_member, reject_request, the peer address and a hostile tracker", () => {
  let c: Cluster;
  let t: Api;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    t = api(c.ports[0]!);
  });
  after(() => c.close());

  /** A client whose peer server listens on `host`. */
  async function clientOn(name: string, host: string, info = c.infoPath): Promise<Proc & { port: number }> {
    const port = await freePort();
    const p = new Proc(
      name,
      join(ROOT, "client"),
      [`${host}:${port}`, info, "--state-dir", join(c.dir, `state-${name}`)],
      { mergeStderr: true },
    );
    c.procs.push(p);
    return Object.assign(p, { port });
  }

  it("the owner rejects and removes; the removed member's share and grants end; the sharer is seen at its own IP", async () => {
    const alice = await clientOn("alice", "127.0.0.1");
    const bob = await clientOn("bob", "127.0.0.2");
    const carol = await clientOn("carol", "127.0.0.1");
    for (const [p, u] of [
      [alice, "alice"],
      [bob, "bob"],
      [carol, "carol"],
    ] as const) {
      await ok(p, `create_user ${u} pw-${u}`, /^user .* created/);
      await ok(p, `login ${u} pw-${u}`, /^logged in as /);
    }
    await ok(alice, "create_group g", /^group g created/);
    await ok(bob, "join_group g", /^asked to join g/);
    await ok(carol, "join_group g", /^asked to join g/);
    await fails(bob, "reject_request g carol", /^rejected/);
    await ok(alice, "reject_request g carol", /^rejected carol's request to join g$/);
    await ok(alice, "list_requests g", /^bob /);
    await fails(alice, "reject_request g carol", /^rejected/);
    await ok(alice, "accept_request g bob", /^bob is now a member of g/);
    await writeFile(join(c.dir, "b.bin"), "bob's bytes");
    await ok(bob, `upload_file ${join(c.dir, "b.bin")} g`, /^uploaded b\.bin to g/);

    await t.register("dave");
    const dave = await t.login("dave", "127.0.0.1:6701");
    await t.ok(dave, "POST", "/v1/groups/g/requests", {}, 201);
    await ok(alice, "accept_request g dave", /^dave is now a member of g/);
    const before = await t.ok(dave, "POST", "/v1/groups/g/files/b.bin/peers", {});
    // bob's peer server is on 127.0.0.2: so are his connections to the tracker
    assert.deepEqual(
      before.peers.map(({ key, ...p }: { key: string }) => p),
      [{ userId: "bob", addr: `127.0.0.2:${bob.port}`, complete: true, nat: false }],
    );
    // with the key bob's peer server proves
    assert.match(before.peers[0].key, new RegExp(PEER_KEY_PATTERN));

    const self = await fails(alice, "remove_member g alice", /^removed/);
    assert.match(self, /cannot remove yourself/);
    await fails(bob, "remove_member g dave", /^removed/);
    await ok(alice, "remove_member g bob", /^removed bob from g$/);
    assert.deepEqual((await t.ok(dave, "POST", "/v1/groups/g/files/b.bin/peers", {})).peers, []);
    const refused = await fails(bob, "list_files g", /^b\.bin/);
    assert.match(refused, /not a member/);
  });

  it("a client facing a tracker that answers {} prints a clear error naming it", async () => {
    const fake = createServer(tlsIdentity("a tracker that answers {}").server, (req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (fake.address() as AddressInfo).port;
      const info = join(c.dir, "fake_tracker_info.txt");
      await writeFile(info, `127.0.0.1 ${port}\n`);
      const p = await clientOn("lost", "127.0.0.1", info);
      const line = await fails(p, "login lost pw", /^logged in/);
      assert.match(line, new RegExp(`^error: tracker 1 at 127\\.0\\.0\\.1:${port} sent a malformed answer`));
    } finally {
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });
});
