/**
 * node dist/bench/limits.js [--quick]
 *
 * What speed limits cost, and how well they hold, on loopback in one process (both ends
 * on this core): TLS 1.3 straight over TCP against TLS over ThrottledStream (no limit,
 * a limit that binds, and eight links sharing one), CPU seconds per GiB moved; then one
 * link capped at 20 MB/s, changed to 5 MB/s after 6 s, its bytes per second at the
 * receiver's socket.
 */
import { once } from "node:events";
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { connect as tlsConnect, TLSSocket } from "node:tls";
import { systemClock } from "../src/client/peers/clock.js";
import { LimitTree } from "../src/client/limits/buckets.js";
import { formatRate, type Rate } from "../src/client/limits/rate.js";
import { type LinkRole, ThrottledStream } from "../src/client/limits/throttle.js";
import { newPeerIdentity } from "../src/client/peerIdentity.js";
import { TLS_VERSION } from "../src/shared/tlsPolicy.js";
import { measure } from "./parts/crypto.js";
import { median } from "./report.js";

const quick = process.argv.includes("--quick");
const CHUNK = 64 * 1024;
const identity = newPeerIdentity();

interface Link {
  sender: TLSSocket;
  receiver: TLSSocket;
  receiverTcp: Socket;
  close(): void;
}

/**
 * The least a JavaScript stream under TLS can do: pass bytes through, with backpressure.
 * What it costs is what moving TLS off the socket's own handle costs, limits or not.
 */
function bare(tcp: Socket): Duplex {
  const d = new Duplex({
    read() {
      tcp.resume();
    },
    write(chunk, _encoding, done) {
      tcp.write(chunk, done);
    },
    final(done) {
      tcp.end(done);
    },
  });
  tcp.on("data", (b: Buffer) => {
    if (!d.push(b)) tcp.pause();
  });
  tcp.on("end", () => d.push(null));
  tcp.on("close", () => d.destroy());
  return d;
}

/** One TLS link on 127.0.0.1; `wrap` puts each end's TCP socket under a ThrottledStream (or `bare`). */
async function link(wrap?: { up: LimitTree; down: LimitTree } | "bare"): Promise<Link> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const senderTcp = tcpConnect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port });
  const [receiverTcp] = await accepted;
  const under = (tcp: Socket, role: LinkRole): Duplex =>
    wrap === undefined
      ? tcp
      : wrap === "bare"
        ? bare(tcp)
        : new ThrottledStream(tcp, { up: wrap.up.root.child(), down: wrap.down.root.child() }, role);
  const receiver = new TLSSocket(under(receiverTcp, "download"), {
    isServer: true,
    key: identity.key,
    cert: identity.cert,
    ...TLS_VERSION,
  });
  const sender = tlsConnect({ socket: under(senderTcp, "serve"), rejectUnauthorized: false, ...TLS_VERSION });
  await Promise.all([once(sender, "secureConnect"), once(receiver, "secure")]);
  return {
    sender,
    receiver,
    receiverTcp,
    close() {
      sender.destroy();
      receiver.destroy();
      server.close();
    },
  };
}

/** Sends `bytes` up the link under backpressure; resolves when the receiver has them all. */
async function move(l: Link, bytes: number): Promise<void> {
  let got = 0;
  const all = new Promise<void>((resolve) =>
    l.receiver.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolve();
    }),
  );
  const chunk = Buffer.alloc(CHUNK, 7);
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!l.sender.write(chunk)) await once(l.sender, "drain");
  }
  await all;
}

type Case = (bytes: number) => Promise<void>;

function unthrottled(over?: "bare"): Case {
  return async (bytes) => {
    const l = await link(over);
    await move(l, bytes);
    l.close();
  };
}

/** `links` throttled links sharing the sender's upload limit, each moving its share. */
function throttled(rate: Rate, links = 1): Case {
  return async (bytes) => {
    const trees = { up: new LimitTree(systemClock, rate), down: new LimitTree(systemClock) };
    const ls = await Promise.all(Array.from({ length: links }, () => link(trees)));
    await Promise.all(ls.map((l) => move(l, bytes / links)));
    for (const l of ls) l.close();
  };
}

