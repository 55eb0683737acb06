/**
 * A network lab of Linux network namespaces, for tests and the bench.
 *
 * A switch (a bridge in a namespace of its own) joins the public hosts and the
 * routers' WAN sides on 198.18.0.0/16; each router masquerades a LAN of its own,
 * 198.19.<n>.0/24, and drops every inbound connection its LAN did not open.
 * Nothing in the lab has a route to this machine's own network: the switch's
 * namespace holds only the bridge and its ports, and no host has a default
 * route out of the lab (a host behind a router routes to its router, which has
 * none), so nothing can leave. Every namespace's name starts with a per-run
 * prefix (names.ts); close() removes them all, and so do exit and the common
 * signals; a lab killed outright is swept by the next one.
 *
 *   const lab = await Lab.create();
 *   const seed = await lab.host("seed", { up: mbit(80) });
 *   const home = await lab.router("home", { up: mbit(10), down: mbit(50) });
 *   const alice = await lab.host("alice", { behind: home });
 *   const p = seed.spawn("server", "node", ["server.js", seed.addr]);
 *   await alice.exec("node", ["probe.js", "connect", seed.addr, "80"]);
 *   await lab.close();
 */
import { readFile } from "node:fs/promises";
import { Proc } from "../helpers/procs.js";
import { destroyNamespaceSync, newPrefix, sweepStale } from "./names.js";
import { type Caps, shape } from "./shaper.js";
import { checkTools, sh } from "./sh.js";

export { type Caps, mbit } from "./shaper.js";
export { notRoot } from "./sh.js";

const NODE_NAME = /^[a-z0-9]{1,16}$/;
const PUBLIC_NET = "198.18";
const LAN_NET = "198.19";

export interface HostOptions extends Caps {
  /** A host on this router's LAN (its address is private; the router masquerades it). */
  behind?: Router;
}

export interface RouterOptions extends Caps {
  /** MASQUERADE --random-fully: a fresh random source port per connection (no port preservation). */
  randomFully?: boolean;
}

/** Bytes through a node's link, from the node's side. */
export interface Counters {
  up: number;
  down: number;
}

/** A bridge in some namespace that nodes attach to: the switch, or a router's LAN. */
class Segment {
  #nextPort = 0;
  #nextHost: number;
  /** a process that lives in this namespace, so that its /proc/<pid>/net shows the namespace's devices */
  #keeper: Promise<Proc> | undefined;

  constructor(
    readonly ns: string,
    readonly bridge: string,
    /** address of the `i`th node on this segment, and its prefix length */
    readonly address: (i: number) => string,
    readonly prefixLength: number,
    firstHost: number,
    readonly lab: Lab,
  ) {
    this.#nextHost = firstHost;
  }

  nextPortName(): string {
    return `v${++this.#nextPort}`;
  }

  nextAddress(): string {
    return this.address(this.#nextHost++);
  }

  /** /proc/<pid>/net/dev of a process in this namespace: every port's counters at once. */
  async devCounters(): Promise<Map<string, { rx: number; tx: number }>> {
    this.#keeper ??= (async () => {
      const p = this.lab.spawnIn(this.ns, `keeper-${this.ns}`, "sh", ["-c", "echo in; exec sleep infinity"]);
      // until it prints, it may not have entered the namespace yet
      await p.expect("in");
      return p;
    })();
    const text = await readFile(`/proc/${(await this.#keeper).child.pid}/net/dev`, "utf8");
    const out = new Map<string, { rx: number; tx: number }>();
    for (const line of text.split("\n").slice(2)) {
      const [name, rest] = line.split(":");
      if (!name || rest === undefined) continue;
      const f = rest.trim().split(/\s+/).map(Number);
      out.set(name.trim(), { rx: f[0]!, tx: f[8]! });
    }
    return out;
  }
}

/** A namespace with one link to a segment: a host, or a router's WAN side. */
export class Host {
  constructor(
    readonly lab: Lab,
    readonly name: string,
    /** this node's namespace */
    readonly ns: string,
    /** its address on its segment (private for a host behind a router) */
    readonly addr: string,
    /** its link's device in its own namespace */
    readonly dev: string,
    /** where its link ends: the switch, or its router's LAN */
    readonly upstream: Segment,
    /** its link's device in the upstream namespace */
    readonly port: string,
    readonly behind: Router | undefined,
  ) {}

  /** The address others see its connections come from: its router's for a host behind one. */
  get publicAddr(): string {
    return this.behind ? this.behind.addr : this.addr;
  }

