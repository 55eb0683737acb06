/**
 * Nothing readable crosses the network, and every peer proves who it is, end to end
 * with real processes: a capture of a whole session on loopback holds no secret; a
 * sharer refuses tickets copied onto another key, connections without a key, TLS 1.2
 * and plaintext, and goes on serving; a downloader refuses an impostor at a sharer's
 * address, sends it nothing, and completes from the real sharers.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { newPeerIdentity } from "../../src/client/peerIdentity.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { encodeHandshake, encodeRequest, RejectCode } from "../../src/wire/index.js";
import { Cluster, freePort, WAIT_MS } from "../helpers/procs.js";
import { refusesTls12 } from "../helpers/tls.js";
import { ApiUser, claimsOf, RawDownloader, RoguePeer } from "./peer.helpers.js";
import {
  assertSameFile,
  type Client,
  DOWNLOAD_MS,
  lit,
  type MadeFile,
  ok,
  randomFile,
} from "./sharing.helpers.js";

const FILE_NAME = "confidential-report-7f3a.bin";
const FILE_SIZE = 6 * PIECE_SIZE + 12_345;
const PASSWORDS = { alice: "pw-Sekr3t-alice-91", bob: "pw-Sekr3t-bob-27" };

function lengths(size: number): number[] {
  return Array.from({ length: Math.ceil(size / PIECE_SIZE) }, (_, i) =>
    Math.min(PIECE_SIZE, size - i * PIECE_SIZE),
  );
}

/**
 * tcpdump on loopback for `ports`, until stop(); the capture's bytes. Before it stops,
 * a marker is sent in clear to the first port and awaited in the file: tcpdump drops
 * what it has not yet read when it is told to stop, so everything before the marker is in.
 */
async function capture(path: string, ports: number[]): Promise<{ stop: () => Promise<Buffer> }> {
  const filter = `tcp and (${ports.map((p) => `port ${p}`).join(" or ")})`;
  // a large buffer: a packet the kernel drops is a packet the test cannot check
  const proc = spawn("tcpdump", ["-i", "lo", "-U", "-B", "65536", "-s", "0", "-w", path, filter], {
    stdio: "pipe",
  });
  let err = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), WAIT_MS);
    proc.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  return {
    stop: async () => {
      const marker = `capture-marker-${randomInt(1e9)}`;
      const s = netConnect({ host: "127.0.0.1", port: ports[0]! }, () => s.write(marker));
      s.on("error", () => {});
      const deadline = Date.now() + WAIT_MS;
      while (!(await readFile(path)).includes(marker)) {
        assert.ok(Date.now() < deadline, "the marker never reached the capture file");
        await new Promise((r) => setTimeout(r, 50)); // polling a file tcpdump writes: no event to await
      }
      s.destroy();
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGINT");
      await exited;
      const dropped = /(\d+) packets? dropped by kernel/.exec(err)?.[1];
      assert.equal(dropped, "0", `tcpdump: ${err}`);
      return readFile(path);
    },
  };
}

const tcpdump = spawnSync("tcpdump", ["--version"]).status === 0;
const noCapture = !tcpdump
  ? "tcpdump is not installed"
  : process.getuid?.() !== 0
    ? "capturing on loopback needs root"
    : false;

