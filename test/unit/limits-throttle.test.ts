import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { type AddressInfo, connect as tcpConnect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { after, describe, it } from "node:test";
import { connect as tlsConnect, TLSSocket } from "node:tls";
import { systemClock } from "../../src/client/peers/clock.js";
import { LimitTree } from "../../src/client/limits/buckets.js";
import { newPeerIdentity } from "../../src/client/peerIdentity.js";
import { ThrottledStream } from "../../src/client/limits/throttle.js";
import { TLS_VERSION } from "../../src/shared/tlsPolicy.js";
import { duplexPair } from "../helpers/memoryPeers.js";

const closed = (s: Duplex) => (s.closed ? Promise.resolve() : once(s, "close"));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Every byte a stream gives until it ends (for await would destroy it at the end, cutting what it still sends). */
async function readAll(s: TLSSocket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on("data", (c: Buffer) => parts.push(c));
  await once(s, "end");
  return Buffer.concat(parts);
}

/**
 * Both ends of one TLS connection on 127.0.0.1, each over its own ThrottledStream with
 * its own trees: the client is a download's link, the server serves it.
 */
async function throttledPair(trees = newTrees()) {
  const server$ = createServer();
  servers.push(server$);
  server$.listen(0, "127.0.0.1");
  await once(server$, "listening");
  const accepted = once(server$, "connection") as Promise<[Socket]>;
  const clientTcp = tcpConnect({ host: "127.0.0.1", port: (server$.address() as AddressInfo).port });
  const [serverTcp] = await accepted;
  return { clientTcp, serverTcp, ...(await tlsOver(clientTcp, serverTcp, trees)) };
}

/** Each end's upload and download trees. */
function newTrees() {
  return {
    clientUp: new LimitTree(systemClock),
    clientDown: new LimitTree(systemClock),
    serverUp: new LimitTree(systemClock),
    serverDown: new LimitTree(systemClock),
  };
}

/** TLS between two transports, each end over a ThrottledStream with a link node in each of its trees. */
async function tlsOver(clientTransport: Duplex, serverTransport: Duplex, trees = newTrees()) {
  const id = newPeerIdentity();
  const client = { up: trees.clientUp.root.child(), down: trees.clientDown.root.child() };
  const server = { up: trees.serverUp.root.child(), down: trees.serverDown.root.child() };
  const served = new ThrottledStream(serverTransport, server, "serve");
  const serverTls = new TLSSocket(served, {
    isServer: true,
    key: id.key,
    cert: id.cert,
    ...TLS_VERSION,
  });
  const clientTls = tlsConnect({
    socket: new ThrottledStream(clientTransport, client, "download"),
    rejectUnauthorized: false, // the key is not what this test is about
    ...TLS_VERSION,
  });
  await Promise.all([once(clientTls, "secureConnect"), once(serverTls, "secure")]);
  return { trees, client, server, served, clientTls, serverTls };
}

/**
 * Polls for a state no event announces (a socket's kernel buffer full), every 5 ms for
 * at most 10 s; the assertions never depend on how long it takes.
 */
function until(cond: () => boolean) {
  let met = false;
  const promise = new Promise<void>((resolve, reject) => {
    let tries = 0;
    const check = () => {
      if (cond()) {
        met = true;
        resolve();
      } else if (++tries > 2_000) reject(new Error("condition not met in 10 s"));
      else setTimeout(check, 5);
    };
    check();
  });
  return { promise, done: async () => met };
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

describe("ThrottledStream: TLS over a rate-limited socket on loopback", () => {
  it("delivers every byte intact both ways under limits, and counts exactly what crossed the socket", async () => {
    const p = await throttledPair();
    // limits on the link and above it, low enough that the download's reads and the
    // served side's writes wait on them; the other way is counted as it goes
    p.trees.clientUp.root.setRate(4_000_000);
    p.client.up.setRate(3_000_000);
    p.trees.serverDown.root.setRate(2_000_000);
    p.trees.serverUp.root.setRate(3_000_000);
    p.trees.clientDown.root.setRate(2_500_000);
    // requests: what a download sends the peer serving it is small (a served link reads
    // only that much unheld: FREE_READ_START and the rest)
    const up = randomBytes(30_000 + 17);
    const down = randomBytes(1_000_000 + 3);
    const gotUp = readAll(p.serverTls);
    const gotDown = readAll(p.clientTls);
    p.clientTls.end(up);
    p.serverTls.end(down);
    const [u, d] = await Promise.all([gotUp, gotDown]);
    assert.equal(u.length, up.length, "upload length");
    assert.equal(sha(u), sha(up), "upload intact");
    assert.equal(d.length, down.length, "download length");
    assert.equal(sha(d), sha(down), "download intact");
    await Promise.all([closed(p.clientTcp), closed(p.serverTcp)]);
    // what each tree was charged is what the TCP sockets moved, TLS and all
    assert.equal(p.trees.clientUp.root.bytes, p.clientTcp.bytesWritten);
    assert.equal(p.trees.clientDown.root.bytes, p.clientTcp.bytesRead);
    assert.equal(p.trees.serverUp.root.bytes, p.serverTcp.bytesWritten);
    assert.equal(p.trees.serverDown.root.bytes, p.serverTcp.bytesRead);
    assert.equal(p.clientTcp.bytesWritten, p.serverTcp.bytesRead);
    assert.ok(p.clientTcp.bytesWritten > up.length, "TLS records and the handshake are counted too");
    assert.ok(p.client.up.closed && p.server.down.closed, "the streams closed their nodes");
  });

  it("serves links that share a capped download in turns: each reads all it is sent", {
    timeout: 30_000,
  }, async () => {
    const trees = newTrees();
    trees.clientDown.root.setRate(1_500_000);
    const pairs = await Promise.all([0, 1, 2].map(() => throttledPair(trees)));
    const sent = pairs.map(() => randomBytes(600_000));
    const got = pairs.map((p) => readAll(p.clientTls));
    for (const [i, p] of pairs.entries()) p.serverTls.end(sent[i]);
    const received = await Promise.all(got);
    for (const [i, r] of received.entries()) assert.equal(sha(r), sha(sent[i] as Buffer), `link ${i}`);
    for (const p of pairs) p.clientTls.end();
  });

  it("reads nothing while the download is paused, holds the sender back, and delivers all once resumed", async () => {
    const p = await throttledPair();
    p.client.down.setRate(0);
    let received = 0;
    const parts: Buffer[] = [];
    p.clientTls.on("data", (c: Buffer) => {
      received += c.length;
      parts.push(c);
    });
    // write until the sender's TCP socket holds bytes the kernel would not take: the
    // receiver's window is shut, so the pause has reached the sender
    const sent: Buffer[] = [];
    const pushedBack = until(() => p.serverTcp.writableLength > 0);
    for (let i = 0; i < 1024 && !(await pushedBack.done()); i++) {
      const b = randomBytes(64 * 1024);
      sent.push(b);
      if (!p.serverTls.write(b)) await Promise.race([once(p.serverTls, "drain"), pushedBack.promise]);
    }
    await pushedBack.promise;
    const sentBytes = sent.reduce((s, b) => s + b.length, 0);
    // one socket read may have been under way when the rate changed; nothing after it
    assert.ok(received <= 64 * 1024, `received ${received} of ${sentBytes} while paused`);
    const readBefore = p.clientTcp.bytesRead;
    await new Promise((r) => setImmediate(r));
    assert.equal(p.clientTcp.bytesRead, readBefore, "the paused socket is not read");
    p.client.down.setRate(undefined);
    p.serverTls.end();
    await once(p.clientTls, "end");
    assert.equal(sha(Buffer.concat(parts)), sha(Buffer.concat(sent)), "everything came, in order");
  });

  it("limits a relay leg (a stream that is not a socket) the same way, every byte intact", async () => {
    const [a, b] = duplexPair();
    const p = await tlsOver(a, b);
    p.trees.serverUp.root.setRate(2_000_000);
    p.trees.clientDown.root.setRate(1_000_000);
    const sent = randomBytes(700_001);
    const got = readAll(p.clientTls);
    p.serverTls.end(sent);
    assert.equal(sha(await got), sha(sent));
    assert.ok(p.trees.serverUp.root.bytes > sent.length, "TLS counted");
    assert.equal(
      p.trees.clientDown.root.bytes,
      p.trees.serverUp.root.bytes,
      "what one end sent, the other read",
    );
  });

  it("holds back only the way pieces flow: requests go at 0 the other way, until an accepted link turns download", async () => {
    const p = await throttledPair();
    // the download's uploads and the server's downloads paused: what each sends its peer
    // (the requests, here a few KB) still goes, and is counted
    p.trees.clientUp.root.setRate(0);
    p.trees.serverDown.root.setRate(0);
    const request = randomBytes(5_000);
    const got = new Promise<number>((resolve) => {
      let n = 0;
      p.serverTls.on("data", (c: Buffer) => {
        n += c.length;
        if (n >= request.length) resolve(n);
      });
    });
    p.clientTls.write(request);
    assert.equal(await got, request.length);
    assert.equal(p.trees.clientUp.root.bytes, p.clientTcp.bytesWritten, "counted all the same");
    // the server's end turns out to be a download's (a reversal): at 0 its socket is no longer read
    p.served.toDownload();
    assert.ok(p.serverTcp.isPaused(), "a paused download's socket is not read");
    const more = new Promise<void>((resolve) => p.serverTls.once("data", () => resolve()));
    p.clientTls.write(randomBytes(5_000));
    p.trees.serverDown.root.setRate(undefined);
    await more;
    p.clientTls.end();
    p.serverTls.end();
    await Promise.all([closed(p.clientTcp), closed(p.serverTcp)]);
  });

  it("ends the connection when its link node is closed (its download removed)", async () => {
    const p = await throttledPair();
    p.server.up.setRate(1_000); // a slow write keeps a request waiting at the node
    p.serverTls.write(randomBytes(100_000));
    p.server.up.close();
    await Promise.all([closed(p.serverTcp), closed(p.clientTls)]);
    assert.ok(p.server.down.closed, "its other node closed with it");
  });
});