async function cost(): Promise<void> {
  const bytes = (quick ? 32 : 256) * 2 ** 20;
  const runs = quick ? 1 : 3;
  const cases: [string, Case][] = [
    ["TLS over TCP (no ThrottledStream)", unthrottled()],
    ["TLS over a bare pass-through Duplex", unthrottled("bare")],
    ["TLS over ThrottledStream, no limit", throttled(undefined)],
    ["TLS over ThrottledStream, limit 100 MB/s", throttled(100e6)],
    ["8 links over ThrottledStream, sharing 100 MB/s", throttled(100e6, 8)],
  ];
  const results = new Map<string, { mbps: number; cpuPerGiB: number }[]>(cases.map(([n]) => [n, []]));
  for (let r = 0; r < runs; r++) {
    // alternating the cases spreads the box's changing load over all of them
    for (const [name, c] of cases) results.get(name)?.push(await measure(c, bytes));
  }
  console.log(`\n${bytes / 2 ** 20} MiB per case, median of ${runs}, both ends in one process:\n`);
  console.log("| case | MB/s | CPU s per GiB |\n| --- | ---: | ---: |");
  for (const [name, rs] of results) {
    console.log(
      `| ${name} | ${median(rs.map((x) => x.mbps)).toFixed(0)} | ${median(rs.map((x) => x.cpuPerGiB)).toFixed(2)} |`,
    );
  }
}

/** A link capped at `first`, changed to `second` halfway: bytes read off the receiver's socket each second. */
async function accuracy(first: number, second: number, seconds: number): Promise<void> {
  const trees = { up: new LimitTree(systemClock), down: new LimitTree(systemClock) };
  trees.up.root.setRate(first);
  const l = await link(trees);
  l.receiver.on("data", () => {});
  let stop = false;
  const chunk = Buffer.alloc(CHUNK, 7);
  const sending = (async () => {
    while (!stop) if (!l.sender.write(chunk)) await once(l.sender, "drain");
  })();
  // timers run late on a busy box, so each sample keeps its time
  const samples: { at: number; bytes: number }[] = [];
  const sample = () => samples.push({ at: performance.now(), bytes: l.receiverTcp.bytesRead });
  sample();
  const tick = setInterval(sample, 100);
  const half = (seconds * 1000) / 2;
  await new Promise((r) => setTimeout(r, half));
  sample();
  const changed = samples.length - 1;
  trees.up.root.setRate(second);
  await new Promise((r) => setTimeout(r, half));
  clearInterval(tick);
  sample();
  stop = true;
  l.close();
  sending.catch(() => {}); // its last wait for 'drain' never ends: the link is closed
  console.log(
    `\none link capped at ${formatRate(first)}, then ${formatRate(second)} from ${half / 1000} s on; at the receiver's socket:`,
  );
  /** bytes per second from sample i to the first sample at least `ms` later */
  const rateFrom = (i: number, ms: number, end: number): number | undefined => {
    const a = samples[i] as { at: number; bytes: number };
    for (let j = i + 1; j <= end; j++) {
      const b = samples[j] as { at: number; bytes: number };
      if (b.at - a.at >= ms) return ((b.bytes - a.bytes) * 1000) / (b.at - a.at);
    }
    return undefined;
  };
  const seconds1: string[] = [];
  for (let i = 0; i < samples.length; ) {
    const r = rateFrom(i, 1000, samples.length - 1);
    if (r === undefined) break;
    seconds1.push((r / 1e6).toFixed(2));
    const t = (samples[i] as { at: number }).at + 1000;
    while (i < samples.length && (samples[i] as { at: number }).at < t) i++;
  }
  console.log(`each second, MB/s: ${seconds1.join(" ")}`);
  for (const [label, from, to, rate] of [
    ["before the change", 0, changed, first],
    ["after it", changed, samples.length - 1, second],
  ] as const) {
    let worst = 0;
    let firstAtLimit: number | undefined;
    for (let i = from; i < to; i++) {
      const r = rateFrom(i, 1000, to);
      if (r === undefined) break;
      worst = Math.max(worst, r);
      if (firstAtLimit === undefined && r <= rate * 1.05) firstAtLimit = (samples[i] as { at: number }).at;
    }
    const a = samples[from] as { at: number; bytes: number };
    const b = samples[to] as { at: number; bytes: number };
    const mean = ((b.bytes - a.bytes) * 1000) / (b.at - a.at);
    console.log(
      `${label}: mean ${(mean / rate).toFixed(3)} of the limit over ${((b.at - a.at) / 1000).toFixed(1)} s, worst 1 s window ${(worst / rate).toFixed(3)}` +
        (label === "after it" && firstAtLimit !== undefined
          ? `; the first 1 s window within 5% of the new limit began ${(firstAtLimit - a.at).toFixed(0)} ms after the change`
          : ""),
    );
  }
}

await cost();
await accuracy(20e6, 5e6, quick ? 4 : 24);
