/**
 * The relay's CPU in isolation: a tracker-like HTTPS server (TLS 1.3 as the tracker
 * speaks it, upgrade requests joined by the real Relay) and two legs, each a process
 * of its own that speaks real TLS end to end over its leg, as members do. One leg
 * sends MIB MiB, the other counts them; the server's user and system CPU during the
 * transfer is reported per GiB. The same run measures a plain pipe (the two upgraded
 * TLS sockets joined by socket.pipe) as the floor.
 *
 *   node dist/bench/relayCpu.js [--mib 256] [--rate MBIT] [--lab MBIT] [--modes pipe,relay] [--runs 1] [--trace] [--unlimited]
 *
 * --rate paces the sender in the application (loopback); --lab (root) puts the server
 * on an uncapped lab host and each leg on a host with MBIT up and down (tbf), so the
 * server sees packets arrive as on the links the nat part measures. --trace makes the
 * server count 'data' events, their sizes and writes (it costs a little CPU of its own).
 * --unlimited lifts the relay's rate limits (the defaults hold a circuit to 40 Mbit/s).
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { Proc } from "../test/helpers/procs.js";
import { type Host, Lab, mbit, notRoot } from "../test/lab/lab.js";
import { RELAY_PROTOCOL } from "../src/shared/api.js";
import { TLS_VERSION } from "../src/shared/tlsPolicy.js";
import { selfSignedCertificate } from "../src/shared/x509.js";
import { Relay } from "../src/tracker/relay.js";
import { cpuSplit } from "./tools.js";

const SELF = fileURLToPath(import.meta.url);
const OLD = new URL("../src/tracker/relayOld.js", import.meta.url).href;
/** The inner TLS writes records of at most 16 KiB; the sender writes that much at a time (RELAY_WRITE=N: N). */
const WRITE = Number(process.env.RELAY_WRITE ?? 16 * 1024);

function identity() {
  const key = generateKeyPairSync("ed25519").privateKey;
  return {
    cert: selfSignedCertificate(key, "relay bench"),
    key: key.export({ type: "pkcs8", format: "pem" }) as string,
    ...TLS_VERSION,
  };
}

// ---------------------------------------------------------------- the server

