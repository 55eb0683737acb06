/**
 * A real BitTorrent swarm on 127.0.0.1 for comparison: opentracker and aria2c
 * seeders, the file downloaded by one more aria2c. DHT, local peer discovery and
 * peer exchange are off, so peers come from the tracker alone.
 */
import { chmod, link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { freePort, Proc } from "../test/helpers/procs.js";
import { sha1File } from "./files.js";
import { cpuTime, timed } from "./tools.js";
import { infoHash } from "./torrent.js";

/** Every wait of the setup (tracker up, seeders announced) ends within this. */
const SETUP_MS = 30_000;

export const NO_DISCOVERY = [
  "--enable-dht=false",
  "--enable-dht6=false",
  "--bt-enable-lpd=false",
  "--enable-peer-exchange=false",
];
export const QUIET = ["--show-console-readout=false", "--summary-interval=0", "--console-log-level=warn"];

export class BtSwarm {
  readonly procs: Proc[] = [];
  #runs = 0;

  private constructor(
    readonly dir: string,
    readonly file: string,
    readonly torrent: string,
    readonly hash: Buffer,
    readonly trackerPort: number,
  ) {}

  /** mktorrent (512 KiB pieces: -l 19), opentracker with the info hash whitelisted, `seeders` aria2c seeders. */
  static async start(dir: string, file: string, seeders: number): Promise<BtSwarm> {
    await mkdir(dir, { recursive: true });
    // opentracker chroots into its directory and drops to user nobody: it must be able to read it
    const otDir = join(dir, "opentracker");
    await mkdir(otDir);
    await chmod(otDir, 0o755);
    const port = await freePort();
    const torrent = join(dir, `${basename(file)}.torrent`);
    await timed(
      "mktorrent",
      ["-l", "19", "-a", `http://127.0.0.1:${port}/announce`, "-o", torrent, file],
      600_000,
    );
    const hash = infoHash(await readFile(torrent));
    const whitelist = join(otDir, "whitelist.txt");
    await writeFile(whitelist, `${hash.toString("hex")}\n`);
    await chmod(whitelist, 0o644);
    const s = new BtSwarm(dir, file, torrent, hash, port);
    // -w is read inside the chroot (-d): a path relative to it
    const ot = new Proc("opentracker", "opentracker", [
      "-i",
      "127.0.0.1",
      "-p",
      String(port),
      "-P",
      String(port),
      "-d",
      otDir,
      "-w",
      "whitelist.txt",
    ]);
    s.procs.push(ot);
    await s.#until(async () => (await s.scrape()) !== undefined, "opentracker to answer");
    for (let i = 1; i <= seeders; i++) {
      const own = join(dir, `seeder${i}`);
      await mkdir(own);
      await link(file, join(own, basename(file)));
      const p = new Proc(`aria2-seeder${i}`, "aria2c", [
        "--seed-ratio=0.0",
        "--bt-seed-unverified=true",
        ...NO_DISCOVERY,
        ...QUIET,
        `--listen-port=${await freePort()}`,
        "-d",
        own,
        torrent,
      ]);
      s.procs.push(p);
    }
    await s.#until(async () => ((await s.scrape()) ?? 0) >= seeders, `${seeders} seeders to announce`);
    return s;
  }

  /** Seeders the tracker knows (BEP 48 scrape: `complete`), or undefined while it does not answer. */
  async scrape(): Promise<number | undefined> {
    const q = [...this.hash].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
    try {
      const res = await fetch(`http://127.0.0.1:${this.trackerPort}/scrape?info_hash=${q}`, {
        signal: AbortSignal.timeout(2_000),
      });
      const body = Buffer.from(await res.arrayBuffer()).toString("latin1");
      return Number(/8:completei(\d+)e/.exec(body)?.[1] ?? 0);
    } catch {
      return undefined;
    }
  }

  async #until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + SETUP_MS;
    while (!(await check())) {
      for (const p of this.procs) if (!p.alive) throw new Error(`${p.label} exited\n${p.dump()}`);
      if (Date.now() > deadline) throw new Error(`waited ${SETUP_MS / 1000} s for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * One download by a fresh aria2c, timed from its start to its "Download complete"
   * line (every piece's SHA1 checked by then) and to its exit (after its last
   * announce); the bench checks the whole file's SHA1 afterwards, untimed.
   */
  async download(
    sha1: string,
    timeoutMs: number,
  ): Promise<{ seconds: number; exitSeconds: number; cpuSeconds: number }> {
    const out = join(this.dir, `aria2-out-${++this.#runs}`);
    await mkdir(out);
    const started = performance.now();
    const p = new Proc(`aria2c-${this.#runs}`, "aria2c", [
      "--seed-time=0",
      ...NO_DISCOVERY,
      "--show-console-readout=false",
      "--summary-interval=0",
      // the "Download complete" notice is the end of the timing
      "--console-log-level=notice",
      // sparse, as groupshare's partial file (the default, prealloc, writes the whole file first)
      "--file-allocation=none",
      `--listen-port=${await freePort()}`,
      "-d",
      out,
      this.torrent,
    ]);
    try {
      await p.expect(/Download complete/, timeoutMs);
      const seconds = (performance.now() - started) / 1000;
      const cpuSeconds = await cpuTime(p.child.pid!);
      const code = await p.waitExit(30_000);
      const exitSeconds = (performance.now() - started) / 1000;
      if (code !== 0) throw new Error(`aria2c exited with ${code}\n${p.dump()}`);
      const got = await sha1File(join(out, basename(this.file)));
      if (got !== sha1) throw new Error(`aria2c: downloaded file has SHA1 ${got}, expected ${sha1}`);
      return { seconds, exitSeconds, cpuSeconds };
    } finally {
      await p.kill();
      await rm(out, { recursive: true, force: true });
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
  }
}
