/**
 * Trust in a tracker, end to end with real processes: every tracker of a store
 * presents one key and prints it; a client records it at first use, refuses another
 * one (sending the impostor nothing), accepts a legitimate change the documented
 * way, lets a fingerprint in tracker_info.txt win, and checks a CA-issued certificate
 * (--tls-cert/--tls-key) against its CAs.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:tls";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { certificateFingerprint, makeCertificate } from "../../src/shared/x509.js";
import { Cluster, freePort, Proc, ROOT } from "../helpers/procs.js";
import { fails, ok } from "../helpers/say.js";
import { tlsIdentity } from "../helpers/tls.js";

/** A TLS server with a key of its own at a tracker's address: counts handshakes and request bytes. */
class Impostor {
  readonly server: Server;
  /** TCP connections accepted */
  handshakes = 0;
  requestBytes = 0;
  readonly fingerprint: string;

  constructor() {
    const id = tlsIdentity("impostor");
    this.fingerprint = id.fingerprint;
    this.server = createServer(id.server, (socket) => {
      socket.on("data", (d: Buffer) => {
        this.requestBytes += d.length;
      });
      socket.on("error", () => {});
    });
    this.server.on("connection", () => this.handshakes++);
    this.server.on("tlsClientError", () => {});
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The fingerprint of the key the TLS server on 127.0.0.1:`port` presents. */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(certificateFingerprint(s.getPeerX509Certificate()!));
      s.destroy();
    });
    s.on("error", reject);
  });
}

const knownPath = (c: Cluster, name: string) => join(c.dir, `state-${name}`, "known_trackers");

