/**
 * The same flash crowd as a BitTorrent swarm, on the same lab hosts and caps:
 * opentracker on the tracker host, an aria2c seeder on the seeder host, and per
 * run a fresh aria2c on each downloader host, all started at once. DHT, local
 * peer discovery and peer exchange are off (as in bench/aria2.ts), so peers come
 * from the tracker and from the connections peers open to each other.
 */
import { chmod, link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Proc } from "../../test/helpers/procs.js";
import type { Host } from "../../test/lab/lab.js";
import { NO_DISCOVERY, QUIET } from "../aria2.js";
import { sha1File } from "../files.js";
import { timed } from "../tools.js";
import { infoHash } from "../torrent.js";
import type { Crowd } from "./swarmCrowd.js";
import { type CrowdRun, spentSince, splitOf, total } from "./swarmGroupshare.js";

const TRACKER_PORT = 6969;
/** aria2c's listen port on every host (groupshare's clients use 6881 on the same hosts). */
const BT_PORT = 6882;
const SETUP_MS = 30_000;

export class BtCrowd {
  #runs = 0;

  private constructor(
    readonly crowd: Crowd,
    readonly dir: string,
    readonly torrent: string,
    readonly hash: Buffer,
    readonly file: { path: string; sha1: string },
    readonly seeder: Proc,
    readonly hook: string,
  ) {}

  static async start(crowd: Crowd, dir: string, file: { path: string; sha1: string }): Promise<BtCrowd> {
    await mkdir(dir, { recursive: true });
    const t = crowd.tracker;
    const torrent = join(dir, `${basename(file.path)}.torrent`);
    const announce = `http://${t.addr}:${TRACKER_PORT}/announce`;
    await timed("mktorrent", ["-l", "19", "-a", announce, "-o", torrent, file.path], 300_000);
    const hash = infoHash(await readFile(torrent));
    // opentracker chroots into its directory and drops to user nobody: it must be able to read it
    const otDir = join(dir, "opentracker");
    await mkdir(otDir);
    await chmod(otDir, 0o755);
    await writeFile(join(otDir, "whitelist.txt"), `${hash.toString("hex")}\n`);
    await chmod(join(otDir, "whitelist.txt"), 0o644);
    const port = String(TRACKER_PORT);
    t.spawn("opentracker", "opentracker", [
      "-i",
      t.addr,
      "-p",
      port,
      "-P",
      port,
      "-d",
      otDir,
      "-w",
      "whitelist.txt",
    ]);
    const seedDir = join(dir, "seed");
    await mkdir(seedDir);
    await rm(join(seedDir, basename(file.path)), { force: true });
    await link(file.path, join(seedDir, basename(file.path)));
    const seeder = crowd.seed.spawn("aria2-seeder", "aria2c", [
      "--seed-ratio=0.0",
      "--bt-seed-unverified=true",
      ...NO_DISCOVERY,
      ...QUIET,
      "--disable-ipv6=true",
      `--listen-port=${BT_PORT}`,
      "-d",
      seedDir,
      torrent,
    ]);
    // aria2c's own "Download complete" notice comes only when seeding ends: this hook runs at
    // the download's end, before seeding (every piece's SHA1 checked by then)
    const hook = join(dir, "complete.sh");
    await writeFile(hook, '#!/bin/sh\necho "bt download complete: $3"\n', { mode: 0o755 });
    const bt = new BtCrowd(crowd, dir, torrent, hash, file, seeder, hook);
    await bt.#until(async () => ((await bt.scrape()) ?? 0) >= 1, "the aria2c seeder to announce");
    return bt;
  }

  /** Seeders opentracker knows (BEP 48 scrape: `complete`), asked from a lab host; undefined if it does not answer. */
  async scrape(from: Host = this.crowd.seed): Promise<number | undefined> {
    const q = [...this.hash].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
    const url = `http://${this.crowd.tracker.addr}:${TRACKER_PORT}/scrape?info_hash=${q}`;
    const code = `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(2000)}).then(r=>r.arrayBuffer()).then(b=>process.stdout.write(Buffer.from(b).toString("latin1")))`;
    try {
      const body = await from.exec(process.execPath, ["-e", code], 10_000);
      return Number(/8:completei(\d+)e/.exec(body)?.[1] ?? 0);
    } catch {
      return undefined;
    }
  }

  async #until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + SETUP_MS;
    while (!(await check())) {
      if (!this.seeder.alive) throw new Error(`the aria2c seeder exited\n${this.seeder.dump()}`);
      if (Date.now() > deadline) throw new Error(`waited ${SETUP_MS / 1000} s for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * One flash crowd: an aria2c on each of the first `n` downloader hosts, all
   * started at once, timed from their start to each one's completion hook. With `depart`, each exits at
   * completion (--seed-time=0); without, each seeds until the last completes.
   */
  async run(n: number, depart: boolean, timeoutMs: number): Promise<CrowdRun> {
    const run = ++this.#runs;
    const procs: Proc[] = [];
    const outs: string[] = [];
    try {
      for (let i = 1; i <= n; i++) {
        const out = join(this.dir, `out-${run}-${i}`);
        await mkdir(out);
        outs.push(out);
      }
      const seedSplit0 = await splitOf(this.seeder.child.pid);
      const t0 = Date.now();
      for (let i = 1; i <= n; i++) {
        procs.push(
          this.crowd.peers[i - 1]!.spawn(`aria2c-d${i}`, "aria2c", [
            depart ? "--seed-time=0" : "--seed-ratio=0.0",
            ...NO_DISCOVERY,
            "--show-console-readout=false",
            "--summary-interval=0",
            `--on-bt-download-complete=${this.hook}`,
            "--console-log-level=notice",
            "--file-allocation=none",
            "--disable-ipv6=true",
            `--listen-port=${BT_PORT}`,
            "-d",
            outs[i - 1]!,
            this.torrent,
          ]),
        );
      }
      const ends = await Promise.all(
        procs.map(async (p) => {
          await p.expect(/^bt download complete: /, timeoutMs);
          const seconds = (Date.now() - t0) / 1000;
          return { seconds, split: await splitOf(p.child.pid) };
        }),
      );
      const seedSplit = await splitOf(this.seeder.child.pid);
      // each downloader started at t0: all it spent is the run's
      const runCpu = spentSince(
        [seedSplit0, ...ends.map(() => ({ user: 0, system: 0 }))],
        [seedSplit, ...ends.map((e) => e.split)],
      );
      // its "stopped" announce, so the next run's tracker list holds no ghosts
      for (const p of procs) if (p.alive) p.child.kill("SIGTERM");
      await Promise.all(procs.map((p) => p.waitExit(SETUP_MS)));
      for (const [i, out] of outs.entries()) {
        const got = await sha1File(join(out, basename(this.file.path)));
        if (got !== this.file.sha1) throw new Error(`aria2c-d${i + 1}: the copy's SHA1 is ${got}`);
      }
      return {
        t0,
        seconds: ends.map((e) => e.seconds),
        cpuSeconds: ends.map((e) => total(e.split)),
        seedCpuSeconds: total(seedSplit) - total(seedSplit0),
        runCpu,
      };
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      for (const out of outs) await rm(out, { recursive: true, force: true });
    }
  }

  async stop(): Promise<void> {
    await this.seeder.kill("SIGTERM");
  }
}
