/**
 * Trust in a tracker, end to end with real processes: every tracker of a store
 * presents one key and prints it; a client records it at first use, refuses another
 * one (sending the impostor nothing), accepts a legitimate change the documented
 * way, lets a fingerprint in tracker_info.txt win, and checks a CA-issued certificate
 * (--tls-cert/--tls-key) against its CAs. The trackers of one tracker_info.txt are one
 * unit: once one is met, an impostor at another (reached by failover) is refused, and a
 * CA-issued certificate never overrides a key recorded.
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
import { refusesTls12, tlsIdentity } from "../helpers/tls.js";
import { TLS_VERSION } from "../../src/shared/tlsPolicy.js";

/** How long a client may take to reach an impostor by itself (a heartbeat comes every 10 s). */
const REACH_WAIT_MS = 30_000;

/**
 * A TLS server with a key of its own (or a CA-issued certificate) at a tracker's
 * address: counts connections and keeps every byte of a request it receives.
 */
class Impostor {
  readonly server: Server;
  /** TCP connections accepted */
  handshakes = 0;
  readonly received: Buffer[] = [];
  readonly fingerprint: string;
  readonly #reached: Promise<void>;

  constructor(identity: { cert: string; key: string } = tlsIdentity("impostor").server) {
    this.fingerprint = certificateFingerprint(identity.cert);
    this.server = createServer({ ...identity, ...TLS_VERSION }, (socket) => {
      socket.on("data", (d: Buffer) => this.received.push(d));
      socket.on("error", () => {});
    });
    this.#reached = new Promise((resolve) => this.server.once("connection", () => resolve()));
    this.server.on("connection", () => this.handshakes++);
    this.server.on("tlsClientError", () => {});
  }

  get requestBytes(): number {
    return this.received.reduce((n, b) => n + b.length, 0);
  }

  /** What it received, for an assertion's message. */
  get receivedText(): string {
    return Buffer.concat(this.received).toString("utf8").slice(0, 500);
  }