describe("trust in trackers: first use, a changed key, pinning", () => {
  let c: Cluster;
  let t1: Proc;
  let storeKey: string;

  before(async () => {
    c = await Cluster.create(2);
    t1 = await c.tracker(1);
    storeKey = c.fingerprint;
    await c.tracker(2);
  });
  after(() => c.close());

  it("prints its key at start, and every tracker of one store presents it over TLS 1.3 only", async () => {
    assert.match(t1.lines.join("\n"), new RegExp(`tracker 1 key ${storeKey}`));
    assert.equal(await presented(c.ports[0]!), storeKey);
    assert.equal(await presented(c.ports[1]!), storeKey);
    const old = connect({
      host: "127.0.0.1",
      port: c.ports[0]!,
      rejectUnauthorized: false,
      maxVersion: "TLSv1.2",
    });
    await assert.rejects(
      new Promise((resolve, reject) => {
        old.once("secureConnect", resolve);
        old.once("error", reject);
      }),
      /protocol version|alert/i,
    );
  });

  it("records the tracker's key at first use, in an owner-only known_trackers", async () => {
    const alice = await c.client("alice");
    await ok(alice, "create_user alice pw", /^user alice created/);
    await ok(alice, "login alice pw", /^logged in as alice/);
    const known = await readFile(knownPath(c, "alice"), "utf8");
    assert.match(known, new RegExp(`^127\\.0\\.0\\.1:${c.ports[0]} ${storeKey}$`, "m"));
    assert.equal(((await stat(knownPath(c, "alice"))).mode & 0o777).toString(8), "600");
  });

  it("refuses an impostor at the tracker's address, sends it no request, and does not fail over", async () => {
    const alice = c.procs.find((p) => p.label === "alice")!;
    await t1.kill();
    const impostor = new Impostor();
    await impostor.listen(c.ports[0]!);
    try {
      const line = await fails(alice, "list_groups", /presented key/);
      assert.ok(line.includes(impostor.fingerprint), line);
      assert.ok(line.includes(storeKey), line);
      assert.ok(line.includes(knownPath(c, "alice")), line);
      assert.match(line, /delete the line/);
      assert.ok(impostor.handshakes >= 1, "the client reached the impostor");
      assert.equal(impostor.requestBytes, 0, "the impostor received request bytes");
    } finally {
      await impostor.close();
    }
  });

  it("refuses a changed key until its line is deleted from known_trackers, then records the new one", async () => {
    const alice = c.procs.find((p) => p.label === "alice")!;
    const dir = join(c.dir, "new-key");
    const key = generateKeyPairSync("ed25519");
    const certPath = `${dir}.crt`;
    const keyPath = `${dir}.key`;
    await writeFile(
      certPath,
      makeCertificate({ publicKey: key.publicKey, signingKey: key.privateKey, commonName: "t1" }),
    );
    await writeFile(keyPath, key.privateKey.export({ type: "pkcs8", format: "pem" }) as string, {
      mode: 0o600,
    });
    const newKey = certificateFingerprint(await readFile(certPath));
    t1 = await c.tracker(1, ["--tls-cert", certPath, "--tls-key", keyPath]);
    assert.equal(c.fingerprint, newKey);
    await fails(alice, "list_groups", new RegExp(`presented key ${newKey}`));
    const known = await readFile(knownPath(c, "alice"), "utf8");
    await writeFile(
      knownPath(c, "alice"),
      known
        .split("\n")
        .filter((l) => !l.startsWith(`127.0.0.1:${c.ports[0]} `))
        .join("\n"),
    );
    await ok(alice, "list_groups", /^\(no groups/);
    assert.match(await readFile(knownPath(c, "alice"), "utf8"), new RegExp(`:${c.ports[0]} ${newKey}$`, "m"));
  });

  it("a fingerprint in tracker_info.txt wins over what the client recorded", async () => {
    const info = join(c.dir, "pinned_tracker_info.txt");
    const start = async (name: string, pin: string) => {
      await writeFile(info, `127.0.0.1 ${c.ports[0]} ${pin}\n`);
      const p = new Proc(
        name,
        join(ROOT, "client"),
        [
          `127.0.0.1:${await freePort()}`,
          info,
          "--state-dir",
          join(c.dir, "state-alice"), // alice's known_trackers: it records the tracker's new key
        ],
        { mergeStderr: true },
      );
      c.procs.push(p);
      return p;
    };
    // pinned to the store's key, which tracker 1 no longer presents: refused, though known_trackers has its key
    const wrong = await start("pinned-old", storeKey);
    const line = await fails(wrong, "create_user bob pw", /tracker_info\.txt pins/);
    assert.ok(line.includes(storeKey) && line.includes(c.fingerprint), line);
    await wrong.kill();
    // pinned to the key it presents: accepted
    const right = await start("pinned-new", c.fingerprint);
    await ok(right, "create_user bob pw", /^user bob created/);
  });
});

describe("trust in trackers: a certificate from a CA", () => {
  let c: Cluster;
  let caPath: string;
  before(async () => {
    c = await Cluster.create(1);
    const ca = generateKeyPairSync("ed25519");
    const leaf = generateKeyPairSync("ed25519");
    caPath = join(c.dir, "ca.pem");
    await writeFile(
      caPath,
      makeCertificate({
        publicKey: ca.publicKey,
        signingKey: ca.privateKey,
        commonName: "test CA",
        ca: true,
      }),
    );
    const cert = makeCertificate({
      publicKey: leaf.publicKey,
      signingKey: ca.privateKey,
      commonName: "tracker",
      issuerName: "test CA",
      ips: ["127.0.0.1"],
    });
    await writeFile(join(c.dir, "t.crt"), cert);
    await writeFile(join(c.dir, "t.key"), leaf.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    await c.tracker(1, ["--tls-cert", join(c.dir, "t.crt"), "--tls-key", join(c.dir, "t.key")]);
  });
  after(() => c.close());

  it("is checked against the client's CAs, recorded as such, and a self-signed impostor is then refused", async () => {
    const p = new Proc(
      "carol",
      join(ROOT, "client"),
      [`127.0.0.1:${await freePort()}`, c.infoPath, "--state-dir", join(c.dir, "state-carol")],
      { env: { NODE_EXTRA_CA_CERTS: caPath }, mergeStderr: true },
    );
    c.procs.push(p);
    await ok(p, "create_user carol pw", /^user carol created/);
    assert.match(await readFile(knownPath(c, "carol"), "utf8"), new RegExp(`:${c.ports[0]} ca$`, "m"));
    await c.procs[0]!.kill();
    const impostor = new Impostor();
    await impostor.listen(c.ports[0]!);
    try {
      const line = await fails(p, "login carol pw", /a certificate from a trusted CA/);
      assert.ok(line.includes(impostor.fingerprint), line);
      assert.equal(impostor.requestBytes, 0);
    } finally {
      await impostor.close();
    }
  });
});
