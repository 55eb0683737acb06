/**
 * Peer keys at the tracker: a login must carry an Ed25519 public key; the tracker
 * hands it out with the sharer's address and names the downloader's in each ticket.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import { newPeerIdentity } from "../../src/client/peerIdentity.js";
import { peerKeyOf, peerKeyProblem } from "../../src/shared/peerKey.js";
import { TrackerService } from "../../src/tracker/service.js";
import { openStore, type Store } from "../../src/tracker/store/index.js";
import { serveTracker, trackerCall } from "../helpers/tls.js";
import { claimsOf } from "../e2e/peer.helpers.js";

describe("peer keys at the tracker", () => {
  let dir: string;
  let store: Store;
  let port: number;
  let close: () => Promise<unknown>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-peerkeys-"));
    store = await openStore(join(dir, "t.db"));
    const service = new TrackerService(store);
    await service.init();
    const served = await serveTracker(service);
    port = served.port;
    close = () => served.app.close();
  });
  after(async () => {
    await close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const login = (userId: string, peerKey: string) =>
    trackerCall(port, {
      method: "POST",
      path: "/v1/sessions",
      body: { userId, password: "pw", peerAddr: "127.0.0.1:6001", peerKey },
    });

  it("refuses a login whose key is not an Ed25519 public key", async () => {
    await trackerCall(port, { method: "POST", path: "/v1/users", body: { userId: "k", password: "pw" } });
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    for (const bad of ["", "not-a-key", peerKeyOf(rsa), newPeerIdentity().publicKey.slice(0, -4)]) {
      const r = await login("k", bad);
      assert.equal(r.code, "BAD_REQUEST", `${JSON.stringify(bad)}: ${r.text}`);
    }
    assert.equal(peerKeyProblem(newPeerIdentity().publicKey), undefined);
  });

  it("hands out each sharer's key with its address and names the downloader's in the ticket", async () => {
    const [own, dl] = [newPeerIdentity(), newPeerIdentity()];
    for (const u of ["own", "dl"]) {
      await trackerCall(port, { method: "POST", path: "/v1/users", body: { userId: u, password: "pw" } });
    }
    const ownToken = (await login("own", own.publicKey)).body.token as string;
    const dlToken = (await login("dl", dl.publicKey)).body.token as string;
    const as = (token: string, method: string, path: string, body: unknown = {}) =>
      trackerCall(port, { method, path, body, token });
    await as(ownToken, "POST", "/v1/groups", { groupId: "g" });
    await as(dlToken, "POST", "/v1/groups/g/requests");
    await as(ownToken, "POST", "/v1/groups/g/requests/dl/accept");
    const file = { name: "f", size: 1, sha1: "a".repeat(40), pieces: Buffer.alloc(20).toString("base64") };
    assert.equal((await as(ownToken, "POST", "/v1/groups/g/files", file)).status, 201);
    const grant = (await as(dlToken, "POST", "/v1/groups/g/files/f/download")).body;
    assert.deepEqual(
      grant.peers.map((p: { userId: string; key: string }) => [p.userId, p.key]),
      [["own", own.publicKey]],
    );
    assert.equal(claimsOf(grant.ticket).k, dl.publicKey);
  });
});