describe("encrypted and authenticated on every link", () => {
  let c: Cluster;
  let alice: Client;
  let bob: Client;
  let carol: Client;
  let file: MadeFile;
  let fileId: Buffer;
  const dir = (n: string) => join(c.dir, n);

  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    [alice, bob, carol] = await Promise.all(
      ["alice", "bob", "carol"].map(async (n) => c.client(n, { port: await freePort() })),
    );
    for (const n of ["alice", "bob", "carol", "dave"]) await mkdir(dir(n));
    file = await randomFile(join(dir("alice"), FILE_NAME), FILE_SIZE);
  });
  after(() => c.close());

  it("a capture of a whole session holds no password, token, ticket, file name or file bytes", {
    skip: noCapture,
  }, async () => {
    const cap = await capture(join(c.dir, "session.pcap"), [c.ports[0]!, alice.port, bob.port]);
    await ok(alice, `create_user alice ${PASSWORDS.alice}`, /^user alice created/);
    await ok(alice, `login alice ${PASSWORDS.alice}`, /^logged in as alice/);
    await ok(alice, "create_group g", /^group g created/);
    await ok(alice, `upload_file ${file.path} g`, new RegExp(`^uploaded ${lit(FILE_NAME)} to g`));
    await ok(bob, `create_user bob ${PASSWORDS.bob}`, /^user bob created/);
    await ok(bob, `login bob ${PASSWORDS.bob}`, /^logged in as bob/);
    await ok(bob, "join_group g", /^asked to join g/);
    await ok(alice, "accept_request g bob", /^bob is now a member of g/);
    await ok(bob, `list_files g`, new RegExp(lit(FILE_NAME)));
    await ok(bob, `download_file g ${FILE_NAME} ${dir("bob")}`, /^downloading /);
    await bob.expect(new RegExp(`^download complete: \\[g\\] ${lit(FILE_NAME)}`), DOWNLOAD_MS);
    const pcap = await cap.stop();
    await assertSameFile(join(dir("bob"), FILE_NAME), file);

    assert.ok(pcap.length > FILE_SIZE, `the capture (${pcap.length} bytes) did not see the file cross`);
    const secrets = [
      ...Object.values(PASSWORDS),
      FILE_NAME,
      "Bearer", // the session token travels in this header
      "authorization",
      "eyJ1Ijoi", // a ticket: base64url of {"u":"
      "userId",
    ];
    for (const s of secrets) assert.equal(pcap.indexOf(s), -1, `the capture holds '${s}'`);
    const bytes = await readFile(file.path);
    let found = 0;
    for (let i = 0; i < 400; i++) {
      const at = randomInt(0, bytes.length - 64);
      if (pcap.indexOf(bytes.subarray(at, at + 64)) >= 0) found++;
    }
    assert.equal(found, 0, `${found} of 400 64-byte samples of the file are in the capture`);
  });

  it("a sharer refuses a ticket on another key, no key, TLS 1.2 and plaintext, and keeps serving", async () => {
    if (noCapture) {
      // the session the capture test runs, without the capture
      await ok(alice, `create_user alice ${PASSWORDS.alice}`, /^user alice created/);
      await ok(alice, `login alice ${PASSWORDS.alice}`, /^logged in as alice/);
      await ok(alice, "create_group g", /^group g created/);
      await ok(alice, `upload_file ${file.path} g`, /^uploaded /);
    }
    const mal = await ApiUser.create(c.ports[0]!, "mal");
    await mal.call("POST", "/v1/groups/g/requests", {});
    await ok(alice, "accept_request g mal", /^mal is now a member of g/);
    const grant = await mal.call<{ ticket: string }>("POST", `/v1/groups/g/files/${FILE_NAME}/download`, {});
    fileId = Buffer.from(claimsOf(grant.ticket).f, "hex");
    const sizes = lengths(FILE_SIZE);

    // the ticket's own key: served
    const good = new RawDownloader(alice.port, fileId, grant.ticket, sizes, 100);
    await good.nextPiece();

    // the same ticket from a connection proving another key, or none
    for (const identity of [newPeerIdentity(), null]) {
      const copied = new RawDownloader(alice.port, fileId, grant.ticket, sizes, 100, identity);
      await copied.closed;
      assert.equal(copied.pieceBytes, 0);
      assert.deepEqual(
        copied.rejects().map((r) => [r.code, r.reason]),
        [
          [
            RejectCode.BAD_TICKET,
            identity
              ? "ticket is for another key than this connection's"
              : "no client certificate: a ticket is good only with the key it names",
          ],
        ],
      );
    }

    // a renewal minted for mal's other session, on another key: refused, and the connection ends
    const other = newPeerIdentity();
    const relogin = await mal.call<{ token: string }>("POST", "/v1/sessions", {
      userId: "mal",
      password: "pw-mal",
      peerAddr: "127.0.0.1:9",
      peerKey: other.publicKey,
    });
    mal.token = relogin.token;
    const foreign = await mal.call<{ ticket: string }>("POST", `/v1/groups/g/files/${FILE_NAME}/peers`, {});
    assert.equal(claimsOf(foreign.ticket).k, other.publicKey);
    good.renew(foreign.ticket);
    await good.closed;
    assert.deepEqual(
      good.rejects().map((r) => [r.code, r.reason]),
      [[RejectCode.BAD_TICKET, "renewal: ticket is for another key than this connection's"]],
    );

    // TLS 1.2: no handshake
    await refusesTls12(alice.port);

    // plaintext: the wire's handshake and a request in clear get nothing of the file
    const plain = netConnect({ host: "127.0.0.1", port: alice.port });
    const got: Buffer[] = [];
    plain.on("data", (d: Buffer) => got.push(d));
    plain.on("error", () => {});
    plain.write(Buffer.concat([encodeHandshake(fileId, foreign.ticket), encodeRequest(0, 0, sizes[0]!)]));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("plaintext connection left open")), WAIT_MS);
      plain.on("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const answer = Buffer.concat(got);
    assert.ok(answer.length < 64, `the sharer answered plaintext with ${answer.length} bytes`);

    // the sharer still serves its members: mal on its new key
    const fresh = new RawDownloader(alice.port, fileId, foreign.ticket, sizes, 100, other);
    try {
      await fresh.nextPiece();
    } finally {
      fresh.close();
    }
  });

  it("a downloader refuses an impostor at a sharer's address, sends it nothing, and completes from the real sharers", async () => {
    // carol shares the file too; dave joins while alice, the owner, is there to accept
    await ok(carol, "create_user carol pw", /^user carol created/);
    await ok(carol, "login carol pw", /^logged in as carol/);
    await ok(carol, "join_group g", /^asked to join g/);
    await ok(alice, "accept_request g carol", /^carol is now a member of g/);
    await ok(carol, `download_file g ${FILE_NAME} ${dir("carol")}`, /^downloading /);
    await carol.expect(/^download complete: /, DOWNLOAD_MS);
    const dave = await c.client("dave");
    await ok(dave, "create_user dave pw", /^user dave created/);
    await ok(dave, "login dave pw", /^logged in as dave/);
    await ok(dave, "join_group g", /^asked to join g/);
    await ok(alice, "accept_request g dave", /^dave is now a member of g/);

    // alice's process dies; the tracker lists her for a while yet, and someone else takes her port
    await alice.kill();
    const bytes = await readFile(file.path);
    const pieces = lengths(FILE_SIZE).map((len, i) => bytes.subarray(i * PIECE_SIZE, i * PIECE_SIZE + len));
    const impostor = new RoguePeer(FILE_SIZE, pieces, new Set(pieces.keys()), undefined, newPeerIdentity());
    await new Promise<void>((resolve, reject) => {
      impostor.server.once("error", reject);
      impostor.server.listen(alice.port, "127.0.0.1", () => resolve());
    });
    try {
      await ok(dave, `download_file g ${FILE_NAME} ${dir("dave")}`, /^downloading /);
      await dave.expect(/^download complete: /, DOWNLOAD_MS);
      await assertSameFile(join(dir("dave"), FILE_NAME), file);
      assert.ok(impostor.connections >= 1, "dave never dialled alice's address");
      assert.equal(impostor.bytesIn, 0, "the impostor received bytes after the TLS handshake");
      assert.deepEqual(impostor.tickets, []);
      // said once, on stderr, naming the address
      await dave.expectErr(
        new RegExp(`^warning: whoever is at 127\\.0\\.0\\.1:${alice.port} did not prove the key`),
      );
      assert.equal(dave.errLines.filter((l) => l.includes("did not prove the key")).length, 1);
    } finally {
      await impostor.close();
    }
  });
});
