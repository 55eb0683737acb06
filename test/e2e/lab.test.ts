/**
 * The network lab itself: isolation, rate caps (lower bounds only, so a slow
 * machine cannot fail them), home routers (masquerade, no unsolicited inbound,
 * port forwards) and cleanup after close, SIGTERM and SIGKILL. Needs root.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { type Proc, ROOT } from "../helpers/procs.js";
import { type Host, Lab, mbit, notRoot, type Router } from "../lab/lab.js";
import { listNamespaces } from "../lab/names.js";
import { sh } from "../lab/sh.js";

const skip = notRoot();
const PROBE = join(ROOT, "dist/test/lab/probe.js");
/** A connection that a router drops gets no answer at all: this long without one counts as dropped. */
const SILENCE_MS = 1_500;

function probe(h: Host, label: string, ...args: (string | number)[]): Proc {
  return h.spawn(label, process.execPath, [PROBE, ...args.map(String)]);
}

async function probeOnce(h: Host, ...args: (string | number)[]): Promise<string> {
  return (await h.exec(process.execPath, [PROBE, ...args.map(String)], 30_000)).trim();
}

/** A non-loopback IPv4 address of this machine's own namespace, if it has one. */
function rootAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

describe("network lab", { skip }, () => {
  let lab: Lab;
  let a: Host; // uploads through an 8 Mbit/s cap
  let b: Host; // uncapped, serves
  let c: Host; // downloads through an 8 Mbit/s cap
  let home: Router;
  let l: Host; // behind home
  let rootServer: Server;
  let rootPort = 0;

  before(async () => {
    lab = await Lab.create();
    a = await lab.host("a", { up: mbit(8) });
    b = await lab.host("b");
    c = await lab.host("c", { down: mbit(8) });
    home = await lab.router("home", { randomFully: true });
    l = await lab.host("l", { behind: home });
    rootServer = createServer((s) => s.end("root namespace\n"));
    await new Promise<void>((r) => rootServer.listen(0, "127.0.0.1", r));
    rootPort = (rootServer.address() as { port: number }).port;
  });
  after(async () => {
    await lab?.close();
    rootServer?.close();
  });

  it("gives each host an address in 198.18.0.0/15 and reaches hosts on the switch", async () => {
    for (const h of [a, b, c, home]) assert.match(h.addr, /^198\.18\.\d+\.\d+$/);
    assert.match(l.addr, /^198\.19\.1\.\d+$/);
    const srv = probe(b, "b-listen", "listen", b.addr, 5001);
    await srv.expect("listening");
    assert.match(await probeOnce(c, "send", b.addr, 5001, 1000), /^sent 1000/);
  });

  it("reaches nothing outside the lab: not the root namespace's 127.0.0.1, not any outside address", async () => {
    // each namespace has its own loopback: the root's service is not there
    assert.equal(await probeOnce(a, "connect", "127.0.0.1", rootPort, 5_000), "error ECONNREFUSED");
    assert.equal(await probeOnce(l, "connect", "127.0.0.1", rootPort, 5_000), "error ECONNREFUSED");
    const outside = ["192.0.2.1", "8.8.8.8", rootAddress()].filter((x): x is string => x !== undefined);
    for (const dst of outside) {
      assert.equal(await probeOnce(a, "connect", dst, 80, 5_000), "error ENETUNREACH", `a -> ${dst}`);
      assert.equal(await probeOnce(home, "connect", dst, 80, 5_000), "error ENETUNREACH", `home -> ${dst}`);
      // the router answers for its LAN: no route beyond it either
      assert.equal(await probeOnce(l, "connect", dst, 80, 5_000), "error ENETUNREACH", `l -> ${dst}`);
    }
    // the switch's namespace holds the bridge and its ports only: no link to this machine's network
    const links = await sh("ip", ["-n", lab.switch.ns, "-o", "link"]);
    const names = links
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(": ")[1]!.split("@")[0]!);
    for (const n of names) assert.match(n, /^(lo|br0|v\d+)$/);
  });

  it("caps a host's upload and download (lower bounds: a slow machine cannot fail them)", async () => {
    const bytes = 2 * 2 ** 20;
    const ideal = (bytes * 8) / mbit(8);
    const up = probe(b, "b-up", "listen", b.addr, 5002);
    const down = probe(b, "b-down", "sink", b.addr, 5003);
    await Promise.all([up.expect("listening"), down.expect("listening")]);
    const [sent, fetched] = await Promise.all([
      probeOnce(a, "send", b.addr, 5002, bytes),
      probeOnce(c, "fetch", b.addr, 5003, bytes),
    ]);
    const upSecs = Number(/^sent \d+ in ([\d.]+)$/.exec(sent)?.[1]);
    const downSecs = Number(/^fetched \d+ in ([\d.]+)$/.exec(fetched)?.[1]);
    // 4 ms of burst at most gets through ahead of the rate
    assert.ok(upSecs >= 0.95 * ideal, `upload of 2 MiB at 8 Mbit/s took ${upSecs} s, under ${ideal} s`);
    assert.ok(downSecs >= 0.95 * ideal, `download of 2 MiB at 8 Mbit/s took ${downSecs} s, under ${ideal} s`);
    // the counters at the far end saw it: a's upload, c's download
    assert.ok((await a.counters()).up >= bytes);
    assert.ok((await c.counters()).down >= bytes);
  });

  it("masquerades a LAN host's connections behind its router's address", async () => {
    const srv = probe(b, "b-nat", "listen", b.addr, 5004);
    await srv.expect("listening");
    assert.match(await probeOnce(l, "send", b.addr, 5004, 1000), /^sent 1000/);
    const got = await srv.expect(/^got /);
    assert.equal(got, `got 1000 from ${home.addr}`);
  });

  it("drops unsolicited inbound connections, to the router and through it; a port forward lets them in", async () => {
    const srv = probe(l, "l-listen", "listen", "0.0.0.0", 5005);
    await srv.expect("listening");
    const before = await home.inboundDrops();
    // to the router's public address: nothing there answers, not even with a reset
    assert.equal(await probeOnce(b, "connect", home.addr, 5005, SILENCE_MS), `no answer in ${SILENCE_MS} ms`);
    // straight at the LAN address, as a neighbour on the ISP's segment could route it
    await b.exec("ip", ["route", "add", home.lanCidr, "via", home.addr]);
    assert.equal(await probeOnce(b, "connect", l.addr, 5005, SILENCE_MS), `no answer in ${SILENCE_MS} ms`);
    assert.ok((await home.inboundDrops()) >= before + 2, "the router's drop rules counted them");
    // the LAN host itself can still reach out (replies are let back in)
    const out = probe(b, "b-out", "listen", b.addr, 5006);
    await out.expect("listening");
    assert.equal(await probeOnce(l, "connect", b.addr, 5006, 5_000), "connected");
    await home.forward(6000, l, 5005);
    assert.equal(await probeOnce(b, "connect", home.addr, 6000, 5_000), "connected");
  });
});

