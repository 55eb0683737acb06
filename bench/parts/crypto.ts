/**
 * The encryption mechanism, measured: bytes moved over loopback in one process
 * (both ends on this core, so every byte is encrypted and decrypted here), plain
 * TCP against TLS 1.3 with AES-128-GCM, with ChaCha20-Poly1305, and a Noise XX
 * handshake with a ChaCha20-Poly1305 transport on node:crypto (bench/noise.ts).
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { connect as tlsConnect, createServer as tlsServer } from "node:tls";
import { selfSignedCertificate } from "../../src/shared/x509.js";
import type { Context } from "../context.js";
import { type CipherState, Frames, frame, handshake, NOISE_MAX_PLAINTEXT } from "../noise.js";
import { mdTable, median, type Part } from "../report.js";

/** What a sender writes at a time (a piece message is 512 KiB; the socket splits it anyway). */
const CHUNK = 64 * 1024;

type Transport = (total: number) => Promise<void>;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    }),
  );
}

/** Writes `total` bytes of `chunk`s under backpressure, through `write`. */
async function pump(socket: Socket, total: number, write: (b: Buffer) => boolean): Promise<void> {
  const chunk = Buffer.alloc(CHUNK, 7);
  for (let sent = 0; sent < total; sent += CHUNK) {
    if (!write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
}

/** Resolves when `total` bytes have been counted. */
function counter(total: number): { add: (n: number) => void; done: Promise<void> } {
  let got = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    add: (n) => {
      got += n;
      if (got >= total) resolve();
    },
    done,
  };
}

const plain: Transport = async (total) => {
  const c = counter(total);
  const server = createServer((s) => s.on("data", (d: Buffer) => c.add(d.length)));
  const port = await listen(server);
  const s = netConnect({ host: "127.0.0.1", port });
  await new Promise((r) => s.once("connect", r));
  await pump(s, total, (b) => s.write(b));
  await c.done;
  s.destroy();
  server.close();
};

function tls(suite: string): Transport {
  return async (total) => {
    const key = generateKeyPairSync("ed25519").privateKey;
    const id = {
      key: key.export({ type: "pkcs8", format: "pem" }),
      cert: selfSignedCertificate(key, "bench"),
    };
    const opts = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3", ciphers: suite } as const;
    const c = counter(total);
    const server = tlsServer({ ...id, ...opts, requestCert: true, rejectUnauthorized: false }, (s) =>
      s.on("data", (d: Buffer) => c.add(d.length)),
    );
    const port = await listen(server);
    const s = tlsConnect({ host: "127.0.0.1", port, ...id, ...opts, rejectUnauthorized: false });
    await new Promise((r) => s.once("secureConnect", r));
    if (s.getCipher().standardName !== suite) throw new Error(`negotiated ${s.getCipher().standardName}`);
    await pump(s, total, (b) => s.write(b));
    await c.done;
    s.destroy();
    server.close();
  };
}

const noise: Transport = async (total) => {
  const c = counter(total);
  let serverSide: Promise<void> | undefined;
  const server = createServer((s) => {
    const frames = new Frames(s);
    serverSide = handshake(s, frames, false).then(({ receive }) =>
      frames.listen((f) => c.add(receive.decrypt(Buffer.alloc(0), f).length)),
    );
  });
  const port = await listen(server);
  const s = netConnect({ host: "127.0.0.1", port });
  await new Promise((r) => s.once("connect", r));
  const { send }: { send: CipherState } = await handshake(s, new Frames(s), true);
  const empty = Buffer.alloc(0);
  const write = (b: Buffer) => {
    let ok = true;
    for (let at = 0; at < b.length; at += NOISE_MAX_PLAINTEXT) {
      ok = s.write(frame(send.encrypt(empty, b.subarray(at, at + NOISE_MAX_PLAINTEXT))));
    }
    return ok;
  };
  await pump(s, total, write);
  await serverSide;
  await c.done;
  s.destroy();
  server.close();
};

/** One transport's run: MB/s and this process's CPU seconds per GiB moved. */
export async function measure(t: Transport, total: number): Promise<{ mbps: number; cpuPerGiB: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await t(total);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { mbps: total / 1e6 / seconds, cpuPerGiB: ((cpu.user + cpu.system) / 1e6) * (2 ** 30 / total) };
}

export async function cryptoPart(ctx: Context, mibs: number): Promise<Part> {
  const total = mibs * 2 ** 20;
  const cases: [string, Transport][] = [
    ["plain TCP (no encryption)", plain],
    ["TLS 1.3, TLS_AES_128_GCM_SHA256", tls("TLS_AES_128_GCM_SHA256")],
    ["TLS 1.3, TLS_CHACHA20_POLY1305_SHA256", tls("TLS_CHACHA20_POLY1305_SHA256")],
    ["Noise XX 25519, ChaCha20-Poly1305 (node:crypto)", noise],
  ];
  const results = new Map<string, { mbps: number; cpuPerGiB: number }[]>(cases.map(([n]) => [n, []]));
  for (let r = 1; r <= ctx.opts.runs; r++) {
    // alternating the cases spreads the box's changing load over all of them
    for (const [name, t] of cases) results.get(name)!.push(await measure(t, total));
    ctx.say(
      `crypto run ${r}: ${[...results].map(([n, rs]) => `${n.split(",")[0]} ${rs.at(-1)!.mbps.toFixed(0)} MB/s`).join("; ")}`,
    );
  }
  const rows = [...results].map(([name, rs]) => [
    name,
    rs.map((x) => x.mbps.toFixed(0)).join(", "),
    median(rs.map((x) => x.mbps)).toFixed(0),
    median(rs.map((x) => x.cpuPerGiB)).toFixed(2),
  ]);
  return {
    key: "crypto",
    text: [
      `### Encryption: ${mibs} MiB over loopback, one process`,
      "",
      mdTable(["transport", "runs (MB/s)", "median (MB/s)>", "CPU s per GiB>"], rows),
      "",
      `Both ends in one Node process (one core does every encryption and decryption), ${CHUNK / 1024} KiB writes under ` +
        `backpressure, median of ${ctx.opts.runs}. TLS: node:tls with Ed25519 certificates, the client presenting one as ` +
        "groupshare's downloaders do. Noise: bench/noise.ts, the XX handshake on X25519 and SHA-256, then frames of at " +
        `most ${NOISE_MAX_PLAINTEXT} bytes of plaintext, each a ChaCha20-Poly1305 cipher object of node:crypto.`,
    ].join("\n"),
  };
}