async function serve(mode: string, host: string, trace: boolean, unlimited: boolean): Promise<void> {
  const rates = unlimited ? { userRate: 1e12, totalRate: 1e12 } : {};
  // mode "old": a copy of an earlier relay.ts at src/tracker/relayOld.ts, for a before/after in one run
  const Impl: typeof Relay = mode === "old" ? (await import(OLD)).Relay : Relay;
  const relay = new Impl({ idleMs: 120_000, pairMs: 60_000, ...rates });
  const waiting = new Map<string, Duplex>();
  const sizes = new Map<number, number>();
  let events = 0;
  let writes = 0;
  let bytes = 0;
  const watch = (socket: Duplex) => {
    if (!trace) return;
    socket.on("data", (b: Buffer) => {
      events++;
      bytes += b.length;
      const bin = 2 ** Math.ceil(Math.log2(Math.max(1, b.length)));
      sizes.set(bin, (sizes.get(bin) ?? 0) + 1);
    });
    const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
    (socket as { write: unknown }).write = (...a: unknown[]) => {
      writes++;
      return write(...a);
    };
  };
  const server = createServer(identity());
  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    const [, , id, user] = (req.url ?? "").split("/");
    if (!id || !user) return socket.destroy();
    watch(socket);
    if (mode === "relay" || mode === "old") return relay.join(id, user, socket, head);
    const other = waiting.get(id);
    if (!other) {
      waiting.set(id, socket);
      if (head.length > 0) socket.unshift(head);
      return;
    }
    waiting.delete(id);
    if (head.length > 0) socket.unshift(head);
    const answer = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_PROTOCOL}\r\n\r\n`;
    other.write(answer);
    socket.write(answer);
    if (mode === "cork") {
      // a plain pipe whose writes of one tick go out as one
      const join = (from: Duplex, to: Duplex) => {
        let corked = false;
        const uncork = () => {
          corked = false;
          to.uncork();
        };
        from.on("data", (b: Buffer) => {
          if (!corked) {
            corked = true;
            to.cork();
            process.nextTick(uncork);
          }
          if (!to.write(b)) {
            from.pause();
            to.once("drain", () => from.resume());
          }
        });
      };
      join(other, socket);
      join(socket, other);
      return;
    }
    other.pipe(socket).on("error", () => {});
    socket.pipe(other).on("error", () => {});
  });
  server.listen(0, host, () => {
    console.log(`listening ${(server.address() as AddressInfo).port}`);
  });
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (s: string) => {
    for (const line of s.split("\n").filter(Boolean)) {
      if (line === "open") {
        console.log(
          `circuit ${mode === "relay" || mode === "old" ? relay.open("dl", "sh") : randomBytes(16).toString("hex")}`,
        );
      } else if (line === "stats") {
        const hist = [...sizes].sort((a, b) => a[0] - b[0]).map(([k, v]) => `<=${k}:${v}`);
        console.log(`stats events ${events} writes ${writes} bytes ${bytes} sizes ${hist.join(" ")}`);
        events = writes = bytes = 0;
        sizes.clear();
      } else if (line === "quit") {
        relay.close();
        process.exit(0);
      }
    }
  });
}

// ---------------------------------------------------------------- a leg

/** Opens a leg as a member does (an upgrade over TLS), then speaks TLS end to end over it. */
function leg(
  role: "send" | "recv",
  host: string,
  port: number,
  id: string,
  mib: number,
  rateMbit: number,
): void {
  const outer = tlsConnect({ host, port, rejectUnauthorized: false, ...TLS_VERSION });
  const user = role === "send" ? "sh" : "dl";
  outer.on("secureConnect", () => {
    outer.write(
      `GET /relay/${id}/${user} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_PROTOCOL}\r\n\r\n`,
    );
  });
  let got = Buffer.alloc(0);
  const onHead = (b: Buffer) => {
    got = Buffer.concat([got, b]);
    const end = got.indexOf("\r\n\r\n");
    if (end < 0) return;
    outer.off("data", onHead);
    if (!got.subarray(0, end).toString().startsWith("HTTP/1.1 101")) throw new Error(`refused: ${got}`);
    outer.pause();
    if (got.length > end + 4) outer.unshift(got.subarray(end + 4));
    inner(outer);
  };
  outer.on("data", onHead);
  const inner = (socket: TLSSocket) => {
    const total = mib * 2 ** 20;
    if (role === "recv") {
      const t = new TLSSocket(socket, { isServer: true, ...identity() });
      let n = 0;
      let t0 = 0;
      t.on("secure", () => console.log("joined"));
      t.on("data", (b: Buffer) => {
        if (n === 0) t0 = performance.now();
        n += b.length;
        if (n >= total) {
          console.log(`done ${((performance.now() - t0) / 1000).toFixed(3)}`);
          t.destroy();
        }
      });
      socket.resume();
      return;
    }
    const t = tlsConnect({ socket, rejectUnauthorized: false, ...TLS_VERSION });
    t.on("secureConnect", () => {
      // RELAY_FRAGMENT=N: the inner TLS's records carry at most N bytes
      if (process.env.RELAY_FRAGMENT) t.setMaxSendFragment(Number(process.env.RELAY_FRAGMENT));
      console.log("joined");
    });
    socket.resume();
    const chunk = randomBytes(WRITE);
    let sent = 0;
    let t0 = 0;
    const pump = () => {
      while (sent < total) {
        if (rateMbit > 0) {
          const due = t0 + (sent * 8) / (rateMbit * 1000); // ms
          const now = performance.now();
          if (due > now) return void setTimeout(pump, Math.max(1, due - now));
        }
        sent += WRITE;
        if (!t.write(chunk)) return void t.once("drain", pump);
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (s: string) => {
      if (s.includes("go")) {
        t0 = performance.now();
        pump();
      }
    });
  };
  outer.on("error", (e) => {
    console.error(`leg ${role}: ${e.message}`);
    process.exit(1);
  });
}

// ---------------------------------------------------------------- the run

interface Row {
  mode: string;
  seconds: number;
  user: number;
  system: number;
  stats: string;
}

async function runOnce(
  mode: string,
  o: { mib: number; rate: number; trace: boolean; unlimited: boolean },
  place: { server: (args: string[]) => Proc; leg: (role: string, args: string[]) => Proc; addr: string },
): Promise<Row> {
  const server = place.server([
    "serve",
    mode,
    place.addr,
    o.trace ? "trace" : "-",
    o.unlimited ? "unlimited" : "-",
  ]);
  try {
    const port = Number((await server.expect(/^listening /)).split(" ")[1]);
    server.send("open");
    const id = (await server.expect(/^circuit /)).split(" ")[1]!;
    const common = [place.addr, String(port), id, String(o.mib), String(o.rate)];
    const recv = place.leg("recv", ["leg", "recv", ...common]);
    const send = place.leg("send", ["leg", "send", ...common]);
    try {
      await Promise.all([recv.expect("joined"), send.expect("joined")]);
      if (o.trace) {
        server.send("stats");
        await server.expect(/^stats /);
      }
      const pid = server.child.pid!;
      const a = await cpuSplit(pid);
      // RELAY_PERF=DIR: perf record -g of the server during the transfer, into DIR/MODE.data;
      // RELAY_STRACE=DIR: strace -c of it instead, into DIR/MODE.strace
      const perf = process.env.RELAY_PERF
        ? spawn("perf", ["record", "-g", "-o", `${process.env.RELAY_PERF}/${mode}.data`, "-p", String(pid)], {
            stdio: "ignore",
          })
        : process.env.RELAY_STRACE
          ? spawn(
              "strace",
              ["-c", "-f", "-o", `${process.env.RELAY_STRACE}/${mode}.strace`, "-p", String(pid)],
              {
                stdio: "ignore",
              },
            )
          : undefined;
      if (perf) await new Promise((r) => setTimeout(r, 500));
      send.send("go");
      const done = await recv.expect(/^done /, 600_000);
      const b = await cpuSplit(pid);
      if (perf) {
        perf.kill("SIGINT");
        await new Promise((r) => perf.on("exit", r));
      }
      let stats = "";
      if (o.trace) {
        server.send("stats");
        stats = (await server.expect(/^stats /)).slice(6);
      }
      return {
        mode,
        seconds: Number(done.split(" ")[1]),
        user: b.user - a.user,
        system: b.system - a.system,
        stats,
      };
    } finally {
      await Promise.all([recv.kill(), send.kill()]);
    }
  } finally {
    server.send("quit");
    await server.waitExit(5_000).catch(() => server.kill());
  }
}

async function main(argv: string[]): Promise<void> {
  const o = { mib: 256, rate: 0, lab: 0, modes: ["pipe", "relay"], runs: 1, trace: false, unlimited: false };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === "--mib") o.mib = Number(argv[++i]);
    else if (f === "--rate") o.rate = Number(argv[++i]);
    else if (f === "--lab") o.lab = Number(argv[++i]);
    else if (f === "--modes") o.modes = (argv[++i] ?? "").split(",");
    else if (f === "--runs") o.runs = Number(argv[++i]);
    else if (f === "--trace") o.trace = true;
    else if (f === "--unlimited") o.unlimited = true;
    else throw new Error(`unknown flag ${f}`);
  }
  const node = process.execPath;
  let lab: Lab | undefined;
  let place: Parameters<typeof runOnce>[2];
  if (o.lab > 0) {
    const why = notRoot();
    if (why) throw new Error(`--lab: ${why}`);
    lab = await Lab.create();
    const caps = { up: mbit(o.lab), down: mbit(o.lab) };
    const t = await lab.host("relay");
    const hosts: Record<string, Host> = {
      send: await lab.host("sender", caps),
      recv: await lab.host("receiver", caps),
    };
    place = {
      addr: t.addr,
      server: (args) => t.spawn("server", node, [SELF, ...args]),
      leg: (role, args) => hosts[role]!.spawn(role, node, [SELF, ...args]),
    };
  } else {
    place = {
      addr: "127.0.0.1",
      server: (args) => new Proc("server", node, [SELF, ...args]),
      leg: (role, args) => new Proc(role, node, [SELF, ...args]),
    };
  }
  try {
    const how =
      o.lab > 0 ? `lab links ${o.lab} Mbit/s` : o.rate > 0 ? `loopback paced ${o.rate} Mbit/s` : "loopback";
    console.log(
      `${o.mib} MiB one way, ${how}; load ${(await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ")}`,
    );
    for (let r = 0; r < o.runs; r++) {
      for (const mode of o.modes) {
        const row = await runOnce(mode, o, place);
        const perGiB = 1024 / o.mib;
        console.log(
          `${mode.padEnd(6)} ${row.seconds.toFixed(2)} s (${((o.mib * 8 * 1.048576) / row.seconds).toFixed(0)} Mbit/s)  ` +
            `server CPU per GiB: user ${(row.user * perGiB).toFixed(2)} s, system ${(row.system * perGiB).toFixed(2)} s, ` +
            `total ${((row.user + row.system) * perGiB).toFixed(2)} s${row.stats ? `\n       ${row.stats}` : ""}`,
        );
      }
    }
    console.log(`load ${(await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ")}`);
  } finally {
    await lab?.close();
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === "serve") void serve(rest[0]!, rest[1]!, rest[2] === "trace", rest[3] === "unlimited");
else if (role === "leg") {
  const [r, host, port, id, mib, rate] = rest;
  leg(r as "send" | "recv", host!, Number(port), id!, Number(mib), Number(rate));
} else {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    },
  );
}