describe("network lab cleanup", { skip }, () => {
  const labModule = pathToFileURL(join(ROOT, "dist/test/lab/lab.js")).href;

  /** A child process that builds a lab with a router and a host behind it, prints its prefix, and waits. */
  function builder(): { child: ReturnType<typeof spawn>; prefix: Promise<string> } {
    const code = `import { Lab } from ${JSON.stringify(labModule)};
const lab = await Lab.create();
const r = await lab.router("r");
await lab.host("h", { behind: r });
(await lab.host("x")).spawn("sleeper", "sleep", ["600"]);
process.stdout.write(lab.prefix + "\\n");
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const prefix = new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("exit", (code) => reject(new Error(`the lab builder exited with ${code}`)));
    });
    return { child, prefix };
  }

  const ours = async (prefix: string) => (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));

  it("close() removes every namespace of the lab", async () => {
    const lab = await Lab.create();
    const r = await lab.router("r");
    await lab.host("h", { behind: r });
    assert.equal((await ours(lab.prefix)).length, 3);
    await lab.close();
    assert.deepEqual(await ours(lab.prefix), []);
  });

  it("a SIGTERM'd run removes its namespaces on its way out", async () => {
    const { child, prefix } = builder();
    const p = await prefix;
    assert.ok((await ours(p)).length >= 3);
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGTERM");
    await exited;
    assert.deepEqual(await ours(p), []);
  });

  it("a SIGKILL'd run's namespaces (and the processes left in them) are swept by the next lab", async () => {
    const { child, prefix } = builder();
    const p = await prefix;
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;
    assert.equal((await ours(p)).length, 4, "a killed run cannot clean up");
    const next = await Lab.create();
    try {
      assert.deepEqual(await ours(p), []);
    } finally {
      await next.close();
    }
  });
});