  /** Starts a process in this node's namespace (`ip netns exec`); the lab kills it at close(). */
  spawn(
    label: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ): Proc {
    return this.lab.spawnIn(this.ns, label, cmd, args, opts);
  }

  /** Runs a command in this node's namespace to its end; rejects on a non-zero exit. */
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
    return sh("ip", ["netns", "exec", this.ns, cmd, ...args], timeoutMs);
  }

  /** Sets (or with undefined, lifts) this node's caps. */
  async setCaps(caps: Caps): Promise<void> {
    await shape(this.ns, this.dev, caps.up, caps.queueMs);
    await shape(this.upstream.ns, this.port, caps.down, caps.queueMs);
  }

  /** Bytes sent and received over this node's link so far (read at its far end). */
  async counters(): Promise<Counters> {
    const c = (await this.upstream.devCounters()).get(this.port);
    if (!c) throw new Error(`no counters for ${this.name}'s port ${this.port}`);
    return { up: c.rx, down: c.tx };
  }
}

/** A home router: a WAN link on the switch, a LAN bridge, masquerade, no unsolicited inbound. */
export class Router extends Host {
  lan!: Segment;
  /** its address on its LAN (the LAN's default route) */
  lanAddr = "";
  /** its LAN, as CIDR */
  lanCidr = "";

  /**
   * Forwards inbound `proto` connections to this router's public `port` to
   * `host:hostPort` on its LAN (a port mapping, as UPnP or a user would set up).
   */
  async forward(port: number, host: Host, hostPort = port, proto: "tcp" | "udp" = "tcp"): Promise<void> {
    if (host.behind !== this) throw new Error(`${host.name} is not behind ${this.name}`);
    const ipt = (args: string[]) => this.exec("iptables", args);
    await ipt(
      ["-t", "nat", "-A", "PREROUTING", "-i", this.dev, "-p", proto, "--dport", String(port)].concat([
        "-j",
        "DNAT",
        "--to-destination",
        `${host.addr}:${hostPort}`,
      ]),
    );
    await ipt(
      [
        "-I",
        "FORWARD",
        "1",
        "-i",
        this.dev,
        "-p",
        proto,
        "-d",
        host.addr,
        "--dport",
        String(hostPort),
      ].concat(["-j", "ACCEPT"]),
    );
  }

  /** Packets dropped so far as unsolicited inbound (to the router itself or through it). */
  async inboundDrops(): Promise<number> {
    let n = 0;
    for (const chain of ["INPUT", "FORWARD"]) {
      const out = await this.exec("iptables", ["-L", chain, "-v", "-x", "-n"]);
      for (const line of out.split("\n")) {
        const f = line.trim().split(/\s+/);
        // pkts bytes target prot opt in out source destination
        if (f[2] === "DROP" && f[5] === this.dev) n += Number(f[0]);
      }
    }
    return n;
  }
}

const open = new Set<Lab>();
let handlersInstalled = false;