  /** Resolves when a client first connects; rejects after `timeoutMs`. */
  reached(timeoutMs = REACH_WAIT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no client reached the impostor in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([this.#reached, late]).finally(() => clearTimeout(timer));
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
    await refusesTls12(c.ports[0]!);
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

  it("refuses a re-keyed store until the lines its message names are deleted from known_trackers, then records the new key", async () => {
    const alice = c.procs.find((p) => p.label === "alice")!;
    // the store's key changed: every tracker of the file presents the new one (tracker 2 stays down)
    await c.procs.find((p) => p.label === "tracker2")!.kill();
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
    const line = await fails(alice, "list_groups", new RegExp(`presented key ${newKey}`));
    // and tracker 2's line, when alice met it (her heartbeat fails over to it while tracker 1 is down)
    const known = await readFile(knownPath(c, "alice"), "utf8");
    const met = c.ports.map((p) => `127.0.0.1:${p}`).filter((a) => known.includes(`${a} `));
    const named = [...line.matchAll(/'(\S+) …'/g)].map((m) => m[1]!);
    assert.deepEqual(named.sort(), met.sort(), line);
    await writeFile(
      knownPath(c, "alice"),
      known
        .split("\n")
        .filter((l) => !named.some((a) => l.startsWith(`${a} `)))
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

/**
 * A test CA, trusted by a client started with NODE_EXTRA_CA_CERTS=`path`, and a
 * certificate it issued for 127.0.0.1 with its key (as PEM, and as files for --tls-cert).
 */
async function testCa(dir: string) {
  const ca = generateKeyPairSync("ed25519");
  const leaf = generateKeyPairSync("ed25519");
  const path = join(dir, "ca.pem");
  await writeFile(
    path,
    makeCertificate({ publicKey: ca.publicKey, signingKey: ca.privateKey, commonName: "test CA", ca: true }),
  );
  const cert = makeCertificate({
    publicKey: leaf.publicKey,
    signingKey: ca.privateKey,
    commonName: "tracker",
    issuerName: "test CA",
    ips: ["127.0.0.1"],
  });
  const key = leaf.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const files = { cert: join(dir, "t.crt"), key: join(dir, "t.key") };
  await writeFile(files.cert, cert);
  await writeFile(files.key, key, { mode: 0o600 });
  return { path, leaf: { cert, key }, files };
}

describe("trust in trackers: a certificate from a CA", () => {
  let c: Cluster;
  let caPath: string;
  before(async () => {
    c = await Cluster.create(1);
    const ca = await testCa(c.dir);
    caPath = ca.path;
    await c.tracker(1, ["--tls-cert", ca.files.cert, "--tls-key", ca.files.key]);
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

describe("trust in trackers: one key for every tracker of a tracker_info.txt", () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create(2); // no fingerprints in tracker_info.txt
  });
  after(() => c.close());

  it("refuses an impostor at a tracker not met yet once another one of the file was: no byte of a request, no key recorded; the real one is accepted", async () => {
    const t1 = await c.tracker(1);
    const storeKey = c.fingerprint;
    const alice = await c.client("alice");
    await ok(alice, "create_user alice alice-pw", /^user alice created/);
    await ok(alice, "login alice alice-pw", /^logged in as alice/);
    await t1.kill();
    const impostor = new Impostor();
    await impostor.listen(c.ports[1]!);
    try {
      // the heartbeat and the long poll fail over to tracker 2 by themselves
      await impostor.reached();
      const line = await fails(alice, "list_groups", /presented key/);
      assert.ok(line.includes(impostor.fingerprint) && line.includes(storeKey), line);
      assert.ok(line.includes(`127.0.0.1:${c.ports[0]}`), line); // names the tracker whose key it records
      await ok(alice, "logout", /^logged out alice/);
      await fails(alice, "login alice alice-pw", /presented key/);
      assert.equal(impostor.requestBytes, 0, `the impostor received: ${impostor.receivedText}`);
      const known = await readFile(knownPath(c, "alice"), "utf8");
      assert.ok(!known.includes(impostor.fingerprint), known);
      assert.doesNotMatch(known, new RegExp(`:${c.ports[1]} `), known);
    } finally {
      await impostor.close();
    }
    await c.tracker(2);
    assert.equal(c.fingerprint, storeKey);
    await ok(alice, "login alice alice-pw", /^logged in as alice/);
    await ok(alice, "list_groups", /^\(no groups/);
    assert.match(
      await readFile(knownPath(c, "alice"), "utf8"),
      new RegExp(`:${c.ports[1]} ${storeKey}$`, "m"),
    );
  });
});

describe("trust in trackers: a CA-issued certificate does not override a recorded key", () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create(2);
  });
  after(() => c.close());

  it("refuses a CA-valid impostor at the address whose key is recorded, and at another tracker of the file", async () => {
    const ca = await testCa(c.dir);
    const t1 = await c.tracker(1);
    const storeKey = c.fingerprint;
    const dave = await c.client("dave", { env: { NODE_EXTRA_CA_CERTS: ca.path } });
    await ok(dave, "create_user dave dave-pw", /^user dave created/);
    await t1.kill();
    // the only one listening: the command reaches it whichever tracker the client tries first
    for (const port of c.ports) {
      const impostor = new Impostor(ca.leaf);
      await impostor.listen(port);
      try {
        const line = await fails(dave, "login dave dave-pw", /presented key/);
        assert.ok(line.includes(impostor.fingerprint) && line.includes(storeKey), line);
        assert.ok(impostor.handshakes >= 1, "the client reached the impostor");
        assert.equal(impostor.requestBytes, 0, `the impostor received: ${impostor.receivedText}`);
      } finally {
        await impostor.close();
      }
    }
    const known = await readFile(knownPath(c, "dave"), "utf8");
    assert.match(known, new RegExp(`:${c.ports[0]} ${storeKey}$`, "m"));
    assert.doesNotMatch(known, new RegExp(`:${c.ports[1]} `), known);
  });
});