/** Exit and the common signals tear down every open lab, synchronously. */
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const l of open) l.destroySync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = () => {
      for (const l of open) l.destroySync();
      // nobody else handles it: die of it as if we had not listened
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

export class Lab {
  readonly #namespaces: string[] = [];
  readonly #procs: Proc[] = [];
  readonly #names = new Set<string>();
  #routers = 0;
  #closed = false;
  switch!: Segment;

  private constructor(readonly prefix: string) {}

  /**
   * A new, empty lab: a switch and no hosts. Sweeps the namespaces of dead labs
   * first. Needs root and iproute2 and iptables (see notRoot() for a test's skip).
   */
  static async create(): Promise<Lab> {
    await checkTools();
    await sweepStale();
    const lab = new Lab(newPrefix());
    installHandlers();
    open.add(lab);
    try {
      const ns = await lab.#namespace("sw");
      await sh("ip", ["-n", ns, "link", "add", "br0", "type", "bridge"]);
      await sh("ip", ["-n", ns, "link", "set", "br0", "up"]);
      // 198.18.0.1 onwards, skipping .0 and .255 of each /24 to avoid look-alikes of network addresses
      const addr = (i: number) => {
        const k = i + Math.floor(i / 254) * 2 + 1;
        return `${PUBLIC_NET}.${k >> 8}.${k & 255}`;
      };
      lab.switch = new Segment(ns, "br0", addr, 16, 0, lab);
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  /** A host: on the switch (public), or with `behind` on a router's LAN. */
  async host(name: string, opts: HostOptions = {}): Promise<Host> {
    const seg = opts.behind ? opts.behind.lan : this.switch;
    const ns = await this.#namespace(name);
    const addr = seg.nextAddress();
    const port = await this.#link(ns, "eth0", seg, addr);
    if (opts.behind) await sh("ip", ["-n", ns, "route", "add", "default", "via", opts.behind.lanAddr]);
    const h = new Host(this, name, ns, addr, "eth0", seg, port, opts.behind);
    await h.setCaps(opts);
    return h;
  }

  /**
   * A home router on the switch with a LAN of its own. Its caps are the home's
   * uplink and downlink, shared by every host behind it.
   */
  async router(name: string, opts: RouterOptions = {}): Promise<Router> {
    const no = ++this.#routers;
    if (no > 254) throw new Error("at most 254 routers");
    const ns = await this.#namespace(name);
    const addr = this.switch.nextAddress();
    const port = await this.#link(ns, "wan0", this.switch, addr);
    const r = new Router(this, name, ns, addr, "wan0", this.switch, port, undefined);
    r.lanAddr = `${LAN_NET}.${no}.1`;
    r.lanCidr = `${LAN_NET}.${no}.0/24`;
    await sh("ip", ["-n", ns, "link", "add", "lan0", "type", "bridge"]);
    await sh("ip", ["-n", ns, "addr", "add", `${r.lanAddr}/24`, "dev", "lan0"]);
    await sh("ip", ["-n", ns, "link", "set", "lan0", "up"]);
    r.lan = new Segment(ns, "lan0", (i) => `${LAN_NET}.${no}.${i}`, 24, 2, this);
    // a router; and its "no route" answers unthrottled, so that a LAN host's attempt to leave
    // the lab fails at once every time instead of waiting out its SYN retries
    await r.exec("sh", [
      "-c",
      "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/icmp_ratelimit",
    ]);
    const ipt = (args: string[]) => r.exec("iptables", args);
    const masq = ["-t", "nat", "-A", "POSTROUTING", "-s", r.lanCidr, "-o", "wan0", "-j", "MASQUERADE"];
    await ipt(opts.randomFully ? [...masq, "--random-fully"] : masq);
    // replies to what the LAN (or the router) opened pass; anything else from outside is dropped
    for (const chain of ["FORWARD", "INPUT"]) {
      await ipt([
        "-A",
        chain,
        "-i",
        "wan0",
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
      ]);
      await ipt(["-A", chain, "-i", "wan0", "-j", "DROP"]);
    }
    await r.setCaps(opts);
    return r;
  }

  /** Starts a process in namespace `ns`; killed at close(). */
  spawnIn(
    ns: string,
    label: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ): Proc {
    if (this.#closed) throw new Error("the lab is closed");
    const p = new Proc(label, "ip", ["netns", "exec", ns, cmd, ...args], opts);
    this.#procs.push(p);
    return p;
  }

  /** Every namespace of this lab. */
  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  async #namespace(name: string): Promise<string> {
    if (!NODE_NAME.test(name)) throw new Error(`node name '${name}': 1-16 of a-z, 0-9`);
    if (this.#names.has(name)) throw new Error(`node '${name}' exists already`);
    this.#names.add(name);
    const ns = `${this.prefix}-${name}`;
    await sh("ip", ["netns", "add", ns]);
    this.#namespaces.push(ns);
    await sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    return ns;
  }

  /** A veth pair from `dev` in `ns` to a new port of `seg`, addressed and up. Returns the port's name. */
  async #link(ns: string, dev: string, seg: Segment, addr: string): Promise<string> {
    const port = seg.nextPortName();
    // made inside the namespaces, so the root namespace never sees (or collides on) these names
    await sh("ip", ["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", seg.ns]);
    await sh("ip", ["-n", seg.ns, "link", "set", port, "master", seg.bridge, "up"]);
    await sh("ip", ["-n", ns, "addr", "add", `${addr}/${seg.prefixLength}`, "dev", dev]);
    await sh("ip", ["-n", ns, "link", "set", dev, "up"]);
    return port;
  }

  /** Kills every process in the lab and removes its namespaces. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#procs.map((p) => p.kill()));
    this.destroySync();
  }

  /** The teardown itself, synchronous so that an exit handler can run it. */
  destroySync(): void {
    this.#closed = true;
    open.delete(this);
    for (const p of this.#procs) if (p.alive) p.child.kill("SIGKILL");
    // hosts behind routers, routers, then the switch: any order works, this one frees links first
    for (const ns of [...this.#namespaces].reverse()) destroyNamespaceSync(ns);
    this.#namespaces.length = 0;
  }
}
